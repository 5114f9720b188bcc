import { assertJson, type Envelope, InvalidArgumentError } from '@evident/envelope';
import pRetry, { AbortError } from 'p-retry';
import type { Database } from './database.js';
import { isConcurrencyError } from './errors.js';
import type { AppendResult, EventStore } from './eventStore.js';
import type { RecordedEvent } from './recordedEvent.js';
import { statementName } from './statementName.js';
import { quoteIdentifier, type StreamId } from './streamId.js';

/** When and how folded state is saved, so loading a long stream reads only its tail. */
export interface SnapshotPolicy<State> {
  /**
   * Version of the state's shape. Bump it when `evolve` or the state changes: snapshots of another
   * version are ignored (not trusted) and the stream is folded from the start.
   */
  readonly schemaVersion: number;
  /** Tells apart different folds of the same stream. @defaultValue 'default' */
  readonly name?: string;
  /** Save a snapshot once this many events were folded since the last one. @defaultValue 50 */
  readonly every?: number;
  /** Decide instead of `every`. */
  readonly shouldSnapshot?: (context: {
    readonly state: State;
    readonly version: number;
    readonly eventsSinceSnapshot: number;
  }) => boolean;
}

export interface AggregateOptions<State, Event extends RecordedEvent = RecordedEvent> {
  /** The state before the first event. */
  readonly initialState: () => State;
  /** Fold one event into the state. Pure: it runs again on every load. */
  readonly evolve: (state: State, event: Event) => State;
  /** Save snapshots (state must then be plain JSON). @defaultValue no snapshots */
  readonly snapshot?: SnapshotPolicy<State>;
}

export interface LoadedAggregate<State> {
  readonly state: State;
  /** The stream version the state reflects; 0 for a stream that does not exist. */
  readonly version: number;
}

export interface HandleOptions<State, Event extends RecordedEvent = RecordedEvent>
  extends AggregateOptions<State, Event> {
  /** Times to reload and decide again after a concurrent writer won. @defaultValue 3 */
  readonly retries?: number;
}

export interface HandleResult<State> {
  /** The state and version `decide` saw on the attempt that succeeded. */
  readonly decidedOn: LoadedAggregate<State>;
  /** The events `decide` returned and the store appended (empty when it decided nothing). */
  readonly events: readonly Envelope[];
  readonly appended: AppendResult;
}

/** Given the current state, the events to append (none is fine). */
export type Decide<State> = (
  state: State,
  context: { readonly version: number; readonly attempt: number },
) => readonly Envelope[] | Promise<readonly Envelope[]>;

export function createAggregates(store: EventStore, db: Database) {
  const s = quoteIdentifier(store.schema);
  const loadSql = `select stream_version, state from ${s}.snapshots
                   where stream_type = $1 and stream_id = $2 and name = $3 and schema_version = $4`;
  const saveSql = `insert into ${s}.snapshots as sn
                     (stream_type, stream_id, name, schema_version, stream_version, state)
                   values ($1, $2, $3, $4, $5, $6::jsonb)
                   on conflict (stream_type, stream_id, name) do update
                     set schema_version = excluded.schema_version,
                         stream_version = excluded.stream_version,
                         state = excluded.state,
                         created_at = now()
                   where sn.stream_version < excluded.stream_version
                      or sn.schema_version <> excluded.schema_version`;
  const loadName = statementName(loadSql);
  const saveName = statementName(saveSql);

  async function aggregate<State, Event extends RecordedEvent = RecordedEvent>(
    stream: StreamId,
    options: AggregateOptions<State, Event>,
  ): Promise<LoadedAggregate<State>> {
    if (typeof options?.evolve !== 'function' || typeof options.initialState !== 'function') {
      throw new InvalidArgumentError('aggregate needs initialState() and evolve(state, event)');
    }
    const policy = options.snapshot;
    const name = policy?.name ?? 'default';
    if (policy) {
      if (!Number.isSafeInteger(policy.schemaVersion) || policy.schemaVersion < 1) {
        throw new InvalidArgumentError('snapshot.schemaVersion must be a positive integer');
      }
      if (policy.every !== undefined && (!Number.isSafeInteger(policy.every) || policy.every < 1)) {
        throw new InvalidArgumentError('snapshot.every must be a positive integer');
      }
    }
    let state = options.initialState();
    let version = 0;
    let snapshotVersion = 0;
    if (policy) {
      const rows = await db.query<{ stream_version: string | number; state: State }>(
        loadSql,
        [stream.type, stream.id, name, policy.schemaVersion],
        loadName,
      );
      if (rows[0]) {
        state = rows[0].state;
        version = snapshotVersion = Number(rows[0].stream_version);
      }
    }
    const events = (await store.readStream(stream, { fromVersion: version + 1 })) as Event[];
    for (const event of events) {
      state = options.evolve(state, event);
      version = event.streamVersion;
    }
    if (policy && events.length > 0) {
      const since = version - snapshotVersion;
      const due = policy.shouldSnapshot
        ? policy.shouldSnapshot({ state, version, eventsSinceSnapshot: since })
        : since >= (policy.every ?? 50);
      if (due) {
        assertJson(state);
        await db.query(
          saveSql,
          [stream.type, stream.id, name, policy.schemaVersion, version, JSON.stringify(state)],
          saveName,
        );
      }
    }
    return { state, version };
  }

  async function handle<State, Event extends RecordedEvent = RecordedEvent>(
    stream: StreamId,
    decide: Decide<State>,
    options: HandleOptions<State, Event>,
  ): Promise<HandleResult<State>> {
    const retries = options.retries ?? 3;
    if (!Number.isSafeInteger(retries) || retries < 0) {
      throw new InvalidArgumentError('retries must be a non-negative integer');
    }
    return pRetry(
      async (attempt): Promise<HandleResult<State>> => {
        const loaded = await aggregate(stream, options);
        const events = await decide(loaded.state, { version: loaded.version, attempt });
        try {
          const appended = await store.append(stream, events, {
            expectedVersion: loaded.version === 0 ? 'no_stream' : loaded.version,
          });
          return { decidedOn: loaded, events, appended };
        } catch (error) {
          // Only a lost race is worth another try; anything else is the caller's to see.
          if (isConcurrencyError(error)) throw error;
          throw new AbortError(error as Error);
        }
      },
      { retries, minTimeout: 5, maxTimeout: 200, factor: 2, randomize: true },
    );
  }

  return { aggregate, handle };
}
