import { CollectionExistsError, HyperSyncError, UnavailableError } from '../core/errors.js';

// Socket errnos of a server that is down or refusing us; SQLSTATE classes 08 (connection
// exception) and 57P (shutdown, crash, cannot connect now) mean the same from the server's side.
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

/**
 * Maps a driver error to a typed one by its code alone (SQLSTATE, or a socket errno); the drivers
 * already turn transport failures without a code into {@link UnavailableError}: unreachable server → {@link UnavailableError}; a unique
 * violation on the collection catalogue → {@link CollectionExistsError}; anything else unchanged.
 */
export function mapDbError(err: unknown, context: { collection?: string } = {}): unknown {
  if (err instanceof HyperSyncError) return err;
  const e = err as { code?: unknown; message?: unknown; constraint?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code !== undefined && (UNAVAILABLE_ERRNOS.has(code) || code.startsWith('08') || code.startsWith('57P'))) {
    const message = typeof e?.message === 'string' ? e.message : String(err);
    return new UnavailableError(`database unavailable: ${message}`, { cause: err });
  }
  if (code === '23505' && context.collection !== undefined && e?.constraint === 'hs_collections_pkey') {
    return new CollectionExistsError(context.collection, { cause: err });
  }
  return err;
}

/** Runs `fn`, passing what it throws through {@link mapDbError}. */
export async function mapDbErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mapDbError(err);
  }
}
