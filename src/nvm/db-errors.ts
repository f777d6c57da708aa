import { CollectionExistsError, HyperSyncError, UnavailableError } from '../errors.js';

// Connection-level failures: the server is down, restarting, or refusing us.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
]);

/**
 * Maps a driver error to a typed one: unreachable server → {@link UnavailableError}; a unique
 * violation on the collection catalogue → {@link CollectionExistsError}; anything else unchanged.
 */
export function mapDbError(err: unknown, context: { collection?: string } = {}): unknown {
  if (err instanceof HyperSyncError) return err;
  const e = err as { code?: unknown; message?: unknown; constraint?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (
    (code && UNAVAILABLE_CODES.has(code)) ||
    /Connection terminated|timeout exceeded when trying to connect|encountered a connection error|not queryable/i.test(message)
  ) {
    return new UnavailableError(`database unavailable: ${message}`, { cause: err });
  }
  if (code === '23505' && context.collection !== undefined && e?.constraint === 'hs_collections_pkey') {
    return new CollectionExistsError(context.collection, { cause: err });
  }
  return err;
}
