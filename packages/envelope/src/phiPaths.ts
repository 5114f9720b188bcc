import { escapePointer, isObject, resolveLocalRef } from './jsonSchema.js';

/**
 * Payload paths of every field a schema marks `phi: true`, sorted. Keys are JSON Pointer tokens;
 * `*` stands for every array item or every key of a map, as in `/guarantors/*`.
 * A `$ref` is followed once per path, so recursive schemas terminate.
 */
export function collectPhiPaths(root: unknown): readonly string[] {
  const found = new Set<string>();
  const walk = (schema: unknown, path: string, refs: ReadonlySet<string>): void => {
    if (!isObject(schema)) return;
    if (schema.phi === true) found.add(path);
    if (typeof schema.$ref === 'string' && !refs.has(schema.$ref)) {
      walk(resolveLocalRef(root, schema.$ref), path, new Set([...refs, schema.$ref]));
    }
    if (isObject(schema.properties)) {
      for (const [name, sub] of Object.entries(schema.properties)) {
        walk(sub, `${path}/${escapePointer(name)}`, refs);
      }
    }
    if (isObject(schema.patternProperties)) {
      for (const sub of Object.values(schema.patternProperties)) walk(sub, `${path}/*`, refs);
    }
    walk(schema.additionalProperties, `${path}/*`, refs);
    if (Array.isArray(schema.items)) {
      for (const [i, sub] of schema.items.entries()) walk(sub, `${path}/${i}`, refs);
      walk(schema.additionalItems, `${path}/*`, refs);
    } else {
      walk(schema.items, `${path}/*`, refs);
    }
    walk(schema.contains, `${path}/*`, refs);
    // Branches describe the same location; a field marked in any branch is PHI there.
    for (const keyword of ['allOf', 'anyOf', 'oneOf'] as const) {
      const branches = schema[keyword];
      if (Array.isArray(branches)) for (const sub of branches) walk(sub, path, refs);
    }
    walk(schema.then, path, refs);
    walk(schema.else, path, refs);
    if (isObject(schema.dependencies)) {
      for (const sub of Object.values(schema.dependencies)) walk(sub, path, refs);
    }
  };
  walk(root, '', new Set());
  return [...found].sort();
}
