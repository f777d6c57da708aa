import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { UnavailableError } from '../../src/core/errors.js';
import { type JobInfo, type JobType, percentOf } from '../../src/jobs/job-queue.js';
import { Service } from '../../src/service.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { freshSeed, randomRows, rng } from '../fixtures/random.js';
import { OwnRedis } from '../fixtures/redis.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { sleep } from '../fixtures/wait.js';

const pgDown = await postgresProblem();
const skip = pgDown !== null && !servicesRequired;
if (skip) console.warn(`skipping worker end-to-end tests: ${pgDown}`);

const cli = join(import.meta.dirname, '../../src/cli/main.ts');
/** `n` fresh random vectors of `dim`, one array each. */
const vectorsOf = (n: number, dim: number): Float32Array[] => randomRows(rng(freshSeed()), n, dim);

describe.skipIf(skip)('hypersync worker: BullMQ on Redis, a separate worker process, PostgreSQL', () => {
  let redis: OwnRedis;
  let db: { url: string; drop: () => Promise<void> };
  let dataDir: string;
  let svc: Service;
  let base: string;
  let env: NodeJS.ProcessEnv;
  const workers = new Set<ChildProcess>();

  /** Starts the real `hypersync worker` (the CLI) and resolves once it says it runs. */
  async function startWorker(): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'worker'], {
      env: { ...env, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    workers.add(child);
    child.once('exit', () => workers.delete(child));
    const lines = createInterface({ input: child.stdout });
    for await (const line of lines) if (line.includes('hypersync worker running')) break;
    // Keep draining its log, or a full pipe would block the worker.
    child.stdout.resume();
    return child;
  }

  async function run(type: JobType, data: Record<string, unknown>): Promise<{ done: JobInfo; seen: JobInfo[] }> {
    const { id } = await svc.jobs.add(type, data);
    const seen: JobInfo[] = [];
    const done = await svc.jobs.wait(id, { timeoutMs: 60_000, onProgress: (i) => seen.push(i) });
    // Every processor reports its progress, ending at 100%.
    if (done.state === 'completed') expect(percentOf(done.progress)).toBe(100);
    return { done, seen };
  }

  const phases = (seen: JobInfo[]): string[] =>
    seen.map((i) => (typeof i.progress === 'object' ? String(i.progress.phase) : '')).filter((p) => p.length > 0);

  beforeAll(async () => {
    redis = await OwnRedis.start();
    db = await createScratchDatabase();
    dataDir = await mkdtemp(join(tmpdir(), 'workers-e2e-'));
    env = {
      ...process.env,
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      HYPERSYNC_DATA_DIR: dataDir,
      HYPERSYNC_QUEUE_PREFIX: `hs-e2e-${randomUUID().slice(0, 8)}`,
      HYPERSYNC_DEVICE: 'cpu',
      HYPERSYNC_JOB_LOCK_MS: '2000',
      HYPERSYNC_JOB_DRAIN_MS: '1000',
      HYPERSYNC_VERIFY_INTERVAL_MS: '0',
      HYPERSYNC_COMPACT_INTERVAL_MS: '0',
      HYPERSYNC_PORT: '0',
      HYPERSYNC_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    };
    svc = await Service.start(loadConfig(env), pino({ level: 'silent' }));
    base = `http://127.0.0.1:${svc.port}`;
    await startWorker();
  }, 60_000);

  afterAll(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await svc?.close();
    await redis?.stop();
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('runs every job type end to end in the worker, with progress and a result', async () => {
    const hs = svc.hs;
    await hs.createCollection('docs', { dim: 384, metric: 'cosine' });
    const vectors = vectorsOf(2000, 384);
    await hs.store(
      'docs',
      vectors.map((v, i) => ({ id: `d${i}`, vector: v, content: `doc ${i}` })),
    );
    // One write only the serving process's WAL holds: `sync` persists it.
    await hs.store('docs', [{ id: 'wal-only', vector: vectors[0], content: 'wal' }], { persist: false });

    const sync = await run('sync', { direction: 'hvs-to-nvm' });
    expect(sync.done.state).toBe('completed');
    const syncResult = sync.done.result as { nodes: { ok: boolean; result: { persisted: number } }[] };
    expect(syncResult.nodes).toHaveLength(1);
    expect(syncResult.nodes[0]).toMatchObject({ ok: true, result: { persisted: 1 } });
    expect((await hs.nvm.getBlocks('docs', ['wal-only'])).has('wal-only')).toBe(true);

    const rebuild = await run('rebuild', { collection: 'docs' });
    expect(rebuild.done.state).toBe('completed');
    expect(phases(rebuild.seen)).toContain('done');
    const rb = rebuild.done.result as {
      built: { rows: number };
      nodes: { ok: boolean; result: { from: string; rows: number } }[];
    };
    expect(rb.built.rows).toBe(2001);
    // Where the worker built the snapshot is the server's business: no path in the result.
    expect(rb.built).not.toHaveProperty('dir');
    expect(JSON.stringify(rebuild.done.result)).not.toMatch(/"\/[^"]*\//);
    expect(rb.nodes[0]).toMatchObject({ ok: true, result: { from: 'snapshot', rows: 2001 } });
    const [hit] = await hs.query('docs', [vectors[5]], 1);
    expect(hit[0]).toMatchObject({ id: 'd5', source: 'hvs' });

    // A difference planted in PostgreSQL behind the store's back: verify finds it and repairs it.
    await hs.nvm.unitOfWork((uow) => uow.deleteBlocks('docs', ['d9']));
    const verify = await run('verify', { collection: 'docs', repair: true });
    expect(verify.done.state).toBe('completed');
    expect(verify.done.result).toMatchObject({ consistent: true });

    const reindex = await run('reindex', { collection: 'docs', m: 8, efConstruction: 32 });
    expect(reindex.done.state).toBe('completed');
    expect(reindex.done.result).toMatchObject({ collection: 'docs', m: 8, efConstruction: 32 });
    expect(reindex.seen.length).toBeGreaterThan(0);

    // The serving process trains its IVF index when the worker asks over the control channel, and
    // snapshots it; queries then run on the lists.
    const index = await run('index', { collection: 'docs' });
    expect(index.done.state, index.done.error).toBe('completed');
    expect(index.done.result).toMatchObject({
      collection: 'docs',
      trained: true,
      nodes: [{ ok: true, result: { collection: 'docs', index: { state: 'ivf', ivf: { rows: 2000 } } } }],
    });
    expect((await hs.stats('docs')).hvs.index?.state).toBe('ivf');
    const [near] = await hs.query('docs', [vectors[7]], 1);
    expect(near[0].id).toBe('d7');

    const texts = Array.from({ length: 300 }, (_, i) => `embedded text number ${i} about vector search`);
    const embed = await run('embed', {
      collection: 'docs',
      items: texts.map((text, i) => ({ id: `t${i}`, text })),
      batchSize: 100,
    });
    expect(embed.done.state).toBe('completed');
    expect(embed.done.result).toMatchObject({ stored: 300 });
    expect(embed.seen.some((i) => typeof i.progress === 'object' && i.progress.phase === 'embed')).toBe(true);
    const lsn = (embed.done.result as { lsn: number }).lsn;
    const [found] = await hs.query('docs', ['embedded text number 17 about vector search'], 1, { minLsn: lsn });
    expect(found[0].id).toBe('t17');

    const compact = await run('compact', { collection: 'docs' });
    expect(compact.done.state).toBe('completed');
    expect((compact.done.result as { nodes: { ok: boolean }[] }).nodes[0].ok).toBe(true);
    expect(compact.done.result).toMatchObject({ changeLog: { pruned: false } });
    // Over every collection, the worker prunes the change log up to the serving process's
    // snapshots (reported over the control channel); writes after it are tailed as before.
    const all = await run('compact', {});
    expect(all.done.state, all.done.error).toBe('completed');
    const position = (all.done.result as { nodes: { result: { changeLogPosition: number } }[] }).nodes[0].result
      .changeLogPosition;
    expect(position).toBeGreaterThan(0);
    expect(all.done.result).toMatchObject({ changeLog: { prunedThrough: position } });
    expect(await hs.nvm.changesPrunedThrough()).toBe(position);
    const after = await run('embed', { collection: 'docs', items: [{ id: 'after-prune', text: 'written after the prune' }] });
    const [again] = await hs.query('docs', ['written after the prune'], 1, {
      minLsn: (after.done.result as { lsn: number }).lsn,
    });
    expect(again[0].id).toBe('after-prune');

    // The CLI queues the same jobs for the worker and prints them when finished.
    for (const args of [['index', 'docs'], ['rebuild', 'docs'], ['compact']]) {
      const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code, `${args.join(' ')}: ${err}`).toBe(0);
      expect(err).toMatch(/queued .*a hypersync worker runs it/);
      const info = JSON.parse(out) as JobInfo;
      expect(info).toMatchObject({ type: args[0], state: 'completed' });
      if (args[0] === 'compact')
        expect(info.result).toMatchObject({ changeLog: { prunedThrough: expect.any(Number) as number } });
    }

    const report = await hs.verifyConsistency('docs');
    expect(report.consistent).toBe(true);

    // A backup written by the worker, WAL-only writes of the serving process included; then the
    // collection dropped and restored by the worker, with the same digest in both tiers.
    await hs.store('docs', [{ id: 'wal-too', vector: vectors[3], content: 'wal' }], { persist: false });
    const backup = await run('backup', { name: 'docs.hsb', collection: 'docs' });
    expect(backup.done.state, backup.done.error).toBe('completed');
    const source = (await hs.verifyConsistency('docs')).nvm;
    expect(backup.done.result).toMatchObject({
      name: 'docs.hsb',
      collections: [{ name: 'docs', blocks: source.count, digest: source.digest }],
    });
    await hs.dropCollection('docs');
    const restore = await run('restore', { name: 'docs.hsb' });
    expect(restore.done.state, restore.done.error).toBe('completed');
    expect(restore.done.result).toMatchObject({
      consistent: true,
      nodes: { docs: [{ ok: true, result: { consistent: true } }] },
    });
    for (const r of [backup, restore]) expect(JSON.stringify(r.done.result)).not.toMatch(/"\/[^"]*\//);
    const restored = await hs.verifyConsistency('docs');
    expect(restored).toMatchObject({ consistent: true, nvm: source, hvs: source });
    expect(await hs.get('docs', 'wal-too')).toMatchObject({ content: 'wal' });
  }, 180_000);

  it('a worker killed mid-rebuild: the job is retried and completes; queries are answered throughout; nothing is lost', async () => {
    const hs = svc.hs;
    const n = 120_000;
    await hs.createCollection('big', { dim: 64, metric: 'l2' });
    const vectors = vectorsOf(n, 64);
    for (let i = 0; i < n; i += 20_000) {
      await hs.store(
        'big',
        vectors.slice(i, i + 20_000).map((v, j) => ({ id: `b${i + j}`, vector: v })),
      );
    }
    let queries = 0;
    const failures: string[] = [];
    let stop = false;
    const probe = (async () => {
      while (!stop) {
        const i = (queries * 7919) % n;
        const res = await fetch(`${base}/v1/collections/big/query`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ queries: [{ vector: Array.from(vectors[i]) }], k: 1 }),
        });
        const body = (await res.json()) as { results?: { id: string }[][] };
        if (res.status !== 200 || body.results?.[0][0]?.id !== `b${i}`) failures.push(`${res.status} ${JSON.stringify(body)}`);
        queries++;
      }
    })();

    const { id } = await svc.jobs.add('rebuild', { collection: 'big' });
    // Kill the worker once it has streamed part of the collection.
    const [first] = [...workers];
    for (let i = 0; i < 600; i++) {
      const info = await svc.jobs.get(id);
      const p = info?.progress;
      if (typeof p === 'object' && p.phase === 'build' && Number(p.rows) > 0) break;
      await sleep(25);
    }
    const info = await svc.jobs.get(id);
    expect(info?.state).toBe('active');
    first.kill('SIGKILL');
    await new Promise((r) => (first.exitCode !== null || first.signalCode !== null ? r(null) : first.once('exit', r)));
    // A write while no worker runs: the new index must hold it.
    await hs.store('big', [{ id: 'late', vector: vectors[3] }]);

    await startWorker();
    const done = await svc.jobs.wait(id, { timeoutMs: 90_000 });
    stop = true;
    await probe;
    expect(done.state).toBe('completed');
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    const rb = done.result as { nodes: { ok: boolean; result: { rows: number } }[] };
    expect(rb.nodes[0]).toMatchObject({ ok: true, result: { rows: n + 1 } });
    expect(failures.slice(0, 3)).toEqual([]);
    expect(queries).toBeGreaterThan(0);
    expect((await hs.stats('big')).hvs.count).toBe(n + 1);
    expect((await hs.verifyConsistency('big')).consistent).toBe(true);
  }, 240_000);

  it('Redis restarted: job submission answers 503 meanwhile, queries are unaffected, workers reconnect by themselves', async () => {
    const hs = svc.hs;
    await hs.createCollection('small', { dim: 8, metric: 'cosine' });
    const vectors = vectorsOf(100, 8);
    await hs.store(
      'small',
      vectors.map((v, i) => ({ id: `s${i}`, vector: v })),
    );
    await redis.stop();
    const t0 = performance.now();
    const submit = await fetch(`${base}/v1/collections/small/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'sync' }),
    });
    expect(submit.status).toBe(503);
    const err = (await submit.json()) as { error: { code: string; message: string } };
    expect(err.error.code).toBe('unavailable');
    expect(err.error.message).toMatch(/Redis/);
    expect(performance.now() - t0).toBeLessThan(5000);
    await expect(svc.jobs.add('sync', {})).rejects.toBeInstanceOf(UnavailableError);

    const q = await fetch(`${base}/v1/collections/small/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ queries: [{ vector: Array.from(vectors[4]) }], k: 1 }),
    });
    expect(q.status).toBe(200);
    expect(((await q.json()) as { results: { id: string }[][] }).results[0][0].id).toBe('s4');

    await redis.restart();
    // The queue, the worker and the control-channel listener reconnect on their own. A sync that
    // runs before the listener has re-subscribed completes with no HVS process answering (nobody
    // was subscribed): wait for one that reaches this process's listener.
    let done: JobInfo | undefined;
    const reached = (info: JobInfo | undefined): boolean =>
      info?.state === 'completed' && (info.result as { nodes: unknown[] }).nodes.length > 0;
    for (let i = 0; i < 60 && !reached(done); i++) {
      try {
        const { id } = await svc.jobs.add('sync', {});
        done = await svc.jobs.wait(id, { timeoutMs: 20_000 });
        if (!reached(done)) await sleep(500);
      } catch {
        await sleep(500);
      }
    }
    expect(done?.state).toBe('completed');
    expect((done?.result as { nodes: unknown[] }).nodes).toHaveLength(1);
  }, 120_000);
});
