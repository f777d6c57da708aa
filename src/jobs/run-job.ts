import { HyperSyncError, JobCancelledError } from '../core/errors.js';

/**
 * Whether another attempt could succeed: bad input and missing collections (4xx errors) will
 * not change by retrying; a cancelled job must not run again.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof JobCancelledError) return false;
  if (err instanceof HyperSyncError) return err.httpStatus >= 500;
  return true;
}

/** Backoff before attempt `attempt + 1`: base, 2·base, 4·base, … */
export function backoffMs(base: number, attempt: number): number {
  return base * 2 ** (attempt - 1);
}

/** The message stored with a failed or cancelled job. */
export function reasonOf(err: unknown): string {
  return err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
}
