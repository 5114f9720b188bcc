/**
 * A JSON Schema (draft-07) as registered for one version of an event type.
 *
 * Evident adds one keyword: `phi: true` marks a field holding protected health information, so
 * the packages that store, log or publish the payload know what to encrypt or redact.
 *
 * @example
 * ```ts
 * const schema: JsonSchema = {
 *   type: 'object',
 *   required: ['claimId'],
 *   properties: {
 *     claimId: { type: 'string', maxLength: 64 },
 *     patientControlNumber: { type: 'string', maxLength: 38, phi: true },
 *   },
 * };
 * ```
 */
export type JsonSchema = { readonly [keyword: string]: unknown };

// Where a JSON Schema holds further schemas. Everything else is data (enum, const, default) or
// a scalar, so walks that follow only these never mistake a value for a schema.
export const singleSchemaKeywords = [
  'additionalItems',
  'additionalProperties',
  'contains',
  'else',
  'if',
  'items',
  'not',
  'propertyNames',
  'then',
] as const;
export const schemaArrayKeywords = ['allOf', 'anyOf', 'items', 'oneOf'] as const;
export const schemaMapKeywords = [
  '$defs',
  'definitions',
  'dependencies',
  'patternProperties',
  'properties',
] as const;

export function isObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Escape one key for a JSON Pointer (RFC 6901). */
export function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Split a JSON Pointer (`/a/b~1c`) into its unescaped keys. */
export function pointerKeys(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map(unescapePointer);
}

/**
 * Resolve a `$ref` inside its own root schema (`#`, `#/definitions/x`, `#/$defs/x`). Remote
 * references are not followed: the registry never loads schemas from elsewhere.
 */
export function resolveLocalRef(root: unknown, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const key of pointerKeys(decodeURIComponent(ref.slice(1)))) {
    if (Array.isArray(node) && /^\d+$/.test(key)) node = node[Number(key)];
    else if (isObject(node) && Object.hasOwn(node, key)) node = node[key];
    else return undefined;
  }
  return node;
}

/** Structural equality of JSON values (key order ignored). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  if (ak.length !== bk.length) return false;
  return ak.every(
    (k) =>
      Object.hasOwn(b, k) &&
      deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

/**
 * Call `visit` for every subschema directly under `schema`, with the schema keys that lead to it.
 */
export function forEachSubschema(
  schema: Readonly<Record<string, unknown>>,
  visit: (subschema: unknown, keys: readonly string[]) => void,
): void {
  for (const keyword of singleSchemaKeywords) {
    const value = schema[keyword];
    if (value !== undefined && !Array.isArray(value)) visit(value, [keyword]);
  }
  for (const keyword of schemaArrayKeywords) {
    const value = schema[keyword];
    if (!Array.isArray(value)) continue;
    for (const [i, item] of value.entries()) visit(item, [keyword, String(i)]);
  }
  for (const keyword of schemaMapKeywords) {
    const value = schema[keyword];
    if (!isObject(value)) continue;
    for (const [name, item] of Object.entries(value)) {
      // `dependencies` maps a name to a schema or to a list of required names.
      if (!Array.isArray(item)) visit(item, [keyword, name]);
    }
  }
}
