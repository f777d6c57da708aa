import { type ErrorCode, HyperSyncError, type HyperSyncErrorOptions } from '../core/errors.js';

/**
 * An error the service answered over HTTP (`{ error: { code, message, details? } }`), carried to
 * the CLI with its code and status, so it prints and exits as the same error would in process.
 */
export class RemoteApiError extends HyperSyncError {
  constructor(message: string, code: ErrorCode, httpStatus: number, opts?: HyperSyncErrorOptions) {
    super(message, code, httpStatus, opts);
  }
}
