import { InvalidArgumentError } from '../errors.js';

/** Longest id accepted (HVS rows and NVM blocks alike). */
export const MAX_ID_LENGTH = 512;

/** `Array.isArray` that keeps the element type of a readonly array (the built-in widens it to any[]). */
export function isArray<T>(value: readonly T[]): value is readonly T[] {
  return Array.isArray(value);
}

/** Throws {@link InvalidArgumentError} unless `id` is a non-empty string of at most {@link MAX_ID_LENGTH}. */
export function assertId(id: unknown, what: string): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError(`${what}: id must be a non-empty string`);
  if (id.length > MAX_ID_LENGTH) throw new InvalidArgumentError(`${what}: id longer than ${MAX_ID_LENGTH} characters`);
}
