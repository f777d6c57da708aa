import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { HyperSyncError, PayloadTooLargeError } from '../core/errors.js';
import { publicMessage } from './public-message.js';

/**
 * The one place errors become HTTP answers: `{ error: { code, message, details? } }` with the
 * error's status. Unknown errors are logged and answered as a bare 500, never with a stack; a 5xx
 * message goes out without host addresses or file paths ({@link publicMessage}).
 */
export function errorMiddleware(log: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const typed = err instanceof HyperSyncError ? err : fromBodyParser(err);
    if (typed) {
      if (typed.httpStatus >= 500) {
        // The log has the whole story; the client gets it without addresses, paths or details.
        log.error({ err }, typed.message);
        res.status(typed.httpStatus).json({ error: { code: typed.code, message: publicMessage(typed.message) } });
        return;
      }
      res.status(typed.httpStatus).json({
        error: { code: typed.code, message: typed.message, ...(typed.details ? { details: typed.details } : {}) },
      });
      return;
    }
    log.error({ err }, 'unhandled error');
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
  };
}

/** body-parser's errors carry a status: 413 for a body past the limit, 400 for malformed JSON, 415 for an unknown charset. */
function fromBodyParser(err: unknown): HyperSyncError | undefined {
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  const message = (err as Error).message;
  return status === 413
    ? new PayloadTooLargeError(message, { cause: err })
    : new HyperSyncError(message, 'invalid_argument', status, { cause: err });
}
