import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import { HyperSyncError } from '../core/errors.js';
import { keyIdentity } from './auth.js';

/**
 * Security headers on every answer (helmet's defaults: nosniff, frame and referrer policies, a
 * strict content security policy, HSTS), except that the bull-board dashboard's own page needs its
 * scripts and styles, so `/admin/` goes without the content security policy.
 */
export function securityHeaders(): RequestHandler {
  const strict = helmet();
  const dashboard = helmet({ contentSecurityPolicy: false });
  return (req, res, next) => (req.path.startsWith('/admin/') ? dashboard : strict)(req, res, next);
}

/**
 * At most `perSecond` requests per second per API key, or per client address for requests that
 * carry no valid key (so guessing keys is limited by address, however many keys are tried). Past
 * it: 429 with `Retry-After` and the `RateLimit` headers.
 */
export function rateLimiter(perSecond: number, keys: readonly string[]): RequestHandler {
  const identify = keyIdentity(keys);
  return rateLimit({
    windowMs: 1000,
    limit: perSecond,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: (req) => identify(req) ?? `addr:${ipKeyGenerator(req.ip ?? 'unknown')}`,
    handler: (_req, _res, next) => {
      next(
        new HyperSyncError(
          `rate limited: at most ${perSecond} requests per second; retry after the Retry-After seconds`,
          'rate_limited',
          429,
        ),
      );
    },
  });
}
