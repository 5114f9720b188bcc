import safeRegex from 'safe-regex2';
import { escapePointer, forEachSubschema, isObject } from './jsonSchema.js';

/** Bounds a schema must respect so validating any payload against it takes bounded time. */
export interface SchemaSafetyLimits {
  /** Largest `maxLength` a string with a `pattern` may declare. */
  readonly maxPatternedStringLength: number;
  /** Repetition limit handed to safe-regex2. */
  readonly regexRepetitionLimit: number;
}

/** Where a schema is refused, as a JSON Pointer into the schema, and why. */
export interface SchemaDefect {
  readonly path: string;
  readonly reason: string;
}

// Deeper and larger than any sensible event schema, yet small enough to scan in milliseconds.
const maxSchemaDepth = 256;
const maxSchemaNodes = 100_000;

// `$data` lets a payload supply its own limits; `$async` makes validate return a promise, which
// is truthy, so every payload would pass.
const refusedKeys = new Set(['$data', '$async', '__proto__']);

function pointer(path: readonly string[]): string {
  return path.map((key) => `/${escapePointer(key)}`).join('');
}

/** The schema must be plain JSON, not too deep, and free of keys that change how ajv runs. */
function findStructuralDefect(
  value: unknown,
  path: string[],
  budget: { nodes: number },
): SchemaDefect | undefined {
  if (--budget.nodes < 0) {
    return { path: pointer(path), reason: `schema has more than ${maxSchemaNodes} nodes` };
  }
  if (path.length > maxSchemaDepth) {
    return { path: pointer(path), reason: `schema nests deeper than ${maxSchemaDepth} levels` };
  }
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') {
    return Number.isFinite(value)
      ? undefined
      : { path: pointer(path), reason: 'schema holds a number that is not finite' };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const defect = findStructuralDefect(value[i], [...path, String(i)], budget);
      if (defect) return defect;
    }
    return undefined;
  }
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      return { path: pointer(path), reason: 'schema holds something other than plain JSON' };
    }
    for (const key of Object.keys(value)) {
      if (refusedKeys.has(key)) {
        return { path: pointer([...path, key]), reason: `"${key}" is not allowed in a schema` };
      }
      const child = (value as Record<string, unknown>)[key];
      const defect = findStructuralDefect(child, [...path, key], budget);
      if (defect) return defect;
    }
    return undefined;
  }
  return { path: pointer(path), reason: `schema holds a ${typeof value}, not JSON` };
}

function regexDefect(source: string, limits: SchemaSafetyLimits): string | undefined {
  try {
    // ajv compiles patterns with the `u` flag; refuse here what it would refuse, with a path.
    new RegExp(source, 'u');
  } catch {
    return 'is not a valid regular expression';
  }
  if (!safeRegex(source, { limit: limits.regexRepetitionLimit })) {
    return 'may take exponential time on some inputs (nested or too many quantifiers); rewrite it';
  }
  return undefined;
}

/**
 * Every `pattern` must be safe and length-bounded; so must every `patternProperties` key. No
 * `$id`: the registry names schemas by type and version, and versions of one type would clash.
 */
function findKeywordDefect(
  schema: unknown,
  path: string[],
  limits: SchemaSafetyLimits,
): SchemaDefect | undefined {
  if (!isObject(schema)) return undefined;
  if (Object.hasOwn(schema, '$id')) {
    return {
      path: pointer([...path, '$id']),
      reason: '$id is not supported: the registry names schemas by event type and version',
    };
  }
  const ceiling = limits.maxPatternedStringLength;
  if (typeof schema.pattern === 'string') {
    const problem = regexDefect(schema.pattern, limits);
    if (problem) return { path: pointer([...path, 'pattern']), reason: `pattern ${problem}` };
    const max = schema.maxLength;
    if (typeof max !== 'number' || max > ceiling) {
      return {
        path: pointer([...path, 'pattern']),
        reason: `a pattern needs a maxLength of at most ${ceiling} beside it, so matching time is bounded`,
      };
    }
  }
  if (isObject(schema.patternProperties)) {
    for (const key of Object.keys(schema.patternProperties)) {
      const problem = regexDefect(key, limits);
      if (problem) {
        return { path: pointer([...path, 'patternProperties', key]), reason: `key ${problem}` };
      }
    }
    const names = schema.propertyNames;
    if (!isObject(names) || typeof names.maxLength !== 'number' || names.maxLength > ceiling) {
      return {
        path: pointer([...path, 'patternProperties']),
        reason: `patternProperties needs propertyNames: { maxLength } of at most ${ceiling}, so matching time is bounded`,
      };
    }
  }
  let found: SchemaDefect | undefined;
  forEachSubschema(schema, (subschema, keys) => {
    found ??= findKeywordDefect(subschema, [...path, ...keys], limits);
  });
  return found;
}

/**
 * The first reason to refuse `schema` before handing it to ajv, or `undefined` when it is safe:
 * not plain JSON, too deep, `$data` or `$async` anywhere, an `$id`, or a regular expression that
 * is unsafe or not bounded by a `maxLength`.
 */
export function findSchemaDefect(
  schema: unknown,
  limits: SchemaSafetyLimits,
): SchemaDefect | undefined {
  if (!isObject(schema)) {
    return { path: '', reason: 'a schema must be a JSON Schema object' };
  }
  return (
    findStructuralDefect(schema, [], { nodes: maxSchemaNodes }) ??
    findKeywordDefect(schema, [], limits)
  );
}
