import {
  deepEqual,
  escapePointer,
  isObject,
  type JsonSchema,
  resolveLocalRef,
} from './jsonSchema.js';

/**
 * What changed between two versions of a schema. Whether it breaks old payloads is in
 * {@link CompatibilityChange.breaking}: `field-added` breaks when the field is required without a
 * default, `type-changed` when the type narrows, and so on.
 *
 * @example
 * ```ts
 * const removals = report.changes.filter((c) => c.kind === 'field-removed');
 * ```
 */
export type CompatibilityChangeKind =
  | 'field-added'
  | 'field-removed'
  | 'field-renamed'
  | 'field-made-required'
  | 'field-made-optional'
  | 'type-changed'
  | 'enum-narrowed'
  | 'enum-widened'
  | 'const-changed'
  | 'additional-properties-closed'
  | 'additional-properties-opened'
  | 'constraint-tightened'
  | 'constraint-loosened'
  | 'composition-changed'
  | 'keyword-changed'
  | 'phi-changed';

/**
 * One difference between two schema versions, located in the payload.
 *
 * @example
 * ```ts
 * const change: CompatibilityChange = {
 *   kind: 'enum-narrowed',
 *   path: '/status',
 *   breaking: true,
 *   message: '/status: enum lost "paid"',
 * };
 * ```
 */
export interface CompatibilityChange {
  readonly kind: CompatibilityChangeKind;
  /**
   * JSON Pointer into the payload, e.g. `/patient/address/zip`; `''` is the payload itself.
   * `*` stands for every array item or every key of a map: `/serviceLines/*`.
   */
  readonly path: string;
  /** `true` when some payload valid under the previous version is not valid under the next. */
  readonly breaking: boolean;
  /** What changed, in words; names fields and schema values, never payload values. */
  readonly message: string;
}

/**
 * The outcome of {@link checkCompatibility}.
 *
 * @example
 * ```ts
 * const { compatible, changes } = checkCompatibility(v1, v2);
 * if (!compatible) console.error(changes.filter((c) => c.breaking));
 * ```
 */
export interface CompatibilityReport {
  /** `true` when no change is breaking: every payload of the previous version is still valid. */
  readonly compatible: boolean;
  /** Every change found, breaking or not, in schema order. */
  readonly changes: readonly CompatibilityChange[];
}

const allTypes = ['array', 'boolean', 'integer', 'null', 'number', 'object', 'string'] as const;

const upperBounds = ['maxLength', 'maximum', 'exclusiveMaximum', 'maxItems', 'maxProperties'];
const lowerBounds = ['minLength', 'minimum', 'exclusiveMinimum', 'minItems', 'minProperties'];
const compositionKeywords = ['allOf', 'anyOf', 'oneOf', 'not', 'if', 'then', 'else'];

// Keywords compared by a rule of their own, or that do not constrain a payload.
const understood = new Set([
  ...upperBounds,
  ...lowerBounds,
  ...compositionKeywords,
  'type',
  'enum',
  'const',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'additionalItems',
  'multipleOf',
  'pattern',
  'uniqueItems',
  '$ref',
  'phi',
  'title',
  'description',
  '$comment',
  'examples',
  'default',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$id',
  '$schema',
  'definitions',
  '$defs',
]);

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function describeTypes(types: readonly string[] | undefined): string {
  if (types === undefined) return 'any type';
  return types.length === 1 ? types[0]! : types.join(' or ');
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

const unresolved = Symbol('unresolved $ref');

function where(path: string): string {
  return path === '' ? 'the payload' : path;
}

class Comparison {
  readonly changes: CompatibilityChange[] = [];
  // Pairs already compared: recursive schemas ($ref: '#') compare each pair once.
  private readonly seen = new Map<object, Set<object>>();
  private readonly merged = new WeakMap<object, unknown>();

  constructor(
    private readonly previousRoot: unknown,
    private readonly nextRoot: unknown,
  ) {}

  /** A fresh comparison over the same roots, used to ask "are these two equivalent?". */
  private equivalent(previous: unknown, next: unknown): boolean {
    const probe = new Comparison(this.previousRoot, this.nextRoot);
    probe.compare(previous, next, '');
    return probe.changes.length === 0;
  }

  private add(kind: CompatibilityChangeKind, path: string, breaking: boolean, message: string) {
    this.changes.push({ kind, path, breaking, message });
  }

  /** Follow `$ref`s to the schema they stand for; siblings of a `$ref` apply as well. */
  private resolve(schema: unknown, root: unknown): unknown {
    // An absent schema accepts anything.
    let current: unknown = schema === undefined ? true : schema;
    for (let hops = 0; isObject(current) && typeof current.$ref === 'string'; hops++) {
      if (hops > 32) return unresolved;
      const target = resolveLocalRef(root, current.$ref);
      if (target === undefined) return unresolved;
      const { $ref: _ref, ...siblings } = current;
      if (Object.keys(siblings).length === 0) {
        current = target;
        continue;
      }
      let combined = this.merged.get(current);
      if (combined === undefined) {
        combined = isObject(target) ? { ...target, ...siblings } : target;
        this.merged.set(current, combined);
      }
      current = combined;
    }
    return current;
  }

  compare(previousSchema: unknown, nextSchema: unknown, path: string): void {
    const previous = this.resolve(previousSchema, this.previousRoot);
    const next = this.resolve(nextSchema, this.nextRoot);
    if (previous === unresolved || next === unresolved) {
      if (!deepEqual(previousSchema, nextSchema)) {
        this.add('keyword-changed', path, true, `${where(path)}: a $ref that cannot be resolved`);
      }
      return;
    }
    // Nothing was valid here before, so nothing stored can break.
    if (previous === false) return;
    if (next === false) {
      this.add('type-changed', path, true, `${where(path)}: no value is allowed any more`);
      return;
    }
    const p: JsonSchema = isObject(previous) ? previous : {};
    const n: JsonSchema = isObject(next) ? next : {};
    const pairs = this.seen.get(p) ?? new Set<object>();
    if (pairs.has(n)) return;
    pairs.add(n);
    this.seen.set(p, pairs);

    const nextTypes = this.compareTypes(p, n, path);
    this.compareEnum(p, n, path);
    this.compareConst(p, n, path);
    this.compareConstraints(p, n, path);
    if (nextTypes === undefined || nextTypes.includes('object')) this.compareObjects(p, n, path);
    if (nextTypes === undefined || nextTypes.includes('array')) this.compareArrays(p, n, path);
    this.compareCompositions(p, n, path);
    this.compareOtherKeywords(p, n, path);
    if ((p.phi === true) !== (n.phi === true)) {
      const marked = n.phi === true ? 'now marked' : 'no longer marked';
      this.add('phi-changed', path, false, `${where(path)} is ${marked} phi`);
    }
  }

  /** Returns the types the next schema admits (`undefined`: any). */
  private compareTypes(p: JsonSchema, n: JsonSchema, path: string): readonly string[] | undefined {
    const declared = (s: JsonSchema) =>
      typeof s.type === 'string'
        ? [s.type]
        : Array.isArray(s.type)
          ? (s.type as string[])
          : undefined;
    const previousDeclared = declared(p);
    const nextTypes = declared(n);
    // An enum or const limits the types that were really possible.
    let previousTypes = previousDeclared;
    if (Object.hasOwn(p, 'const')) previousTypes = [jsonType(p.const)];
    else if (Array.isArray(p.enum)) previousTypes = [...new Set(p.enum.map(jsonType))];
    if (nextTypes === undefined) {
      if (previousDeclared !== undefined) {
        this.add('type-changed', path, false, `${where(path)}: type no longer restricted`);
      }
      return nextTypes;
    }
    const admits = (t: string) =>
      nextTypes.includes(t) || (t === 'integer' && nextTypes.includes('number'));
    const lost = (previousTypes ?? allTypes).filter((t) => !admits(t));
    const before = describeTypes(previousDeclared);
    const after = describeTypes(nextTypes);
    if (lost.length > 0) {
      this.add(
        'type-changed',
        path,
        true,
        `${where(path)}: type changed from ${before} to ${after}`,
      );
    } else if (
      previousDeclared !== undefined &&
      (previousDeclared.length !== nextTypes.length ||
        previousDeclared.some((t) => !nextTypes.includes(t)))
    ) {
      this.add(
        'type-changed',
        path,
        false,
        `${where(path)}: type widened from ${before} to ${after}`,
      );
    }
    return nextTypes;
  }

  private compareEnum(p: JsonSchema, n: JsonSchema, path: string): void {
    const before = Array.isArray(p.enum) ? p.enum : undefined;
    const after = Array.isArray(n.enum) ? n.enum : undefined;
    const includes = (list: readonly unknown[], value: unknown) =>
      list.some((item) => deepEqual(item, value));
    if (after === undefined) {
      if (before !== undefined) {
        this.add('enum-widened', path, false, `${where(path)}: no longer restricted to an enum`);
      }
      return;
    }
    if (before === undefined) {
      // A const that the new enum still allows is not a narrowing.
      if (!(Object.hasOwn(p, 'const') && includes(after, p.const))) {
        this.add(
          'enum-narrowed',
          path,
          true,
          `${where(path)}: now restricted to ${after.map(show).join(', ')}`,
        );
      }
      return;
    }
    const removed = before.filter((value) => !includes(after, value));
    const added = after.filter((value) => !includes(before, value));
    if (removed.length > 0) {
      this.add(
        'enum-narrowed',
        path,
        true,
        `${where(path)}: enum lost ${removed.map(show).join(', ')}`,
      );
    }
    if (added.length > 0) {
      this.add(
        'enum-widened',
        path,
        false,
        `${where(path)}: enum gained ${added.map(show).join(', ')}`,
      );
    }
  }

  private compareConst(p: JsonSchema, n: JsonSchema, path: string): void {
    const had = Object.hasOwn(p, 'const');
    const has = Object.hasOwn(n, 'const');
    if (has) {
      const same = had
        ? deepEqual(p.const, n.const)
        : Array.isArray(p.enum) && p.enum.every((value) => deepEqual(value, n.const));
      if (!same) {
        this.add(
          'const-changed',
          path,
          true,
          `${where(path)}: now fixed to ${show(n.const)}${had ? ` instead of ${show(p.const)}` : ''}`,
        );
      }
    } else if (had) {
      this.add('const-changed', path, false, `${where(path)}: no longer fixed to one value`);
    }
  }

  private compareConstraints(p: JsonSchema, n: JsonSchema, path: string): void {
    const bound = (keyword: string, tighter: (a: number, b: number) => boolean) => {
      const before = typeof p[keyword] === 'number' ? (p[keyword] as number) : undefined;
      const after = typeof n[keyword] === 'number' ? (n[keyword] as number) : undefined;
      if (before === after) return;
      const change =
        before === undefined
          ? `${keyword} ${after} added`
          : after === undefined
            ? `${keyword} ${before} removed`
            : `${keyword} changed from ${before} to ${after}`;
      const tightened = after !== undefined && (before === undefined || tighter(after, before));
      this.add(
        tightened ? 'constraint-tightened' : 'constraint-loosened',
        path,
        tightened,
        `${where(path)}: ${change}`,
      );
    };
    for (const keyword of upperBounds) bound(keyword, (a, b) => a < b);
    for (const keyword of lowerBounds) bound(keyword, (a, b) => a > b);

    const stepBefore = typeof p.multipleOf === 'number' ? p.multipleOf : undefined;
    const stepAfter = typeof n.multipleOf === 'number' ? n.multipleOf : undefined;
    if (stepBefore !== stepAfter) {
      // Every multiple of 4 is a multiple of 2: a step that divides the old one loosens.
      const loosened =
        stepAfter === undefined ||
        (stepBefore !== undefined && Number.isInteger(stepBefore / stepAfter));
      this.add(
        loosened ? 'constraint-loosened' : 'constraint-tightened',
        path,
        !loosened,
        `${where(path)}: multipleOf ${stepAfter === undefined ? 'removed' : `is now ${stepAfter}`}`,
      );
    }

    if (p.pattern !== n.pattern) {
      const change =
        p.pattern === undefined
          ? `pattern ${show(n.pattern)} added`
          : n.pattern === undefined
            ? 'pattern removed'
            : `pattern changed from ${show(p.pattern)} to ${show(n.pattern)}`;
      const tightened = n.pattern !== undefined;
      this.add(
        tightened ? 'constraint-tightened' : 'constraint-loosened',
        path,
        tightened,
        `${where(path)}: ${change}`,
      );
    }

    if ((p.uniqueItems === true) !== (n.uniqueItems === true)) {
      const now = n.uniqueItems === true;
      this.add(
        now ? 'constraint-tightened' : 'constraint-loosened',
        path,
        now,
        `${where(path)}: items ${now ? 'must now be unique' : 'may now repeat'}`,
      );
    }
  }

  private hasDefault(schema: unknown): boolean {
    const resolved = this.resolve(schema, this.nextRoot);
    return isObject(resolved) && Object.hasOwn(resolved, 'default');
  }

  private compareObjects(p: JsonSchema, n: JsonSchema, path: string): void {
    const present = (map: unknown) =>
      Object.fromEntries(
        Object.entries(isObject(map) ? map : {}).filter(([, schema]) => schema !== undefined),
      );
    const before = present(p.properties);
    const after = present(n.properties);
    const names = (s: JsonSchema) =>
      new Set(Array.isArray(s.required) ? (s.required as unknown[]).map(String) : []);
    const requiredBefore = names(p);
    const requiredAfter = names(n);
    const at = (name: string) => `${path}/${escapePointer(name)}`;

    const removed = Object.keys(before).filter((name) => !Object.hasOwn(after, name));
    const added = Object.keys(after).filter((name) => !Object.hasOwn(before, name));
    const renamedTo = new Set<string>();
    for (const name of removed) {
      const target = added.find(
        (candidate) => !renamedTo.has(candidate) && this.equivalent(before[name], after[candidate]),
      );
      if (target !== undefined) {
        renamedTo.add(target);
        this.add('field-renamed', at(name), true, `${at(name)} renamed to ${at(target)}`);
      } else {
        this.add('field-removed', at(name), true, `${at(name)} removed`);
      }
    }
    for (const name of added) {
      if (renamedTo.has(name)) continue;
      const required = requiredAfter.has(name);
      const withDefault = this.hasDefault(after[name]);
      const breaking = required && !withDefault;
      const what = !required
        ? 'optional field added'
        : withDefault
          ? 'required field added with a default'
          : 'required field added without a default';
      this.add('field-added', at(name), breaking, `${at(name)}: ${what}`);
    }
    for (const name of Object.keys(before)) {
      if (!Object.hasOwn(after, name)) continue;
      if (requiredAfter.has(name) && !requiredBefore.has(name)) {
        const withDefault = this.hasDefault(after[name]);
        this.add(
          'field-made-required',
          at(name),
          !withDefault,
          `${at(name)}: made required ${withDefault ? 'with' : 'without'} a default`,
        );
      } else if (requiredBefore.has(name) && !requiredAfter.has(name)) {
        this.add('field-made-optional', at(name), false, `${at(name)}: made optional`);
      }
      this.compare(before[name], after[name], at(name));
    }

    const extraBefore = p.additionalProperties;
    const extraAfter = n.additionalProperties;
    if (extraAfter === false && extraBefore !== false) {
      this.add(
        'additional-properties-closed',
        path,
        true,
        `${where(path)}: properties not listed in the schema are no longer allowed`,
      );
    } else if (extraBefore === false && extraAfter !== false) {
      this.add(
        'additional-properties-opened',
        path,
        false,
        `${where(path)}: properties not listed in the schema are now allowed`,
      );
    } else if (extraBefore !== undefined || extraAfter !== undefined) {
      this.compare(extraBefore ?? true, extraAfter ?? true, `${path}/*`);
    }
  }

  private compareArrays(p: JsonSchema, n: JsonSchema, path: string): void {
    if (p.items === undefined && n.items === undefined) return;
    if (!Array.isArray(p.items) && !Array.isArray(n.items)) {
      this.compare(p.items ?? true, n.items ?? true, `${path}/*`);
      return;
    }
    // Tuples: position by position, then whatever may follow the listed positions.
    const rest = (s: JsonSchema) =>
      Array.isArray(s.items) ? (s.additionalItems ?? true) : s.items;
    const at = (s: JsonSchema, i: number) =>
      Array.isArray(s.items) && i < s.items.length ? s.items[i] : (rest(s) ?? true);
    const length = Math.max(
      Array.isArray(p.items) ? p.items.length : 0,
      Array.isArray(n.items) ? n.items.length : 0,
    );
    for (let i = 0; i < length; i++) this.compare(at(p, i), at(n, i), `${path}/${i}`);
    this.compare(rest(p) ?? true, rest(n) ?? true, `${path}/*`);
  }

  private compareCompositions(p: JsonSchema, n: JsonSchema, path: string): void {
    for (const keyword of compositionKeywords) {
      const before = p[keyword];
      const after = n[keyword];
      if (before === undefined && after === undefined) continue;
      const same =
        Array.isArray(before) && Array.isArray(after)
          ? before.length === after.length &&
            before.every((branch, i) => this.equivalent(branch, after[i]))
          : before !== undefined && after !== undefined && this.equivalent(before, after);
      if (!same) {
        // Proving a change to a combinator safe needs a full schema-containment check; refuse it
        // and let the author supply an upcaster instead.
        this.add(
          'composition-changed',
          path,
          true,
          `${where(path)}: ${keyword} changed; cannot prove old payloads still match`,
        );
      }
    }
  }

  private compareOtherKeywords(p: JsonSchema, n: JsonSchema, path: string): void {
    const keywords = new Set([...Object.keys(p), ...Object.keys(n)]);
    for (const keyword of keywords) {
      if (understood.has(keyword) || deepEqual(p[keyword], n[keyword])) continue;
      this.add(
        'keyword-changed',
        path,
        true,
        `${where(path)}: ${keyword} changed; cannot prove old payloads still match`,
      );
    }
  }
}

/**
 * Compare two versions of a payload schema the way Confluent Schema Registry's BACKWARD mode
 * does: can every payload written with `previous` still be read with `next`?
 *
 * Breaking: a field removed or renamed, a type changed or narrowed, a field made required
 * without a default (or a new required field without one), an enum that lost a value, a const
 * changed, additional properties closed, a constraint tightened (`maxLength`, `minLength`,
 * `maximum`, `minimum`, `maxItems`, `minItems`, `pattern`, …), and any change to a combinator
 * (`anyOf`, `allOf`, `oneOf`, `not`, `if`) or to a keyword the checker does not model, because it
 * cannot prove those safe. Not breaking: an optional field added, a required field added with a
 * default, an enum widened, a constraint loosened, a field marked or unmarked `phi`.
 * The walk goes into nested objects, arrays, tuples and local `$ref`s.
 *
 * Keys a schema does not list are treated as unused: adding an optional field is not breaking
 * even when `additionalProperties` was open (Confluent is stricter there).
 *
 * @example
 * ```ts
 * const report = checkCompatibility(
 *   { type: 'object', properties: { status: { enum: ['draft', 'submitted', 'paid'] } } },
 *   { type: 'object', properties: { status: { enum: ['draft', 'submitted'] } } },
 * );
 * report.compatible; // false
 * report.changes[0]; // { kind: 'enum-narrowed', path: '/status', breaking: true, message: … }
 * ```
 * @throws nothing: schemas it cannot reason about produce breaking changes, not errors.
 */
export function checkCompatibility(
  previous: JsonSchema | boolean,
  next: JsonSchema | boolean,
): CompatibilityReport {
  const comparison = new Comparison(previous, next);
  comparison.compare(previous, next, '');
  const changes = comparison.changes;
  return { compatible: !changes.some((change) => change.breaking), changes };
}
