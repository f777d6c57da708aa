/** `Array.isArray` that keeps the element type of a readonly array (the built-in widens it to any[]). */
export function isArray<T>(value: readonly T[]): value is readonly T[] {
  return Array.isArray(value);
}
