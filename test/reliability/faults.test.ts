/**
 * Faults the service must ride out without a restart, on instances of the test's own (stopped and
 * started at will without disturbing the shared services):
 * - PostgreSQL stopped (immediate shutdown, as a crash) under writes and queries: writes answer
 *   503 with a clear error, queries go on from the HVS, nothing acknowledged is lost, and writes
 *   succeed again by themselves once the database is back;
 * - Redis stopped and restarted: job submission answers 503, queries and writes go on, and a job
 *   queued before the outage and one submitted after it both run;
 * - the write-ahead log's disk full (a small tmpfs mounted on the WAL directory): `persist:
 *   false` writes answer 507 with a clear error, nothing written is corrupted, and once space
 *   returns writes are accepted again and every acknowledged one survives a SIGKILL.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createScratchDatabase } from '../fixtures/databases.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { tempDir } from '../fixtures/temp-dirs.js';
import { record } from './harness.js';
import { type PrivateService, privatePostgresProblem, startPrivatePostgres, startPrivateRedis } from './private-services.js';
import { call, type CliProcess, runJob, spawnCli, startServe } from './serve-process.js';

const run = promisify(execFile);
const pgProblem = await postgresProblem();
const privatePgProblem = await privatePostgresProblem();
const skipPg = pgProblem !== null || privatePgProblem !== null;
if (skipPg && servicesRequired) throw new Error(`fault tests need PostgreSQL: ${pgProblem ?? privatePgProblem}`);
if (skipPg) console.warn(`skipping the fault tests: ${pgProblem ?? privatePgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const DIM = 8;
const C = 'faults';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function vectorOf(n: number): number[] {
  return Array.from({ length: DIM }, (_, j) => Math.fround(Math.cos(n * 3.1 + j) * 10));
}

/** No address, path or stack in an error body a client sees. */
function expectCleanError(json: Record<string, unknown>, code: string): void {
  const error = json.error as { code: string; message: string } | undefined;
  expect(error?.code, JSON.stringify(json)).toBe(code);
  expect(error?.message).not.toMatch(/\d+\.\d+\.\d+\.\d+|:\d{4,5}\b|\/tmp\/|\/work\/|\n\s+at /);
}

/** Reads ids back and expects each with its vector. */
async function expectStored(url: string, ids: readonly number[]): Promise<void> {
  for (let off = 0; off < ids.length; off += 5000) {
    const page = ids.slice(off, off + 5000);
    const r = await call(url, 'POST', `/v1/collections/${C}/items/get`, { ids: page.map((n) => `n${n}`), include: ['vector'] });
    expect(r.status).toBe(200);
    const got = new Map((r.json.items as { id: string; vector: number[] }[]).map((it) => [it.id, it.vector]));
    for (const n of page) expect(got.get(`n${n}`), `n${n}`).toEqual(vectorOf(n));
  }
}

/** Writes batches of new ids until `stop()`; remembers which were acknowledged and what each answer was. */
function writeLoop(url: string, first: number, persist = true) {
  const acked: number[] = [];
  const statuses: number[] = [];
  const errors: Record<string, unknown>[] = [];
  let stopped = false;
  let next = first;
  const done = (async () => {
    while (!stopped) {
      const ids = Array.from({ length: 5 }, () => next++);
      const r = await call(url, 'POST', `/v1/collections/${C}/items`, {
        items: ids.map((n) => ({ id: `n${n}`, vector: vectorOf(n) })),
        persist,
      }).catch(() => ({ status: 0, json: {} }));
      statuses.push(r.status);
      if (r.status === 200) acked.push(...ids);
      else {
        errors.push(r.json);
        await sleep(50);
      }
    }
  })();
  return {
    acked,
    statuses,
    errors,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

function queryLoop(url: string) {
  const statuses: number[] = [];
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const r = await call(url, 'POST', `/v1/collections/${C}/query`, { queries: [{ vector: vectorOf(1) }], k: 3 }).catch(() => ({
        status: 0,
      }));
      statuses.push(r.status);
      await sleep(20);
    }
  })();
  return {
    statuses,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

describe.skipIf(skipPg)('faults', () => {
  it('PostgreSQL stopped under writes and queries: 503 meanwhile, nothing acknowledged lost, recovers by itself', async () => {
    const pg = await startPrivatePostgres();
    cleanups.push(() => pg.remove());
    const dataDir = await tempDir('hs-fault-pg-', cleanups);
    const svc = await startServe({ DATABASE_URL: pg.url, HYPERSYNC_DATA_DIR: dataDir });
    cleanups.push(() => svc.stop('SIGKILL').then(() => undefined));
    expect((await call(svc.url, 'POST', '/v1/collections', { name: C, dim: DIM, metric: 'l2' })).status).toBe(201);
    const writes = writeLoop(svc.url, 0);
    const queries = queryLoop(svc.url);
    await sleep(1000);
    await pg.stop();
    const before = { writes: writes.statuses.length, queries: queries.statuses.length };
    await sleep(3000);
    const during = {
      writes: writes.statuses.slice(before.writes + 2),
      queries: queries.statuses.slice(before.queries),
    };
    await pg.start();
    // Writes come back by themselves.
    const deadline = Date.now() + 30_000;
    const ackedAtRestart = writes.acked.length;
    while (writes.acked.length === ackedAtRestart && Date.now() < deadline) await sleep(100);
    await sleep(500);
    await writes.stop();
    await queries.stop();

    expect(during.writes.length).toBeGreaterThan(0);
    expect(new Set(during.writes)).toEqual(new Set([503]));
    for (const e of writes.errors) expectCleanError(e, 'unavailable');
    expect(writes.acked.length, 'writes resumed after the restart').toBeGreaterThan(ackedAtRestart);
    // Queries were answered by the HVS throughout.
    expect(during.queries.length).toBeGreaterThan(0);
    expect(queries.statuses.every((s) => s === 200)).toBe(true);
    await expectStored(svc.url, writes.acked);
    const verify = await runJob(svc.url, `/v1/collections/${C}/jobs`, { type: 'verify' });
    expect(verify.state, verify.error).toBe('completed');
    expect((verify.result as { consistent: boolean }).consistent).toBe(true);
    await svc.stop();
    record('faults survived', 1, 'PostgreSQL stop/start');
    record('acknowledged writes checked', writes.acked.length, 'PostgreSQL outage');
    record('acknowledged writes lost', 0, 'PostgreSQL outage');
  }, 180_000);

  it('Redis stopped and restarted: job submission 503, queries and writes unaffected, jobs resume', async () => {
    const redis = await startPrivateRedis();
    cleanups.push(() => redis.remove());
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const dataDir = await tempDir('hs-fault-redis-', cleanups);
    const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, HYPERSYNC_DATA_DIR: dataDir, HYPERSYNC_QUEUE_PREFIX: 'hsfault' };
    const svc = await startServe(env);
    cleanups.push(() => svc.stop('SIGKILL').then(() => undefined));
    let worker: CliProcess = spawnCli('worker', env);
    cleanups.push(() => worker.stop('SIGKILL').then(() => undefined));
    expect((await call(svc.url, 'POST', '/v1/collections', { name: C, dim: DIM, metric: 'l2' })).status).toBe(201);
    const items = Array.from({ length: 20 }, (_, n) => ({ id: `n${n}`, vector: vectorOf(n) }));
    expect((await call(svc.url, 'POST', `/v1/collections/${C}/items`, { items })).status).toBe(200);
    const first = await runJob(svc.url, `/v1/collections/${C}/jobs`, { type: 'verify' });
    expect(first.state, first.error).toBe('completed');

    // A job queued while no worker runs, then Redis goes down and comes back.
    await worker.stop();
    const queued = await call(svc.url, 'POST', `/v1/collections/${C}/jobs`, { type: 'verify' });
    expect(queued.status).toBe(202);
    await redis.stop();
    await sleep(500);
    const refused = await call(svc.url, 'POST', `/v1/collections/${C}/jobs`, { type: 'verify' });
    expect(refused.status).toBe(503);
    expectCleanError(refused.json, 'unavailable');
    const q = await call(svc.url, 'POST', `/v1/collections/${C}/query`, { queries: [{ vector: vectorOf(3) }], k: 1 });
    expect(q.status).toBe(200);
    expect((q.json.results as { id: string }[][])[0][0].id).toBe('n3');
    const w = await call(svc.url, 'POST', `/v1/collections/${C}/items`, { items: [{ id: 'n100', vector: vectorOf(100) }] });
    expect(w.status).toBe(200);
    await redis.start();
    worker = spawnCli('worker', env);
    // The job queued before the outage runs.
    const id = String(queued.json.jobId);
    const deadline = Date.now() + 60_000;
    let state = '';
    while (Date.now() < deadline) {
      const got = await call(svc.url, 'GET', `/v1/jobs/${encodeURIComponent(id)}`);
      state = String(got.json.state);
      if (state === 'completed' || state === 'failed') break;
      await sleep(200);
    }
    expect(state).toBe('completed');
    // And new ones are taken again.
    let after: Awaited<ReturnType<typeof runJob>> | undefined;
    for (let i = 0; i < 50 && !after; i++) {
      after = await runJob(svc.url, `/v1/collections/${C}/jobs`, { type: 'verify' }).catch(async () => {
        await sleep(200);
        return undefined;
      });
    }
    expect(after?.state).toBe('completed');
    expect((after?.result as { consistent: boolean }).consistent).toBe(true);
    await worker.stop();
    await svc.stop();
    record('faults survived', 1, 'Redis stop/start');
  }, 180_000);

  it("the WAL's disk full: 507 with a clear error, no corruption, writes again once space returns", async () => {
    const dataDir = await tempDir('hs-fault-disk-', cleanups);
    const walDir = join(dataDir, 'wal');
    await mkdir(walDir);
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', walDir]);
    } catch (err) {
      if (servicesRequired) throw err;
      console.warn(`skipping the disk-full fault: cannot mount a tmpfs (${(err as Error).message})`);
      return;
    }
    cleanups.push(() => run('umount', ['-l', walDir]).then(() => undefined));
    const env = { HYPERSYNC_DATA_DIR: dataDir };
    let svc = await startServe(env);
    cleanups.push(() => svc.stop('SIGKILL').then(() => undefined));
    expect((await call(svc.url, 'POST', '/v1/collections', { name: C, dim: DIM, metric: 'l2' })).status).toBe(201);
    const writes = writeLoop(svc.url, 0, false);
    const deadline = Date.now() + 60_000;
    while (writes.statuses.filter((s) => s === 507).length < 3 && Date.now() < deadline) await sleep(50);
    await writes.stop();
    expect(writes.statuses).toContain(507);
    expect(writes.acked.length).toBeGreaterThan(0);
    for (const e of writes.errors) expectCleanError(e, 'insufficient_storage');
    // The service is alive and reads go on.
    expect((await call(svc.url, 'GET', '/healthz')).status).toBe(200);
    await run('mount', ['-o', 'remount,size=8m', walDir]);
    const more = writeLoop(svc.url, 1_000_000, false);
    await sleep(1000);
    await more.stop();
    expect(more.acked.length).toBeGreaterThan(0);
    expect(more.statuses.every((s) => s === 200)).toBe(true);
    // Killed and restarted: the WAL opens (nothing corrupt) and every acknowledged write is there.
    await svc.stop('SIGKILL');
    svc = await startServe(env);
    const sync = await runJob(svc.url, `/v1/collections/${C}/jobs`, { type: 'sync' });
    expect(sync.state, sync.error).toBe('completed');
    await expectStored(svc.url, [...writes.acked, ...more.acked]);
    const count = await call(svc.url, 'POST', `/v1/collections/${C}/count`, {});
    expect(count.json.count).toBe(writes.acked.length + more.acked.length);
    await svc.stop();
    record('faults survived', 1, 'WAL disk full');
    record('acknowledged writes checked', writes.acked.length + more.acked.length, 'WAL disk full');
    record('acknowledged writes lost', 0, 'WAL disk full');
  }, 180_000);
});

export type { PrivateService };
