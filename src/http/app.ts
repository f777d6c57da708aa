import express, { type Express } from 'express';
import type { Logger } from 'pino';
import type { Hvs } from '../hvs/hvs.js';
import { errorMiddleware } from './error-middleware.js';

/** What the HTTP app serves. */
export interface AppDeps {
  hvs: Hvs;
  log: Logger;
  /** Whether the service is ready (tiers reachable, HVS loaded). */
  ready: () => boolean;
}

/**
 * The Express app. This foundation serves liveness and readiness; the v1 API of DESIGN.md is
 * mounted here as the service grows.
 */
export function createApp({ hvs, log, ready }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '64mb' }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req, res) => {
    const isReady = ready();
    const memory = hvs.memoryUsage();
    res.status(isReady ? 200 : 503).json({
      ready: isReady,
      hvs: {
        device: hvs.deviceInfo.device,
        reason: hvs.deviceInfo.reason,
        runtime: `onnxruntime-node ${hvs.deviceInfo.runtime}`,
        collections: hvs.list().length,
        hostBytes: memory.hostBytes,
        deviceBytes: memory.deviceBytes,
      },
    });
  });

  app.use((_req, res) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such route' } });
  });
  app.use(errorMiddleware(log));
  return app;
}
