import { InvalidArgumentError } from './errors.js';

/** Collection names: SQL- and file-system-safe identifiers. */
export const COLLECTION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Throws {@link InvalidArgumentError} unless `name` is a valid collection name. */
export function assertCollectionName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !COLLECTION_NAME.test(name)) {
    throw new InvalidArgumentError(
      `invalid collection name ${JSON.stringify(name)}: use 1-63 letters, digits or underscores, not starting with a digit`,
    );
  }
}
