import { InvalidArgumentError } from './errors.js';
import { LIMITS } from './limits.js';
import { isCleanString } from './text.js';

/** `Array.isArray` that keeps the element type of a readonly array (the built-in widens it to any[]). */
export function isArray<T>(value: readonly T[]): value is readonly T[] {
  return Array.isArray(value);
}

/** Throws {@link InvalidArgumentError} unless `id` is a non-empty string of at most {@link LIMITS.idLength}. */
export function assertId(id: unknown, what: string): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError(`${what}: id must be a non-empty string`);
  if (id.length > LIMITS.idLength) throw new InvalidArgumentError(`${what}: id longer than ${LIMITS.idLength} characters`);
}

/**
 * {@link assertId} for a block id a caller gives (store, get, delete, patch): also well-formed
 * Unicode without NUL, since PostgreSQL would refuse NUL and turn a lone surrogate into U+FFFD,
 * leaving the tiers with different ids.
 */
export function assertBlockId(id: unknown, what: string): asserts id is string {
  assertId(id, what);
  if (!isCleanString(id)) throw new InvalidArgumentError(`${what}: an id must be well-formed Unicode without NUL characters`);
}
