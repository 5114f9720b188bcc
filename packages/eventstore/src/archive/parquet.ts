import { type FileMetaData, parquetMetadata, parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer, type SchemaElement } from 'hyparquet-writer';
import { ArchiveError } from './errors.js';
import type { ArchivedRow } from './rows.js';

/**
 * The Parquet layout of an archive file: one row per event, in log order. Text columns are UTF-8
 * strings, timestamps are UTC milliseconds, positions and versions 64-bit integers; `data` and
 * `metadata` are JSON text (`data::json` in DuckDB). Any Parquet reader opens it.
 */
type Kind = 'string' | 'optionalString' | 'int32' | 'int64' | 'timestamp';

const layout: ReadonlyArray<readonly [column: string, field: keyof ArchivedRow, kind: Kind]> = [
  ['checkpoint', 'checkpoint', 'string'],
  ['global_position', 'globalPosition', 'int64'],
  ['stream_type', 'streamType', 'string'],
  ['stream_id', 'streamId', 'string'],
  ['stream_version', 'streamVersion', 'int64'],
  ['event_id', 'eventId', 'string'],
  ['event_type', 'eventType', 'string'],
  ['schema_version', 'schemaVersion', 'int32'],
  ['occurred_at', 'occurredAt', 'timestamp'],
  ['recorded_at', 'recordedAt', 'timestamp'],
  ['correlation_id', 'correlationId', 'string'],
  ['causation_id', 'causationId', 'string'],
  ['source', 'source', 'string'],
  ['actor_id', 'actorId', 'string'],
  ['actor_role', 'actorRole', 'string'],
  ['tenant_id', 'tenantId', 'optionalString'],
  ['data', 'data', 'string'],
  ['metadata', 'metadata', 'string'],
  ['hash', 'hash', 'optionalString'],
];

/** The names of the columns, in file order. */
export const parquetColumns: readonly string[] = layout.map(([column]) => column);

function element(name: string, kind: Kind): SchemaElement {
  switch (kind) {
    case 'string':
      return { name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' };
    case 'optionalString':
      return { name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' };
    case 'int32':
      return { name, type: 'INT32', repetition_type: 'REQUIRED' };
    case 'int64':
      return { name, type: 'INT64', repetition_type: 'REQUIRED' };
    case 'timestamp':
      return {
        name,
        type: 'INT64',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
        repetition_type: 'REQUIRED',
      };
  }
}

const schema: SchemaElement[] = [
  { name: 'root', num_children: layout.length },
  ...layout.map(([column, , kind]) => element(column, kind)),
];

/** Columns whose values (nearly) never repeat. */
const distinct = new Set([
  'checkpoint',
  'global_position',
  'event_id',
  'correlation_id',
  'causation_id',
  'data',
  'hash',
]);

/** Rows per row group: small enough to replay a file a group at a time. */
export const rowGroupSize = 10_000;

/** Encode rows (in log order) as one Parquet file. */
export function encodeParquet(rows: readonly ArchivedRow[], createdBy: string): Uint8Array {
  const columnData = layout.map(([column, field, kind]) => ({
    name: column,
    // Dictionaries cannot shrink columns whose every value differs; trying costs half the time.
    ...(distinct.has(column) ? { encoding: 'PLAIN' as const } : {}),
    data:
      kind === 'int64'
        ? rows.map((r) => BigInt(r[field] as number))
        : kind === 'timestamp'
          ? rows.map((r) => BigInt(r[field] as number))
          : rows.map((r) => r[field]),
  }));
  const buffer = parquetWriteBuffer({
    columnData,
    schema,
    rowGroupSize,
    createdBy,
    kvMetadata: [{ key: 'evident.archive.format', value: '1' }],
  });
  return new Uint8Array(buffer);
}

/** An opened archive file: its metadata, read once, and rows read a range at a time. */
export interface ParquetFile {
  readonly rows: number;
  read(rowStart: number, rowEnd: number): Promise<ArchivedRow[]>;
}

const asArrayBuffer = (bytes: Uint8Array): ArrayBuffer =>
  bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? (bytes.buffer as ArrayBuffer)
    : (bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);

function toRow(raw: Record<string, unknown>): ArchivedRow {
  const out: Record<string, unknown> = {};
  for (const [column, field, kind] of layout) {
    const value = raw[column];
    if (kind === 'int64' || kind === 'int32') out[field] = Number(value);
    else if (kind === 'timestamp') out[field] = (value as Date).getTime();
    else out[field] = value ?? null;
  }
  return out as unknown as ArchivedRow;
}

/**
 * Open an archive file written by {@link encodeParquet}.
 *
 * @throws ArchiveError `ARCHIVE_CORRUPT` when it is not such a file.
 */
export function openParquet(bytes: Uint8Array, path: string): ParquetFile {
  const file = asArrayBuffer(bytes);
  let metadata: FileMetaData;
  try {
    metadata = parquetMetadata(file);
  } catch (error) {
    throw new ArchiveError('ARCHIVE_CORRUPT', `${path} is not a readable Parquet file`, {
      cause: error,
    });
  }
  const names = metadata.schema.slice(1).map((e) => e.name);
  if (names.join() !== parquetColumns.join()) {
    throw new ArchiveError('ARCHIVE_CORRUPT', `${path} does not have the archive's columns`);
  }
  return {
    rows: Number(metadata.num_rows),
    async read(rowStart, rowEnd) {
      try {
        const raw = await parquetReadObjects({ file, metadata, rowStart, rowEnd });
        return raw.map(toRow);
      } catch (error) {
        throw new ArchiveError('ARCHIVE_CORRUPT', `${path} could not be decoded`, {
          cause: error,
        });
      }
    },
  };
}
