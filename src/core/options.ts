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
