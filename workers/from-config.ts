import { join } from 'node:path';
import type { Logger } from 'pino';
import { DEFAULT_CONCURRENCY, PROCESSORS } from './index.js';
import type { Config } from '../src/config.js';
import type { ConfiguredEncoders } from '../src/encoder/from-config.js';
import { ConfigError } from '../src/core/errors.js';
import { Hvs } from '../src/hvs/hvs.js';
import type { HyperSync } from '../src/integration/hyper-sync.js';
import { encoderSetOf } from '../src/integration/item-input.js';
import { buildSnapshot } from '../src/integration/rebuild.js';
import { SqlNvmStore } from '../src/nvm/sql-nvm-store.js';
import { BullJobQueue } from '../src/jobs/bullmq-job-queue.js';
import { JobWorkers } from '../src/jobs/bullmq-workers.js';
import { InlineJobQueue } from '../src/jobs/inline-job-queue.js';
import type { JobQueue } from '../src/jobs/job-queue.js';
import { LocalFleet } from '../src/jobs/node-ops.js';
import { NodeListener, RedisFleet } from '../src/jobs/redis-fleet.js';

/** Where worker-built snapshots wait for the HVS processes: under the shared data directory. */
export const rebuildDirOf = (dataDir: string): string => join(dataDir, 'rebuilds');

/** The jobs side of a serving process. */
export interface ServiceJobs {
  queue: JobQueue;
  close(): Promise<void>;
}

/**
 * Jobs for a serving process: with `REDIS_URL`, a BullMQ queue (separate `hypersync worker`
 * processes run the jobs) and this process listens on the control channel for the HVS work jobs
 * ask of it; without, jobs run inline here. The repeatable `verify` is scheduled either way.
 */
export async function serviceJobs(config: Config, hs: HyperSync, log: Logger): Promise<ServiceJobs> {
  let queue: JobQueue;
  let listener: NodeListener | undefined;
  if (config.redisUrl !== undefined) {
    const bull = new BullJobQueue(config.redisUrl, config.queuePrefix);
    queue = bull;
    try {
      listener = await NodeListener.start(hs, config.redisUrl, config.queuePrefix, log);
    } catch (err) {
      await bull.close();
      throw err;
    }
  } else {
    queue = new InlineJobQueue({
      processors: PROCESSORS,
      concurrency: DEFAULT_CONCURRENCY,
      drainMs: config.jobDrainMs,
      context: {
        nvm: hs.nvm,
        encoders: hs.encoderSet,
        fleet: new LocalFleet(hs),
        rebuildDir: rebuildDirOf(config.dataDir),
        backupDir: config.backupDir,
        log,
      },
    });
  }
  // Over every collection: verify both tiers; compact, snapshot and prune the change log.
  for (const [type, everyMs] of [
    ['verify', config.verifyIntervalMs],
    ['compact', config.compactIntervalMs],
  ] as const) {
    if (everyMs <= 0) continue;
    await queue.repeat('schedule', type, {}, everyMs).catch((err: unknown) => {
      log.warn({ err: (err as Error).message }, `the repeatable ${type} could not be scheduled (Redis down?)`);
    });
  }
  return {
    queue,
    async close() {
      await queue.close();
      await listener?.close();
    },
  };
}

/** A running `hypersync worker`. */
export interface WorkerProcess {
  close(): Promise<void>;
}

/**
 * Starts a worker process: BullMQ workers for every job type over PostgreSQL (the NVM) and Redis.
 * Rebuilds are built here, into the shared data directory, and installed by the HVS processes.
 */
export async function startWorker(config: Config, encoders: ConfiguredEncoders, log: Logger): Promise<WorkerProcess> {
  if (config.redisUrl === undefined) {
    throw new ConfigError('hypersync worker needs REDIS_URL (without it, jobs run inline in hypersync serve)');
  }
  if (config.databaseUrl === undefined) {
    throw new ConfigError('hypersync worker needs DATABASE_URL (the embedded database belongs to one process)');
  }
  const nvm = await SqlNvmStore.open({ databaseUrl: config.databaseUrl });
  const opened: { close(): Promise<void> }[] = [nvm];
  try {
    const hvs = await Hvs.open({ dataDir: rebuildDirOf(config.dataDir), device: config.device });
    opened.push(hvs);
    const fleet = new RedisFleet(config.redisUrl, config.queuePrefix);
    opened.push(fleet);
    const workers = await JobWorkers.start({
      redisUrl: config.redisUrl,
      prefix: config.queuePrefix,
      processors: PROCESSORS,
      concurrency: DEFAULT_CONCURRENCY,
      lockMs: config.jobLockMs,
      drainMs: config.jobDrainMs,
      log,
      context: {
        nvm,
        encoders: encoderSetOf(encoders.encoder, encoders.encoders),
        fleet,
        rebuildDir: rebuildDirOf(config.dataDir),
        backupDir: config.backupDir,
        buildSnapshot: (collection, dir, opts) => buildSnapshot({ hvs, nvm, log }, collection, dir, opts),
        log,
      },
    });
    return {
      async close() {
        await workers.close();
        for (const r of opened.reverse()) await r.close().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const r of opened.reverse()) await r.close().catch(() => undefined);
    throw err;
  }
}
