import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { UnauthorizedError } from '../core/errors.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * Bearer-key auth for the `/v1` routes when keys are configured. Keys are compared as SHA-256
 * digests with `timingSafeEqual` (equal lengths, constant time), against every key in turn.
 */
export function requireApiKey(keys: readonly string[]): RequestHandler {
  const digests = keys.map(digest);
  return (req, _res, next) => {
    if (digests.length === 0) {
      next();
      return;
    }
    const header = req.get('authorization') ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m) {
      next(new UnauthorizedError('missing bearer key: send Authorization: Bearer <key>'));
      return;
    }
    const given = digest(m[1].trim());
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, given) || ok;
    next(ok ? undefined : new UnauthorizedError('unknown API key'));
  };
}

/**
 * Who a request is for rate limiting: `key:<digest prefix>` when it carries one of `keys`, else
 * undefined (then its client address counts).
 */
export function keyIdentity(keys: readonly string[]): (req: Request) => string | undefined {
  const digests = keys.map(digest);
  return (req) => {
    const m = /^Bearer\s+(.+)$/i.exec(req.get('authorization') ?? '');
    if (!m || digests.length === 0) return undefined;
    const given = digest(m[1].trim());
    let found: Buffer | undefined;
    for (const d of digests) if (timingSafeEqual(d, given)) found = d;
    return found && `key:${found.toString('hex', 0, 8)}`;
  };
}
