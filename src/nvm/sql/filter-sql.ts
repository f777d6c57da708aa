import { InvalidArgumentError } from '../../core/errors.js';
import { isCleanString, type FilterNode, type FilterScalar } from '../../core/filter.js';

/**
 * A checked metadata filter ({@link FilterNode}) as a parameterised SQL boolean expression over a
 * `jsonb` metadata expression. Every value and every path travels as a `$n` parameter; no input
 * text is ever spliced into the SQL. Each leaf evaluates to true or false, never SQL NULL, so
 * `NOT` behaves as in JavaScript, and the whole matches `matchesFilter` exactly:
 *
 * - `eq` and `in` are containment (`m @> {"a":{"b":x}}`): JSON-type-aware equality that never
 *   descends into arrays, and what the GIN `jsonb_path_ops` index on `hs_blocks.metadata` serves.
 * - `gt…lte` compare numbers as `numeric` (exact for the decimal forms JSON numbers from
 *   JavaScript have, and never out of range) and strings `COLLATE "C"` (code-point order).
 * - `exists` is `m #> path IS NOT NULL` (JSON null is a present value).
 * - `contains` is containment of a one-element array, or for a string, `strpos` in a string value.
 *
 * `#>` indexes into an array when a path segment reads as an integer (`a.0`, `a.-1`), which
 * dotted paths must never do: before such a segment the value reached so far must be an object.
 */
export function filterToSql(node: FilterNode, metadata: string, params: unknown[]): string {
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  const visit = (n: FilterNode, where: string): string => {
    if (typeof n !== 'object' || n === null) bad(where, 'a filter node must be an object');
    switch (n.op) {
      case 'all':
        return 'true';
      case 'and':
      case 'or': {
        if (!Array.isArray(n.of) || n.of.length === 0) bad(where, `${n.op} needs at least one filter`);
        return `(${n.of.map((c, i) => visit(c, `${where}.${n.op}[${i}]`)).join(n.op === 'and' ? ' AND ' : ' OR ')})`;
      }
      case 'not':
        return `(NOT ${visit(n.of, `${where}.not`)})`;
      case 'eq':
        return `(${metadata} @> ${param(nested(checkPath(n.path, where), scalar(n.value, where)))}::jsonb)`;
      case 'in': {
        const path = checkPath(n.path, where);
        if (!Array.isArray(n.values)) bad(where, 'in takes an array of values');
        const docs = n.values.map((v, i) => nested(path, scalar(v, `${where}[${i}]`)));
        if (docs.length === 0) return 'false';
        // A short list as one containment per value, so the GIN index serves each (a bitmap OR).
        if (docs.length <= IN_EXPANDED) return `(${docs.map((d) => `${metadata} @> ${param(d)}::jsonb`).join(' OR ')})`;
        return `(${metadata} @> ANY(${param(docs)}::jsonb[]))`;
      }
      case 'exists': {
        const path = checkPath(n.path, where);
        return leaf(path, `(${metadata} #> ${param(path)}::text[]) IS NOT NULL`);
      }
      case 'contains': {
        const path = checkPath(n.path, where);
        const value = scalar(n.value, where);
        const inArray = `${metadata} @> ${param(nested(path, [value]))}::jsonb`;
        if (typeof value !== 'string') return `(${inArray})`;
        const p = param(path);
        const inString = leaf(
          path,
          `jsonb_typeof(${metadata} #> ${p}::text[]) = 'string' AND strpos(${metadata} #>> ${p}::text[], ${param(value)}::text) > 0`,
        );
        return `(${inArray} OR ${inString})`;
      }
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte': {
        const path = checkPath(n.path, where);
        const value = scalar(n.value, where);
        const op = COMPARE_SQL[n.op];
        const p = param(path);
        const v = `(${metadata} #> ${p}::text[])`;
        if (typeof value === 'number') {
          // String(x) is the shortest decimal that reads back as x: numeric compares it exactly.
          return leaf(
            path,
            `CASE WHEN jsonb_typeof(${v}) = 'number' THEN ${v}::numeric ${op} ${param(String(value))}::numeric ELSE false END`,
          );
        }
        if (typeof value !== 'string') bad(where, `${n.op} compares numbers or strings`);
        return leaf(
          path,
          `CASE WHEN jsonb_typeof(${v}) = 'string' THEN (${metadata} #>> ${p}::text[]) COLLATE "C" ${op} ${param(value)}::text ELSE false END`,
        );
      }
      default:
        bad(where, `unknown filter node ${JSON.stringify((n as { op?: unknown }).op)}`);
    }
  };
  /** `expr` under the guards `path` needs, never NULL. */
  const leaf = (path: string[], expr: string): string => {
    const guards: string[] = [];
    path.forEach((segment, i) => {
      if (!/\d/.test(segment)) return;
      const parent = i === 0 ? metadata : `(${metadata} #> ${param(path.slice(0, i))}::text[])`;
      guards.push(`jsonb_typeof(${parent}) = 'object'`);
    });
    return `COALESCE(${[...guards, `(${expr})`].join(' AND ')}, false)`;
  };
  return visit(node, 'filter');
}

/** Values of `in` beyond which one `@> ANY(array)` replaces a containment per value. */
const IN_EXPANDED = 16;

const COMPARE_SQL = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

/** `{"a": {"b": value}}` for path `[a, b]`, as JSON text. */
function nested(path: readonly string[], value: unknown): string {
  let doc: unknown = value;
  for (let i = path.length - 1; i >= 0; i--) doc = { [path[i]]: doc };
  return JSON.stringify(doc);
}

function bad(where: string, message: string): never {
  throw new InvalidArgumentError(`${where}: ${message}`, { details: { path: where } });
}

// The tree normally comes from compileFilter; these checks keep a hand-built one from reaching
// the database as something it would refuse with an internal error.
function checkPath(path: unknown, where: string): string[] {
  if (!Array.isArray(path) || path.length === 0) bad(where, 'a field path must be a non-empty array');
  for (const p of path) {
    if (typeof p !== 'string' || p.length === 0 || !isCleanString(p))
      bad(where, 'a field path holds non-empty strings without NUL');
  }
  return path as string[];
}

function scalar(v: unknown, where: string): FilterScalar {
  if (typeof v === 'string' && isCleanString(v)) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'boolean') return v;
  bad(where, 'expected a finite number, a boolean or a string without NUL');
}
