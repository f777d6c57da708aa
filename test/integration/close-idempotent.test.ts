import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, describe, it } from 'vitest';
import { ClosedError, UnavailableError } from '../../src/core/errors.js';
import { BullJobQueue } from '../../src/jobs/bullmq-job-queue.js';
import { JobWorkers } from '../../src/jobs/bullmq-workers.js';
import type { JobContext } from '../../src/jobs/processor.js';
import { NodeListener, RedisFleet } from '../../src/jobs/redis-fleet.js';
import { PgDriver } from '../../src/nvm/pg-driver.js';
import { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';
import { expectClosesTwice, type Closable } from '../fixtures/close-twice.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { openHyperSync } from '../fixtures/hypersync.js';
import { dropPrefix } from '../fixtures/redis.js';
import { postgresProblem, redisProblem, servicesRequired, testRedisUrl } from '../fixtures/services.js';

const pgProblem = await postgresProblem();
const redisDown = await redisProblem();
const skipPg = pgProblem !== null && !servicesRequired;
const skipRedis = redisDown !== null && !servicesRequired;
if (skipPg) console.warn(`skipping PostgreSQL close tests: ${pgProblem}`);
if (skipRedis) console.warn(`skipping Redis close tests: ${redisDown}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const log = pino({ level: 'silent' });
async function scratchUrl(): Promise<string> {
  const db = await createScratchDatabase();
  cleanups.push(db.drop);
  return db.url;
}
function prefix(): string {
  const p = `hs-close-${randomUUID().slice(0, 8)}`;
  cleanups.push(() => dropPrefix(testRedisUrl, p));
  return p;
}

/** Resources that need PostgreSQL or Redis: how to open each, used, for real. */
const cases: [string, boolean, () => Promise<Closable>][] = [
  [
    'PgDriver',
    skipPg,
    async () => {
      const d = new PgDriver({ connectionString: await scratchUrl() });
      await d.query('select 1');
      return { close: () => d.close(), use: () => d.query('select 1'), closedWith: ClosedError };
    },
  ],
  [
    'SqlNvmStore (PostgreSQL)',
    skipPg,
    async () => {
      const s = await SqlNvmStore.open({ databaseUrl: await scratchUrl() });
      return { close: () => s.close(), use: () => s.lastLsn(), closedWith: ClosedError };
    },
  ],
  [
    'HyperSync (PostgreSQL)',
    skipPg,
    async () => {
      const hs = await openHyperSync({ databaseUrl: await scratchUrl(), kernelThread: 'main' }, cleanups, 'close-hs-pg-');
      await hs.createCollection('c', { dim: 2, metric: 'l2' });
      return { close: () => hs.close(), use: () => hs.listCollections() && hs.sync(), closedWith: ClosedError };
    },
  ],
  [
    'BullJobQueue',
    skipRedis,
    async () => {
      const q = new BullJobQueue(testRedisUrl, prefix());
      await q.ping();
      return { close: () => q.close(), use: () => q.add('sync', {}), closedWith: UnavailableError };
    },
  ],
  [
    'JobWorkers',
    skipRedis,
    async () => {
      const w = await JobWorkers.start({
        redisUrl: testRedisUrl,
        prefix: prefix(),
        processors: {} as Parameters<typeof JobWorkers.start>[0]['processors'],
        context: { log } as unknown as JobContext,
        concurrency: { sync: 1, rebuild: 1, verify: 1, reindex: 1, embed: 1, compact: 1, index: 1, backup: 1, restore: 1 },
        log,
      });
      return { close: () => w.close() };
    },
  ],
  [
    'RedisFleet',
    skipRedis,
    async () => {
      const f = new RedisFleet(testRedisUrl, prefix());
      await f.run({ op: 'sync', direction: 'both' }); // nobody listens on a fresh prefix: no replies
      return { close: () => f.close() };
    },
  ],
  [
    'NodeListener',
    skipPg || skipRedis,
    async () => {
      const hs = await openHyperSync({ databaseUrl: await scratchUrl(), kernelThread: 'main' }, cleanups, 'close-nl-');
      cleanups.push(() => hs.close());
      const l = await NodeListener.start(hs, testRedisUrl, prefix(), log);
      return { close: () => l.close() };
    },
  ],
];

describe('close() is idempotent (services)', () => {
  for (const [name, skip, open] of cases) {
    it.skipIf(skip)(`${name}: twice at once and once more resolve; use after close is refused`, async () => {
      await expectClosesTwice(await open());
    });
  }
});
