import type { Schema } from '../client/index.js';

/**
 * An error answer of the hypersync API (`{ error: { code, message, details? } }`) as a thrown
 * error: branch on `instanceof HyperSyncApiError` and its `status` or `code`
 * (`invalid_argument`, `collection_not_found`, `dimension_mismatch`, `unauthorized`, …), never on
 * the message.
 */
export class HyperSyncApiError extends Error {
  /** The HTTP status of the answer (400, 401, 404, …). */
  readonly status: number;
  /** The API's stable error code, e.g. `invalid_argument`. */
  readonly code: string;
  /** The API's structured context (e.g. `issues` for a bad body), when it sent one. */
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(`${code}: ${message}`);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The error of a non-2xx answer whose body may or may not be the API's error shape (a proxy's, say). */
  static from(response: Response, body: unknown): HyperSyncApiError {
    const error = (body as Partial<Schema<'Error'>> | undefined)?.error;
    if (error !== undefined && typeof error.code === 'string' && typeof error.message === 'string') {
      return new HyperSyncApiError(response.status, error.code, error.message, error.details);
    }
    const text = typeof body === 'string' && body !== '' ? body : response.statusText;
    return new HyperSyncApiError(response.status, 'http_error', `${response.status} ${text}`.trim());
  }
}

/** The data of an openapi-fetch answer, or its error as a {@link HyperSyncApiError}. */
export function unwrap<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.error !== undefined || !r.response.ok) throw HyperSyncApiError.from(r.response, r.error);
  return r.data as T;
}
