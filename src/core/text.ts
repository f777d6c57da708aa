/** True for a string that is well-formed UTF-16 (no lone surrogate) and holds no NUL. */
export function isCleanString(s: string): boolean {
  // In a `u` regex a surrogate pair is one code point, so \p{Cs} finds only lone surrogates.
  return !UNCLEAN.test(s);
}
// eslint-disable-next-line no-control-regex -- NUL is what it looks for
const UNCLEAN = /[\p{Cs}\u0000]/u;
