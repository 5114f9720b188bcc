import { assertEnvelope, type Envelope } from './envelope.js';
import { EvidentError } from './errors.js';

/**
 * Bounds on what (de)serialization accepts; both keep hostile input to linear time.
 *
 * @example
 * ```ts
 * const limits: SerializationLimits = { maxBytes: 256 * 1024, maxDepth: 32 };
 * deserialize(text, limits);
 * ```
 */
export interface SerializationLimits {
  /** Largest serialized envelope, in UTF-8 bytes. @defaultValue 1 MiB */
  readonly maxBytes?: number;
  /** Deepest nesting of objects and arrays. @defaultValue 64 */
  readonly maxDepth?: number;
}

/**
 * The limits used when none are given: 1 MiB and 64 levels of nesting.
 *
 * @example
 * ```ts
 * serialize(envelope, { ...defaultSerializationLimits, maxBytes: 4 * 1024 * 1024 });
 * ```
 */
export const defaultSerializationLimits: Required<SerializationLimits> = {
  maxBytes: 1024 * 1024,
  maxDepth: 64,
};

/**
 * A payload broke a limit or is not safe JSON; `code` says which. The message gives the path
 * (keys that do not look like field names shown as `*`), never the value.
 *
 * @example
 * ```ts
 * try {
 *   deserialize(body);
 * } catch (error) {
 *   if (isEvidentError(error, 'PAYLOAD_TOO_LARGE', 'PAYLOAD_TOO_DEEP')) return reply(413);
 *   throw error;
 * }
 * ```
 */
export class PayloadError extends EvidentError<
  'PAYLOAD_TOO_LARGE' | 'PAYLOAD_TOO_DEEP' | 'PAYLOAD_MALFORMED' | 'PAYLOAD_UNSAFE_KEY'
> {}

function resolve(limits: SerializationLimits | undefined): Required<SerializationLimits> {
  return { ...defaultSerializationLimits, ...limits };
}

/** Whether a JSON text nests deeper than `maxDepth`, found without parsing it. */
function exceedsDepth(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return false;
}

// Keys that reach Object.prototype when a parsed value is later merged into another object.
const unsafeKey = (key: string) => key === '__proto__' || key === 'prototype';

/**
 * Walk a parsed value: refuse nesting deeper than `maxDepth` (`depth` is the value's own level,
 * 1 for the root) and keys that pollute prototypes.
 */
function assertParsed(value: unknown, trail: Trail, depth: number, maxDepth: number): void {
  if (typeof value !== 'object' || value === null) return;
  if (depth > maxDepth) {
    throw new PayloadError('PAYLOAD_TOO_DEEP', `JSON nests deeper than ${maxDepth} levels`);
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const child = value[i];
      if (typeof child !== 'object' || child === null) continue;
      trail.push(i);
      assertParsed(child, trail, depth + 1, maxDepth);
      trail.pop();
    }
    return;
  }
  for (const key of Object.keys(value)) {
    const child = (value as Record<string, unknown>)[key];
    if (unsafeKey(key) || (key === 'constructor' && typeof child === 'object' && child !== null)) {
      throw new PayloadError(
        'PAYLOAD_UNSAFE_KEY',
        `key "${key}" at ${pointer('', trail)} is refused: it can pollute object prototypes`,
      );
    }
    if (typeof child !== 'object' || child === null) continue;
    trail.push(key);
    assertParsed(child, trail, depth + 1, maxDepth);
    trail.pop();
  }
}

// Keys in messages: a payload may be a map keyed by names, emails or member ids, so only keys that
// look like field names are shown (one identifier: no spaces, dashes, dots or @, no leading digit).
const fieldName = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/;

function pathKey(key: string): string {
  return fieldName.test(key) ? key : '*';
}

/**
 * The keys from the root down to the value being checked. The walkers push and pop as they go
 * and format it only for an error: a payload that passes costs no path strings.
 */
type Trail = (string | number)[];

/** `prefix` and the trail as a JSON-pointer-like path for messages ('/' for the root). */
function pointer(prefix: string, trail: Trail): string {
  let path = prefix;
  for (const key of trail) path += `/${typeof key === 'number' ? key : pathKey(key)}`;
  return path || '/';
}

function className(proto: unknown): string {
  const name = (proto as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === 'string' && fieldName.test(name) ? name : 'class';
}

/**
 * Check that a value is plain JSON (so it round-trips exactly) within the depth limit.
 * NaN, Infinity, undefined, functions, class instances and cycles are refused, naming the path.
 */
function assertJsonValue(
  value: unknown,
  prefix: string,
  trail: Trail,
  depth: number,
  maxDepth: number,
): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) {
        throw new PayloadError(
          'PAYLOAD_MALFORMED',
          `${pointer(prefix, trail)} is not a finite number`,
        );
      }
      return;
    case 'object': {
      if (value === null) return;
      if (depth >= maxDepth) {
        throw new PayloadError('PAYLOAD_TOO_DEEP', `payload nests deeper than ${maxDepth} levels`);
      }
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          trail.push(i);
          assertJsonValue(value[i], prefix, trail, depth + 1, maxDepth);
          trail.pop();
        }
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new PayloadError(
          'PAYLOAD_MALFORMED',
          `${pointer(prefix, trail)} is a ${className(proto)} instance; only plain JSON is stored`,
        );
      }
      for (const key of Object.keys(value)) {
        const child = (value as Record<string, unknown>)[key];
        if (
          unsafeKey(key) ||
          (key === 'constructor' && typeof child === 'object' && child !== null)
        ) {
          throw new PayloadError(
            'PAYLOAD_UNSAFE_KEY',
            `key "${key}" at ${pointer(prefix, trail)} is refused: it can pollute object prototypes`,
          );
        }
        trail.push(key);
        assertJsonValue(child, prefix, trail, depth + 1, maxDepth);
        trail.pop();
      }
      return;
    }
    default:
      throw new PayloadError(
        'PAYLOAD_MALFORMED',
        `${pointer(prefix, trail)} is a ${typeof value}, not JSON`,
      );
  }
}

/**
 * Check that `value` is plain JSON within the limits: the same rules `serialize` applies to a
 * payload. Stores and brokers call it before writing so a bad payload is refused, not truncated.
 *
 * @example
 * ```ts
 * assertJson({ claimId: 'CLM-000123', fees: [5500, 9800] }); // fine
 * assertJson({ submittedAt: new Date() }); // throws PayloadError PAYLOAD_MALFORMED
 * ```
 * @throws PayloadError `PAYLOAD_TOO_DEEP`, `PAYLOAD_MALFORMED` (NaN, Infinity, undefined,
 *   functions, class instances) or `PAYLOAD_UNSAFE_KEY` (`__proto__`, `constructor.prototype`).
 */
export function assertJson(value: unknown, limits?: SerializationLimits): void {
  const { maxDepth } = resolve(limits);
  // A cycle recurses until it passes maxDepth, so it is reported as too deep: bounded either way.
  assertJsonValue(value, '', [], 0, maxDepth);
}

/**
 * Serialize an envelope to JSON text, refusing anything that would not come back identical
 * (except `-0`, which JSON writes as `0`).
 *
 * @example
 * ```ts
 * const text = serialize(envelope);
 * const same = deserialize(text);
 * ```
 * @throws PayloadError when the payload is too large, too deep or not plain JSON.
 * @throws InvalidArgumentError when the envelope's own fields are malformed.
 */
export function serialize(envelope: Envelope, limits?: SerializationLimits): string {
  const { maxBytes, maxDepth } = resolve(limits);
  assertEnvelope(envelope);
  assertJsonValue(envelope.data, '/data', [], 1, maxDepth);
  assertJsonValue(envelope.metadata, '/metadata', [], 1, maxDepth);
  const text = JSON.stringify(envelope);
  if (text.length > maxBytes || Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new PayloadError('PAYLOAD_TOO_LARGE', `serialized envelope exceeds ${maxBytes} bytes`);
  }
  return text;
}

/**
 * Parse JSON text from an untrusted source within the limits, refusing prototype-polluting keys.
 * Runs in time linear in the input: size is checked first, depth without parsing.
 *
 * @example
 * ```ts
 * const body = parseJson(request.body, { maxBytes: 64 * 1024 });
 * ```
 * @throws PayloadError `PAYLOAD_TOO_LARGE`, `PAYLOAD_TOO_DEEP`, `PAYLOAD_MALFORMED` or
 *   `PAYLOAD_UNSAFE_KEY`; the message never quotes the text.
 */
export function parseJson(text: string, limits?: SerializationLimits): unknown {
  const { maxBytes, maxDepth } = resolve(limits);
  if (typeof text !== 'string') {
    throw new PayloadError('PAYLOAD_MALFORMED', 'expected JSON text');
  }
  // UTF-8 never takes fewer bytes than UTF-16 code units, so the cheap check comes first.
  if (text.length > maxBytes || Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new PayloadError('PAYLOAD_TOO_LARGE', `JSON text exceeds ${maxBytes} bytes`);
  }
  let value: unknown;
  try {
    // V8's JSON.parse is not recursive: a text nested 100,000 deep parses without exhausting the
    // stack, in linear time, so the depth is checked on the parsed value, in the same walk as the
    // keys. (A scan of the text before parsing cost more than the parse itself.)
    value = JSON.parse(text);
  } catch (cause) {
    // Broken and too deep: reported as too deep, whichever the parser met first.
    if (exceedsDepth(text, maxDepth)) {
      throw new PayloadError('PAYLOAD_TOO_DEEP', `JSON nests deeper than ${maxDepth} levels`);
    }
    // The parser's message quotes the input; keep it only as the cause.
    throw new PayloadError('PAYLOAD_MALFORMED', 'text is not valid JSON', { cause });
  }
  // Always walk: a key can hide behind escapes (`"\u005f_proto__"`) that no text search sees.
  assertParsed(value, [], 1, maxDepth);
  return value;
}

/**
 * Parse and check an envelope received from outside the process (a broker, a file, a request).
 *
 * @example
 * ```ts
 * const envelope = registry.validate(deserialize(message.toString('utf8')));
 * ```
 * @throws PayloadError for size, depth, syntax and unsafe keys.
 * @throws InvalidArgumentError when the envelope's fields are missing or malformed.
 */
export function deserialize(text: string, limits?: SerializationLimits): Envelope {
  return assertEnvelope(parseJson(text, limits));
}
