import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { UnauthorizedError } from '../core/errors.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * The configured key a request's `Authorization: Bearer <key>` matches: `null` when it sends no
 * bearer key, `undefined` when the key is unknown. Keys are compared as SHA-256 digests with
 * `timingSafeEqual` (equal lengths, constant time), against every key in turn.
 */
function keyMatcher(keys: readonly string[]): (req: Request) => Buffer | null | undefined {
  const digests = keys.map(digest);
  return (req) => {
    const m = /^Bearer\s+(.+)$/i.exec(req.get('authorization') ?? '');
    if (!m) return null;
    const given = digest(m[1].trim());
    let found: Buffer | undefined;
    for (const d of digests) if (timingSafeEqual(d, given)) found = d;
    return found;
  };
}

/** Bearer-key auth for the `/v1` routes when keys are configured. */
export function requireApiKey(keys: readonly string[]): RequestHandler {
  const match = keyMatcher(keys);
  return (req, _res, next) => {
    if (keys.length === 0) {
      next();
      return;
    }
    const found = match(req);
    if (found === null) next(new UnauthorizedError('missing bearer key: send Authorization: Bearer <key>'));
    else next(found ? undefined : new UnauthorizedError('unknown API key'));
  };
}

/**
 * Who a request is for rate limiting: `key:<digest prefix>` when it carries one of `keys`, else
 * undefined (then its client address counts).
 */
export function keyIdentity(keys: readonly string[]): (req: Request) => string | undefined {
  const match = keyMatcher(keys);
  return (req) => {
    const found = match(req);
    return found ? `key:${found.toString('hex', 0, 8)}` : undefined;
  };
}
