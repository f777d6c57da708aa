import type { RequestHandler } from 'express';
import type { z } from 'zod';
import { HyperSyncError, InvalidArgumentError } from '../core/errors.js';

/** Parses a request part with its schema; a mismatch is a 400 listing every problem by path. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, what = 'body'): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${[what, ...i.path.map(String)].join('.')}: ${i.message}`);
  throw new InvalidArgumentError(issues.join('; '), { details: { issues } });
}

/**
 * Refuses a request body that is not JSON with 415 and a message that says what to send: without
 * `content-type: application/json` the JSON parser leaves the body unread, and the schemas could
 * only say "expected object, received undefined".
 */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody || req.is('application/json')) {
    next();
    return;
  }
  const type = req.headers['content-type'];
  const got = type ? `content-type '${type}'` : 'no content-type';
  next(
    new HyperSyncError(`body: send JSON with content-type: application/json (the request has ${got})`, 'invalid_argument', 415),
  );
};
