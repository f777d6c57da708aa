/**
 * Options merged over their defaults. Unlike `{ ...defaults, ...opts }`, a key the caller set to
 * `undefined` (an optional field passed through, `{ dim: config.dim }` with no `dim`) keeps its
 * default instead of erasing it.
 */
export function withDefaults<D extends object>(defaults: D, opts: { readonly [K in keyof D]?: D[K] | undefined } | undefined): D {
  const out = { ...defaults };
  if (opts === undefined) return out;
  for (const key of Object.keys(opts) as (keyof D)[]) {
    const value = opts[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * The object without its `undefined` values, so an optional field passed through (`{ dim: body.dim }`
 * with no `dim`) stays absent rather than present and `undefined`.
 */
export function definedOnly<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: { [K in keyof T]?: Exclude<T[K], undefined> } = {};
  for (const key of Object.keys(o) as (keyof T)[]) {
    const value = o[key];
    if (value !== undefined) out[key] = value as Exclude<T[keyof T], undefined>;
  }
  return out;
}
