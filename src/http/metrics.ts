import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HyperSync } from '../integration/hyper-sync.js';
import type { JobCounts, JobQueue } from '../jobs/job-queue.js';

/** How long a scrape waits for the job counts (Redis) before it leaves them out. */
const JOB_COUNTS_TIMEOUT_MS = 2000;

/**
 * The service's Prometheus metrics (`GET /metrics`): request latency by route, and, read at each
 * scrape, the HVS's vectors and bytes per collection, the read cache's hit ratio, the result
 * cache's hits, misses, evictions and bytes, the write-ahead log's backlog (records not yet
 * persisted to PostgreSQL), and with a job queue, its jobs per type and state.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly latency: Histogram<'method' | 'route' | 'status'>;

  /** `perCollection: false` sums the HVS gauges instead of labelling them by collection name. */
  constructor(hs: HyperSync, jobs?: JobQueue, { perCollection = true }: { perCollection?: boolean } = {}) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'hypersync_' });
    // prom-client names three gauges `*_total`, which Prometheus reserves for counters (promtool
    // rejects them). They go: `hypersync_nodejs_active_resources` (by type) has the same figures,
    // and the handle and request lists they also read are private to Node.
    for (const name of ['active_handles', 'active_requests', 'active_resources']) {
      registry.removeSingleMetric(`hypersync_nodejs_${name}_total`);
    }
    this.latency = new Histogram({
      name: 'hypersync_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    for (const [metric, field, what] of [
      ['hypersync_hvs_vectors', 'vectors', 'Vectors held by the HVS'],
      ['hypersync_hvs_bytes', 'bytes', 'Bytes held by the HVS (host and device)'],
    ] as const) {
      new Gauge({
        name: metric,
        help: perCollection ? `${what}, per collection` : `${what}, all collections`,
        labelNames: perCollection ? ['collection'] : [],
        registers: [registry],
        collect() {
          this.reset();
          const usage = Object.entries(hs.hvsUsage());
          if (perCollection) for (const [name, u] of usage) this.set({ collection: name }, u[field]);
          else this.set(usage.reduce((sum, [, u]) => sum + u[field], 0));
        },
      });
    }
    new Gauge({
      name: 'hypersync_cache_hit_ratio',
      help: 'Hits over lookups of the read cache since start',
      registers: [registry],
      collect() {
        this.set(hs.metrics().cache.hitRatio);
      },
    });
    for (const [name, field, help] of [
      ['hypersync_result_cache_hits_total', 'hits', 'Queries the result cache answered since start'],
      ['hypersync_result_cache_misses_total', 'misses', 'Queries the result cache was asked and could not answer since start'],
      ['hypersync_result_cache_evictions_total', 'evictions', 'Answers the result cache evicted to keep within its budget'],
    ] as const) {
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(hs.metrics().results[field]);
        },
      });
    }
    for (const [name, field, help] of [
      ['hypersync_result_cache_hit_ratio', 'hitRatio', 'Hits over lookups of the result cache since start'],
      ['hypersync_result_cache_bytes', 'bytes', 'Bytes of the answers the result cache holds'],
      ['hypersync_result_cache_entries', 'entries', 'Answers the result cache holds'],
    ] as const) {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(hs.metrics().results[field]);
        },
      });
    }
    new Gauge({
      name: 'hypersync_wal_pending_records',
      help: 'Write-ahead-log records not yet persisted to PostgreSQL (the WAL lag)',
      registers: [registry],
      collect() {
        this.set(hs.metrics().wal.pending);
      },
    });
    new Gauge({
      name: 'hypersync_wal_bytes',
      help: 'Size of the write-ahead log file',
      registers: [registry],
      collect() {
        this.set(hs.metrics().wal.bytes);
      },
    });
    if (jobs) {
      new Gauge({
        name: 'hypersync_jobs',
        help: 'Background jobs per type and state (as the job queue counts them)',
        labelNames: ['type', 'state'],
        registers: [registry],
        async collect() {
          this.reset();
          // Redis down (or slow): no samples this scrape rather than a failed or hung scrape.
          const counts = await jobCountsWithin(jobs, JOB_COUNTS_TIMEOUT_MS);
          for (const [type, states] of Object.entries(counts ?? {}))
            for (const [state, n] of Object.entries(states)) this.set({ type, state }, n);
        },
      });
    }
  }

  /**
   * Observes each request's latency under its route template (`/v1/collections/:c/query`), not its
   * URL: the same label whether it answered 2xx or an error (see {@link routeLabel}).
   */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const end = this.latency.startTimer({ method: req.method });
      res.on('finish', () => {
        const template = (req.route as { path?: unknown } | undefined)?.path;
        end({
          route: routeLabel(req.originalUrl, typeof template === 'string' ? template : undefined),
          status: String(res.statusCode),
        });
      });
      next();
    };
  }
}

/**
 * The metric label of a request: its mount point and route template, without a trailing slash,
 * or `unmatched`. The mount point is taken from the URL (as many leading segments as the URL has
 * beyond the template's), since Express resets `req.baseUrl` once an error leaves the router: from
 * `baseUrl` a 4xx would be labelled `/:c/items/:id` and its 2xx `/v1/collections/:c/items/:id`.
 */
export function routeLabel(originalUrl: string, template: string | undefined): string {
  if (template === undefined) return 'unmatched';
  const url = originalUrl.split('?')[0].split('/').filter(Boolean);
  const route = template.split('/').filter(Boolean);
  if (route.length > url.length) return 'unmatched';
  return `/${[...url.slice(0, url.length - route.length), ...route].join('/')}`;
}

/** The queue's counts, or undefined when they fail or take longer than `ms`. */
async function jobCountsWithin(jobs: JobQueue, ms: number): Promise<JobCounts | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([jobs.counts().catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
