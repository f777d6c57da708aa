import { InvalidArgumentError } from './errors.js';
import { LIMITS } from './limits.js';

/** `Array.isArray` that keeps the element type of a readonly array (the built-in widens it to any[]). */
export function isArray<T>(value: readonly T[]): value is readonly T[] {
  return Array.isArray(value);
}

/** Throws {@link InvalidArgumentError} unless `id` is a non-empty string of at most {@link LIMITS.idLength}. */
export function assertId(id: unknown, what: string): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError(`${what}: id must be a non-empty string`);
  if (id.length > LIMITS.idLength) throw new InvalidArgumentError(`${what}: id longer than ${LIMITS.idLength} characters`);
}
