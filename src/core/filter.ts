import { InvalidArgumentError } from './errors.js';
import { LIMITS } from './limits.js';

/**
 * Metadata filters: one grammar for the library, HTTP, the CLI and the LangChain adapter.
 *
 * - `{field: value}` is equality; several fields in one object must all match.
 * - Operators on a field: `$eq $ne $in $nin $gt $gte $lt $lte $exists $contains`.
 * - Combinators: `$and: [...]`, `$or: [...]`, `$not: {...}`.
 * - Nested objects are addressed by dotted paths: `{"source.kind": "web"}`.
 *
 * Semantics (the HVS columns, the SQL compiler and {@link matchesFilter} all implement exactly
 * these, and the property tests hold them to it):
 * - `$eq x` matches a value of x's JSON type equal to x (no array membership: see `$contains`).
 * - `$ne x` is `not $eq x`, so it also matches items without the field; `$nin` is `not $in`.
 * - `$gt $gte $lt $lte` compare numbers with numbers and strings with strings (by code point);
 *   a value of another type never matches.
 * - `$exists: true` matches when the field is present (any value, null included).
 * - `$contains x` matches an array holding x, or (x a string) a string holding x as a substring.
 */

/** A value a filter compares with. */
export type FilterScalar = string | number | boolean;

/** Operators on one field. */
export interface FieldOperators {
  $eq?: FilterScalar;
  $ne?: FilterScalar;
  $in?: readonly FilterScalar[];
  $nin?: readonly FilterScalar[];
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $exists?: boolean;
  $contains?: FilterScalar;
}

/** A metadata filter as callers write it (see the module comment). */
export interface Filter {
  $and?: readonly Filter[];
  $or?: readonly Filter[];
  $not?: Filter;
  [field: string]: FilterScalar | FieldOperators | Filter | readonly Filter[] | undefined;
}

export type CompareOp = 'gt' | 'gte' | 'lt' | 'lte';

/** A checked filter: the tree every backend evaluates. `path` is the dotted path split. */
export type FilterNode =
  | { op: 'all' }
  | { op: 'and' | 'or'; of: FilterNode[] }
  | { op: 'not'; of: FilterNode }
  | { op: 'eq'; path: string[]; value: FilterScalar }
  | { op: 'in'; path: string[]; values: FilterScalar[] }
  | { op: CompareOp; path: string[]; value: number | string }
  | { op: 'exists'; path: string[] }
  | { op: 'contains'; path: string[]; value: FilterScalar };

const FILTER_DEPTH = LIMITS.filterDepth;
const FILTER_TERMS = LIMITS.filterTerms;
const METADATA_DEPTH = LIMITS.metadataDepth;

const FIELD_OPS = new Set(['$eq', '$ne', '$in', '$nin', '$gt', '$gte', '$lt', '$lte', '$exists', '$contains']);

function fail(where: string, message: string): never {
  throw new InvalidArgumentError(`${where}: ${message}`, { details: { path: where } });
}

/** True for a string that is well-formed UTF-16 (no lone surrogate) and holds no NUL. */
export function isCleanString(s: string): boolean {
  // In a `u` regex a surrogate pair is one code point, so \p{Cs} finds only lone surrogates.
  return !UNCLEAN.test(s);
}
// eslint-disable-next-line no-control-regex -- NUL is exactly what this looks for
const UNCLEAN = /[\p{Cs}\u0000]/u;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function checkScalar(v: unknown, where: string): FilterScalar {
  if (typeof v === 'string') {
    if (!isCleanString(v)) fail(where, 'a string must be well-formed Unicode without NUL characters');
    return v;
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(where, 'a number must be finite');
    return v;
  }
  if (typeof v === 'boolean') return v;
  if (v === null) fail(where, 'null is not a value to compare with; use {"$exists": false}');
  if (Array.isArray(v)) fail(where, 'an array is not a value to compare with; use $in or $contains');
  fail(where, `expected a string, number or boolean, got ${typeof v}`);
}

function checkPath(field: string, where: string): string[] {
  if (field.length === 0) fail(where, 'an empty field name');
  if (!isCleanString(field)) fail(where, 'a field name must be well-formed Unicode without NUL characters');
  const path = field.split('.');
  if (path.some((p) => p.length === 0)) fail(where, `field ${JSON.stringify(field)} has an empty path segment`);
  if (path.some((p) => p.startsWith('$'))) fail(where, `unknown operator ${JSON.stringify(field)}`);
  return path;
}

/**
 * Checks a filter and turns it into the tree the backends evaluate. Throws
 * {@link InvalidArgumentError} naming the bad clause's path (`where.$or[1].year.$gte`) for an
 * unknown operator, a type mismatch, a nesting deeper than `LIMITS.filterDepth` or more than
 * `LIMITS.filterTerms` terms. `undefined` and `{}` match everything.
 */
export function compileFilter(filter: unknown, where = 'filter'): FilterNode {
  if (filter === undefined) return { op: 'all' };
  let terms = 0;
  const count = (n: number, at: string): void => {
    terms += n;
    if (terms > FILTER_TERMS) fail(at, `a filter may hold at most ${FILTER_TERMS} terms`);
  };
  const object = (f: unknown, at: string, depth: number): FilterNode => {
    if (depth > FILTER_DEPTH) fail(at, `filters nest at most ${FILTER_DEPTH} levels deep`);
    if (!isPlainObject(f)) fail(at, 'a filter must be an object');
    const parts: FilterNode[] = [];
    for (const [key, value] of Object.entries(f)) {
      const here = `${at}.${key}`;
      if (value === undefined) continue;
      if (key === '$and' || key === '$or') {
        if (!Array.isArray(value)) fail(here, `${key} takes an array of filters`);
        if (value.length === 0) fail(here, `${key} needs at least one filter`);
        const of = value.map((g, i) => object(g, `${here}[${i}]`, depth + 1));
        parts.push({ op: key === '$and' ? 'and' : 'or', of });
      } else if (key === '$not') {
        parts.push({ op: 'not', of: object(value, here, depth + 1) });
      } else if (key.startsWith('$')) {
        fail(here, `unknown operator ${JSON.stringify(key)}; one of $and, $or, $not, or a field name`);
      } else {
        parts.push(field(checkPath(key, here), value, here));
      }
    }
    if (parts.length === 0) return { op: 'all' };
    return parts.length === 1 ? parts[0] : { op: 'and', of: parts };
  };
  const field = (path: string[], cond: unknown, at: string): FilterNode => {
    if (!isPlainObject(cond)) {
      count(1, at);
      return { op: 'eq', path, value: checkScalar(cond, at) };
    }
    const parts: FilterNode[] = [];
    const keys = Object.keys(cond).filter((k) => cond[k] !== undefined);
    if (keys.length === 0) fail(at, 'an empty condition; give a value or operators such as {"$eq": …}');
    for (const key of keys) {
      const here = `${at}.${key}`;
      const v = cond[key];
      if (!FIELD_OPS.has(key)) {
        if (!key.startsWith('$')) fail(here, `nested objects are addressed by dotted paths ("${path.join('.')}.${key}")`);
        fail(here, `unknown operator ${JSON.stringify(key)}; one of ${[...FIELD_OPS].join(' ')}`);
      }
      count(1, here);
      switch (key) {
        case '$eq':
          parts.push({ op: 'eq', path, value: checkScalar(v, here) });
          break;
        case '$ne':
          parts.push({ op: 'not', of: { op: 'eq', path, value: checkScalar(v, here) } });
          break;
        case '$in':
        case '$nin': {
          if (!Array.isArray(v)) fail(here, `${key} takes an array of values`);
          count(v.length, here);
          const node: FilterNode = { op: 'in', path, values: v.map((x, i) => checkScalar(x, `${here}[${i}]`)) };
          parts.push(key === '$in' ? node : { op: 'not', of: node });
          break;
        }
        case '$gt':
        case '$gte':
        case '$lt':
        case '$lte': {
          if (typeof v !== 'number' && typeof v !== 'string') fail(here, `${key} compares numbers or strings`);
          parts.push({ op: key.slice(1) as CompareOp, path, value: checkScalar(v, here) as number | string });
          break;
        }
        case '$exists': {
          if (typeof v !== 'boolean') fail(here, '$exists takes true or false');
          const node: FilterNode = { op: 'exists', path };
          parts.push(v ? node : { op: 'not', of: node });
          break;
        }
        case '$contains':
          parts.push({ op: 'contains', path, value: checkScalar(v, here) });
          break;
      }
    }
    return parts.length === 1 ? parts[0] : { op: 'and', of: parts };
  };
  return object(filter, where, 1);
}

/** True when the checked filter matches everything (no filter). */
export function matchesAll(node: FilterNode): boolean {
  return node.op === 'all';
}

/** A stable text for a checked filter: equal filters give equal keys (cache keys, batching). */
export function filterKey(node: FilterNode): string {
  return JSON.stringify(node);
}

/** The value at `path` in `metadata`, descending through plain objects only; undefined if absent. */
export function valueAt(metadata: Record<string, unknown>, path: readonly string[]): unknown {
  let v: unknown = metadata;
  for (const p of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    if (!Object.hasOwn(v, p)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

/** Code-point order of two strings (UTF-8 byte order, PostgreSQL's `COLLATE "C"`): −1, 0 or 1. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate stands for a code point above U+FFFF: above every unit that is not one.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Whether `v` (a metadata value) compares as `op` against `x`. */
export function compareMatches(op: CompareOp, v: unknown, x: number | string): boolean {
  let c: number;
  if (typeof x === 'number') {
    if (typeof v !== 'number') return false;
    c = v < x ? -1 : v > x ? 1 : 0;
  } else {
    if (typeof v !== 'string') return false;
    c = compareCodePoints(v, x);
  }
  return op === 'gt' ? c > 0 : op === 'gte' ? c >= 0 : op === 'lt' ? c < 0 : c <= 0;
}

/** Whether `v` contains `x` (an array member, or a substring of a string). */
export function containsMatches(v: unknown, x: FilterScalar): boolean {
  if (Array.isArray(v)) return v.some((e) => e === x);
  return typeof v === 'string' && typeof x === 'string' && v.includes(x);
}

/** The reference evaluation of a checked filter against one item's metadata. */
export function matchesFilter(node: FilterNode, metadata: Record<string, unknown>): boolean {
  switch (node.op) {
    case 'all':
      return true;
    case 'and':
      return node.of.every((n) => matchesFilter(n, metadata));
    case 'or':
      return node.of.some((n) => matchesFilter(n, metadata));
    case 'not':
      return !matchesFilter(node.of, metadata);
    case 'eq':
      return valueAt(metadata, node.path) === node.value;
    case 'in': {
      const v = valueAt(metadata, node.path);
      return node.values.some((x) => x === v);
    }
    case 'exists':
      return valueAt(metadata, node.path) !== undefined;
    case 'contains':
      return containsMatches(valueAt(metadata, node.path), node.value);
    default:
      return compareMatches(node.op, valueAt(metadata, node.path), node.value);
  }
}

/**
 * Checks an item's metadata: a plain object whose keys are non-empty, hold no `.` (dotted paths
 * address nesting), start with no `$` and hold no NUL; values are strings, finite numbers,
 * booleans, null, arrays of strings, numbers and booleans, or nested objects of the same, at most
 * `LIMITS.metadataDepth` levels deep. Throws {@link InvalidArgumentError} naming the bad path.
 */
export function checkMetadata(metadata: unknown, where: string): Record<string, unknown> {
  const visit = (v: unknown, at: string, depth: number): void => {
    if (depth > METADATA_DEPTH) fail(at, `metadata nests at most ${METADATA_DEPTH} levels deep`);
    for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
      const here = `${at}.${key}`;
      if (key.length === 0) fail(at, 'an empty metadata key');
      if (!isCleanString(key)) fail(here, 'a key must be well-formed Unicode without NUL characters');
      if (key.includes('.')) fail(here, 'a key may not contain "." (filters address nested objects by dotted paths)');
      if (key.startsWith('$')) fail(here, 'a key may not start with "$" (filters use it for operators)');
      if (value === null || typeof value === 'boolean') continue;
      if (typeof value === 'string' || typeof value === 'number') {
        checkValue(value, here);
      } else if (Array.isArray(value)) {
        if (value.length > LIMITS.metadataArray) fail(here, `an array holds at most ${LIMITS.metadataArray} values`);
        value.forEach((e, i) => {
          if (typeof e !== 'string' && typeof e !== 'number' && typeof e !== 'boolean') {
            fail(`${here}[${i}]`, 'arrays hold strings, numbers and booleans only');
          }
          checkValue(e, `${here}[${i}]`);
        });
      } else if (isPlainObject(value)) {
        visit(value, here, depth + 1);
      } else {
        fail(here, `unsupported value of type ${typeof value}`);
      }
    }
  };
  const checkValue = (v: string | number | boolean, at: string): void => {
    if (typeof v === 'string' && !isCleanString(v)) fail(at, 'a string must be well-formed Unicode without NUL characters');
    if (typeof v === 'number' && !Number.isFinite(v)) fail(at, 'a number must be finite');
  };
  if (!isPlainObject(metadata)) fail(where, 'metadata must be an object');
  visit(metadata, where, 1);
  return metadata;
}
