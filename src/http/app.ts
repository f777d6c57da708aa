import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { HyperSync } from '../integration/hyper-sync.js';
import type { HealthReport } from '../integration/types.js';
import { BullJobQueue } from '../jobs/bullmq-job-queue.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { requireApiKey } from './auth.js';
import { collectionRoutes } from './routes/collections.js';
import { itemRoutes } from './routes/items.js';
import { dataRoutes } from './routes/data.js';
import { jobRoutes } from './routes/jobs.js';
import { errorMiddleware } from './error-middleware.js';
import { ServiceMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { encodeBody } from './schemas.js';
import { rateLimiter, securityHeaders } from './guard.js';
import { publicMessage } from './public-message.js';
import { parse, requireJsonBody } from './validate.js';
import { pinoHttp } from 'pino-http';

/** What the HTTP app serves. */
export interface AppDeps {
  hs: HyperSync;
  /** Background jobs (BullMQ or inline); without, the job routes answer 503. */
  jobs?: JobQueue;
  log: Logger;
  /** Bearer keys every `/v1` route requires (none: open). */
  apiKeys?: readonly string[];
  /** The service version, for `/openapi.json`. */
  version?: string;
  /** Requests per second per API key or client address on `/v1` and `/admin` (none: no limit). */
  rateLimit?: number;
  /** Whether the open probes name collections (`full`, the default) or only count them. */
  probeDetail?: 'full' | 'counts';
}

/**
 * The Express app: liveness, readiness, metrics and the OpenAPI document; the v1 API (behind the
 * bearer keys); and with BullMQ jobs, the bull-board dashboard at `/admin/queues` (same keys).
 */
export function createApp({ hs, jobs, log, apiKeys = [], version = '0.0.0', rateLimit, probeDetail = 'full' }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders());
  const metrics = new ServiceMetrics(hs, jobs, { perCollection: probeDetail === 'full' });
  const openapi = openApiDocument(version);
  app.use(metrics.middleware());
  // One log line per request; probes and scrapes would drown the rest.
  app.use(
    pinoHttp({ logger: log, autoLogging: { ignore: (req) => ['/healthz', '/readyz', '/metrics'].includes(req.url ?? '') } }),
  );
  app.use(express.json({ limit: '64mb' }));

  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // Ready: the NVM answers and the HVS has loaded every collection.
  app.get('/readyz', async (_req, res) => {
    const health = await hs.health();
    if (health.nvm.error !== undefined) health.nvm.error = publicMessage(health.nvm.error);
    const body = probeDetail === 'full' ? health : { ...health, hvs: countCollections(health.hvs) };
    res.status(health.ready ? 200 : 503).json(body);
  });

  // Limited before the key check, so wrong keys count against their client address.
  if (rateLimit !== undefined) {
    const limiter = rateLimiter(rateLimit, apiKeys);
    app.use('/v1', limiter);
    app.use('/admin', limiter);
  }
  app.use('/v1', requireApiKey(apiKeys));
  app.use('/v1', requireJsonBody);

  app.use('/v1/collections', collectionRoutes(hs));
  app.use('/v1/collections', itemRoutes(hs));
  app.use('/v1/collections', dataRoutes(hs));
  app.use('/v1', jobRoutes(hs, jobs));

  app.post('/v1/encode', async (req, res) => {
    const body = parse(encodeBody, req.body);
    const out = await hs.encode(body.texts, body.encoder === undefined ? {} : { encoder: body.encoder });
    res.json({ dim: out.dim, encoder: out.encoder, vectors: out.vectors.map((v) => Array.from(v)) });
  });

  if (jobs instanceof BullJobQueue) app.use('/admin/queues', requireApiKey(apiKeys), bullBoard(jobs));

  app.use((_req, res) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such route' } });
  });
  app.use(errorMiddleware(log));
  return app;
}

/** The bull-board dashboard of the BullMQ queues, served under `/admin/queues`. */
function bullBoard(queue: BullJobQueue): RequestHandler {
  const serverAdapter = new ExpressAdapter().setBasePath('/admin/queues');
  createBullBoard({ queues: queue.bullQueues().map((q) => new BullMQAdapter(q)), serverAdapter });
  return serverAdapter.getRouter() as RequestHandler;
}

/** The HVS part of a health report with its collections counted by state instead of named. */
function countCollections(hvs: HealthReport['hvs']): Omit<HealthReport['hvs'], 'collections'> & {
  collectionStates: Record<'loading' | 'ready' | 'failed', number>;
} {
  const { collections, ...rest } = hvs;
  const collectionStates = { loading: 0, ready: 0, failed: 0 };
  for (const state of Object.values(collections)) collectionStates[state]++;
  return { ...rest, collectionStates };
}
