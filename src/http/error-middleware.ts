import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { HyperSyncError } from '../errors.js';

/**
 * The one place errors become HTTP answers: `{ error: { code, message, details? } }` with the
 * error's status. Unknown errors are logged and answered as a bare 500, never with a stack.
 */
export function errorMiddleware(log: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    if (err instanceof HyperSyncError) {
      if (err.httpStatus >= 500) log.error({ err }, err.message);
      res.status(err.httpStatus).json({
        error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) },
      });
      return;
    }
    // body-parser's errors carry a status (400 malformed JSON, 413 too large).
    const status = (err as { status?: unknown } | null)?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const code = status === 413 ? 'payload_too_large' : 'invalid_argument';
      res.status(status).json({ error: { code, message: (err as Error).message } });
      return;
    }
    log.error({ err }, 'unhandled error');
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
  };
}
