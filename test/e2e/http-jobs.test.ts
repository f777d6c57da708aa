import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createApp } from '../../src/http/app.js';
import type { JobInfo } from '../../src/jobs/job-queue.js';
import { Service } from '../../src/service.js';
import { freshSeed, randomVectors, rng } from '../fixtures/random.js';
import { OwnRedis } from '../fixtures/redis.js';
import { redisProblem, servicesRequired } from '../fixtures/services.js';
import { sleep } from '../fixtures/wait.js';

const redisDown = await redisProblem();
if (redisDown && !servicesRequired) console.warn(`skipping the BullMQ HTTP jobs tests: ${redisDown}`);

/** The parts of answers these tests read. */
interface ApiBody {
  error?: { code: string; message: string };
  jobId?: string;
  created?: boolean;
  [k: string]: unknown;
}

interface Answer {
  status: number;
  json: ApiBody;
  headers: Headers;
}

/** A client of one server: JSON in, JSON out, with an optional bearer key. */
function client(base: () => string, key?: string) {
  return async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const res = await fetch(`${base()}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as ApiBody, headers: res.headers };
  };
}

const b64 = (v: Float32Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

describe('background jobs over HTTP, inline (no REDIS_URL)', () => {
  let dataDir: string;
  let svc: Service;
  const call = client(() => `http://127.0.0.1:${svc.port}`);
  const DIM = 384;
  const N = 300;
  const C = 'jobbed';

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'http-jobs-'));
    svc = await Service.start(
      loadConfig({
        HYPERSYNC_PORT: '0',
        HYPERSYNC_HOST: '127.0.0.1',
        HYPERSYNC_DATA_DIR: dataDir,
        HYPERSYNC_DEVICE: 'cpu',
        HYPERSYNC_VERIFY_INTERVAL_MS: '0',
        HYPERSYNC_COMPACT_INTERVAL_MS: '0',
      }),
      pino({ level: 'silent' }),
    );
    expect((await call('POST', '/v1/collections', { name: C, dim: DIM, metric: 'cosine' })).status).toBe(201);
    const seed = freshSeed();
    const vectors = randomVectors(rng(seed), N, DIM);
    const items = Array.from({ length: N }, (_, i) => ({ id: `v${i}`, vector: b64(vectors.subarray(i * DIM, (i + 1) * DIM)) }));
    const stored = await call('POST', `/v1/collections/${C}/items`, { items });
    expect(stored.status, `seed ${seed}`).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await svc.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** Polls a job until it is finished, whatever its end. */
  async function finished(id: string): Promise<JobInfo> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const info = (await call('GET', `/v1/jobs/${id}`)).json as unknown as JobInfo;
      if (['completed', 'failed', 'cancelled'].includes(info.state)) return info;
      if (Date.now() > deadline) throw new Error(`job ${id} still ${info.state} after 60 s`);
      await sleep(50);
    }
  }

  /** Queues a job on the collection (or, with `path`, there) and polls it until it is finished. */
  async function run(body: Record<string, unknown>, path = `/v1/collections/${C}/jobs`): Promise<JobInfo> {
    const r = await call('POST', path, body);
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    expect(r.json.created).toBe(true);
    const id = r.json.jobId as string;
    expect(r.headers.get('location')).toBe(`/v1/jobs/${id}`);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const got = await call('GET', `/v1/jobs/${id}`);
      expect(got.status).toBe(200);
      const info = got.json as unknown as JobInfo;
      if (['completed', 'failed', 'cancelled'].includes(info.state)) {
        expect(info.state, info.error).toBe('completed');
        return info;
      }
      if (Date.now() > deadline) throw new Error(`job ${id} still ${info.state} after 60 s`);
      await sleep(50);
    }
  }

  it('runs every job type to completion, each with its result', async () => {
    const sync = await run({ type: 'sync' });
    expect(sync).toMatchObject({ type: 'sync', attempts: 1, progress: { percent: 100 } });
    expect(sync.result).toMatchObject({ direction: 'both', nodes: [{ ok: true }] });

    const rebuild = await run({ type: 'rebuild' });
    expect(rebuild.result).toMatchObject({ collection: C, nodes: [{ ok: true, result: { rows: N, from: 'nvm' } }] });

    const verify = await run({ type: 'verify', repair: true });
    expect(verify.result).toMatchObject({ consistent: true, repair: true });
    expect((verify.result as { collections: Record<string, unknown[]> }).collections[C]).toMatchObject([
      { ok: true, result: { consistent: true } },
    ]);

    const reindex = await run({ type: 'reindex', m: 8, efConstruction: 32 });
    expect(reindex.result).toMatchObject({ collection: C });

    const index = await run({ type: 'index', nlist: 8 });
    expect(index).toMatchObject({ type: 'index', progress: { percent: 100 } });
    expect(index.result).toMatchObject({
      collection: C,
      trained: true,
      nodes: [{ ok: true, result: { index: { state: 'ivf', ivf: { nlist: 8, rows: N } } } }],
    });
    const stats = await call('GET', `/v1/collections/${C}`);
    expect(stats.json).toMatchObject({ hvs: { index: { state: 'ivf', deltaRows: 0, ivf: { nlist: 8 } } } });

    const texts = ['the cat sat on the mat', 'stock markets fell', 'a quiet afternoon'];
    const embed = await run({ type: 'embed', items: texts.map((text, i) => ({ id: `t${i}`, text, metadata: { i } })) });
    expect(embed.result).toMatchObject({ collection: C, stored: texts.length });
    const item = await call('GET', `/v1/collections/${C}/items/t1`);
    expect(item.status).toBe(200);
    expect(item.json).toMatchObject({ id: 't1', metadata: { i: 1 } });
    expect(item.json.vector as number[]).toHaveLength(DIM);

    const compact = await run({ type: 'compact' });
    expect(compact.result).toMatchObject({ nodes: [{ ok: true }], changeLog: { pruned: false } });
    // Over every collection: the change log is pruned up to this process's snapshots.
    const all = await run({ type: 'compact' }, '/v1/jobs');
    const position = (all.result as { nodes: { result: { changeLogPosition: number } }[] }).nodes[0].result.changeLogPosition;
    expect(position).toBeGreaterThan(0);
    expect(all.result).toMatchObject({ changeLog: { prunedThrough: position } });
    expect(await svc.hs.nvm.changesPrunedThrough()).toBe(position);
    expect((await run({ type: 'verify' }, '/v1/jobs')).result).toMatchObject({ consistent: true });

    const counts = await call('GET', '/v1/jobs');
    expect(counts.status).toBe(200);
    expect(counts.json).toMatchObject({
      kind: 'inline',
      counts: { rebuild: { completed: 1, failed: 0 }, embed: { completed: 1 }, sync: { completed: 1 } },
    });

    // Cancelling a finished job leaves it as it is.
    const del = await call('DELETE', `/v1/jobs/${rebuild.id}`);
    expect(del.status).toBe(200);
    expect(del.json).toMatchObject({ id: rebuild.id, state: 'completed' });
    expect((await call('GET', `/v1/jobs/${rebuild.id}`)).json).toMatchObject({ state: 'completed' });

    const metrics = await (await fetch(`http://127.0.0.1:${svc.port}/metrics`)).text();
    expect(metrics).toMatch(/hypersync_jobs\{type="rebuild",state="completed"\} 1/);
    expect(metrics).toMatch(/hypersync_jobs\{type="verify",state="waiting"\} 0/);
  }, 120_000);

  it('backs up and restores by name as jobs: results name the backup, never a path; digests survive a drop and restore', async () => {
    const S = 'spare';
    expect((await call('POST', '/v1/collections', { name: S, dim: 16, metric: 'l2' })).status).toBe(201);
    const vectors = randomVectors(rng(freshSeed()), 40, 16);
    const items = Array.from({ length: 40 }, (_, i) => ({
      id: `s${i}`,
      vector: b64(vectors.subarray(i * 16, (i + 1) * 16)),
      content: `spare ${i}`,
      metadata: { i },
    }));
    expect((await call('POST', `/v1/collections/${S}/items`, { items })).status).toBe(200);
    const before = (await call('GET', `/v1/collections/${S}/consistency`)).json as { nvm: { count: number; digest: string } };

    const one = await run({ type: 'backup', name: 'spare-1.hsb' }, `/v1/collections/${S}/jobs`);
    expect(one).toMatchObject({ type: 'backup', progress: { percent: 100 } });
    expect(one.result).toMatchObject({
      name: 'spare-1.hsb',
      collections: [{ name: S, blocks: 40, digest: before.nvm.digest }],
      blocks: 40,
    });
    const r1 = one.result as { lsn: number; bytes: number };
    expect(r1.lsn).toBeGreaterThan(0);
    expect(r1.bytes).toBeGreaterThan(40 * 16 * 4);
    const all = await run({ type: 'backup', name: 'all.hsb.gz' }, '/v1/jobs');
    expect((all.result as { collections: { name: string }[] }).collections.map((c) => c.name)).toEqual(
      expect.arrayContaining([C, S]),
    );
    // A name that exists is refused, not overwritten.
    const dup = await call('POST', '/v1/jobs', { type: 'backup', name: 'all.hsb.gz', attempts: 1 });
    const failed = await finished(dup.json.jobId as string);
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/backup all\.hsb\.gz exists already/);

    expect((await call('DELETE', `/v1/collections/${S}`)).status).toBe(204);
    const restored = await run({ type: 'restore', name: 'spare-1.hsb' }, '/v1/jobs');
    expect(restored.result).toMatchObject({
      name: 'spare-1.hsb',
      collections: [{ name: S, blocks: 40, digest: before.nvm.digest }],
      backupLsn: r1.lsn,
      consistent: true,
    });
    const after = (await call('GET', `/v1/collections/${S}/consistency`)).json;
    expect(after).toMatchObject({ consistent: true, nvm: before.nvm, hvs: before.nvm });
    expect((await call('GET', `/v1/collections/${S}/items/s7`)).json).toMatchObject({ content: 'spare 7', metadata: { i: 7 } });
    for (const job of [one, all, restored, failed]) expect(JSON.stringify(job)).not.toContain(dataDir);

    // The collection exists now: a second restore fails at once (409, not retried), naming it.
    const twice = await call('POST', '/v1/jobs', { type: 'restore', name: 'spare-1.hsb' });
    const twiceJob = await finished(twice.json.jobId as string);
    expect(twiceJob).toMatchObject({ state: 'failed', attempts: 1 });
    expect(twiceJob.error).toMatch(/collection "spare" already exists/);
    const none = await call('POST', '/v1/jobs', { type: 'restore', name: 'no-such.hsb' });
    const noneJob = await finished(none.json.jobId as string);
    expect(noneJob).toMatchObject({ state: 'failed', attempts: 1 });
    expect(noneJob.error).toMatch(/no backup "no-such\.hsb"/);
  }, 120_000);

  it('answers a known idempotency key with the job it names', async () => {
    const key = `k-${randomUUID()}`;
    const first = await call('POST', `/v1/collections/${C}/jobs`, { type: 'verify', key, attempts: 1 });
    const second = await call('POST', `/v1/collections/${C}/jobs`, { type: 'verify', key });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(first.json).toEqual({ jobId: `verify-${key}`, created: true });
    expect(second.json).toEqual({ jobId: first.json.jobId, created: false });
    // Another type with the same key is another job.
    expect((await call('POST', `/v1/collections/${C}/jobs`, { type: 'sync', key })).json).toEqual({
      jobId: `sync-${key}`,
      created: true,
    });
  });

  it('answers bad submissions and unknown jobs with the right 4xx and a message', async () => {
    const cases: [string, string, unknown, number, string][] = [
      ['unknown type', `/v1/collections/${C}/jobs`, { type: 'defrag' }, 400, 'invalid_argument'],
      ['no type', `/v1/collections/${C}/jobs`, { m: 8 }, 400, 'invalid_argument'],
      ['not an object', `/v1/collections/${C}/jobs`, [1, 2], 400, 'invalid_argument'],
      ['m below 2', `/v1/collections/${C}/jobs`, { type: 'reindex', m: 1 }, 400, 'invalid_argument'],
      ['nlist 0', `/v1/collections/${C}/jobs`, { type: 'index', nlist: 0 }, 400, 'invalid_argument'],
      ['targetRecall 1', `/v1/collections/${C}/jobs`, { type: 'index', targetRecall: 1 }, 400, 'invalid_argument'],
      ['all collections: an index', '/v1/jobs', { type: 'index' }, 400, 'invalid_argument'],
      ['unknown parameter', `/v1/collections/${C}/jobs`, { type: 'rebuild', force: true }, 400, 'invalid_argument'],
      ['collection in the body', `/v1/collections/${C}/jobs`, { type: 'rebuild', collection: 'other' }, 400, 'invalid_argument'],
      ['no texts', `/v1/collections/${C}/jobs`, { type: 'embed', items: [] }, 400, 'invalid_argument'],
      ['zero attempts', `/v1/collections/${C}/jobs`, { type: 'sync', attempts: 0 }, 400, 'invalid_argument'],
      ['key with a colon', `/v1/collections/${C}/jobs`, { type: 'sync', key: 'a:b' }, 400, 'invalid_argument'],
      ['unknown collection', '/v1/collections/nope/jobs', { type: 'rebuild' }, 404, 'collection_not_found'],
      ['all collections: a rebuild', '/v1/jobs', { type: 'rebuild' }, 400, 'invalid_argument'],
      ['all collections: a collection in the body', '/v1/jobs', { type: 'compact', collection: C }, 400, 'invalid_argument'],
      ['all collections: unknown type', '/v1/jobs', { type: 'defrag' }, 400, 'invalid_argument'],
      ['all collections: unknown parameter', '/v1/jobs', { type: 'verify', deep: true }, 400, 'invalid_argument'],
      ['backup: no name', `/v1/collections/${C}/jobs`, { type: 'backup' }, 400, 'invalid_argument'],
      ['backup: a path', `/v1/collections/${C}/jobs`, { type: 'backup', name: 'a/b' }, 400, 'invalid_argument'],
      ['backup: a parent', '/v1/jobs', { type: 'backup', name: '..' }, 400, 'invalid_argument'],
      ['backup: dots inside', '/v1/jobs', { type: 'backup', name: 'x..y' }, 400, 'invalid_argument'],
      ['backup: hidden', '/v1/jobs', { type: 'backup', name: '.x' }, 400, 'invalid_argument'],
      ['backup: absolute', '/v1/jobs', { type: 'backup', name: '/etc/passwd' }, 400, 'invalid_argument'],
      [
        'backup: collections on a collection',
        `/v1/collections/${C}/jobs`,
        { type: 'backup', name: 'x', collections: [C] },
        400,
        'invalid_argument',
      ],
      ['restore on a collection', `/v1/collections/${C}/jobs`, { type: 'restore', name: 'x' }, 400, 'invalid_argument'],
      ['restore: a path', '/v1/jobs', { type: 'restore', name: '../../x' }, 400, 'invalid_argument'],
    ];
    for (const [what, path, body, status, code] of cases) {
      const r = await call('POST', path, body);
      expect(r.status, what).toBe(status);
      expect(r.json.error?.code, what).toBe(code);
      expect(r.json.error?.message.length, what).toBeGreaterThan(0);
    }
    const unknown = await call('POST', `/v1/collections/${C}/jobs`, { type: 'defrag' });
    expect(unknown.json.error?.message).toMatch(/sync, rebuild, verify, reindex, embed, compact/);
    const needsOne = await call('POST', '/v1/jobs', { type: 'embed', items: [{ text: 'x' }] });
    expect(needsOne.json.error?.message).toMatch(/embed job needs a collection .*sync, verify, compact, backup, restore/);
    const restoreHere = await call('POST', `/v1/collections/${C}/jobs`, { type: 'restore', name: 'x' });
    expect(restoreHere.json.error?.message).toMatch(/POST \/v1\/jobs/);
    const bad = await call('POST', `/v1/collections/${C}/jobs`, { type: 'reindex', m: 1 });
    expect(bad.json.error?.message).toMatch(/\bm\b/);
    for (const id of ['rebuild-no-such-job', 'nonsense']) {
      for (const method of ['GET', 'DELETE']) {
        const r = await call(method, `/v1/jobs/${id}`);
        expect(r.status, `${method} ${id}`).toBe(404);
        expect(r.json.error?.code).toBe('not_found');
      }
    }
  });

  it('answers a job type nested 5,000 deep with a 400 naming body.type, not a 500 (found by the fuzz)', async () => {
    // Raw JSON: JSON.stringify itself overflows at this depth, as the old message did.
    for (const [path, deep] of [
      [`/v1/collections/${C}/jobs`, '{"a":'.repeat(5000) + '1' + '}'.repeat(5000)],
      ['/v1/jobs', '['.repeat(5000) + ']'.repeat(5000)],
    ]) {
      const res = await fetch(`http://127.0.0.1:${svc.port}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"type":${deep}}`,
      });
      const body = (await res.json()) as ApiBody;
      expect(res.status, path).toBe(400);
      expect(body.error?.message, path).toMatch(/^body\.type: must be one of .*, got an (object|array)$/);
    }
  });

  it('documents the job routes in the OpenAPI document', async () => {
    type Schema = { oneOf?: unknown[]; $ref?: string };
    const doc = (await (await fetch(`http://127.0.0.1:${svc.port}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> } }>>;
      components: { schemas: Record<string, Schema> };
    };
    // Request bodies are named schemas under components: follow the reference.
    const bodyOf = (path: string): Schema | undefined => {
      const s = doc.paths[path].post.requestBody?.content['application/json'].schema;
      return s?.$ref ? doc.components.schemas[s.$ref.replace('#/components/schemas/', '')] : s;
    };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/collections/{c}/jobs', '/v1/jobs', '/v1/jobs/{id}']));
    expect(bodyOf('/v1/collections/{c}/jobs')?.oneOf).toHaveLength(8);
    expect(bodyOf('/v1/jobs')?.oneOf).toHaveLength(5);
    expect(Object.keys(doc.paths['/v1/jobs/{id}'])).toEqual(expect.arrayContaining(['get', 'delete']));
  });

  it('answers 503 on the job routes of an app without a job queue', async () => {
    const app = createApp({ hs: svc.hs, log: pino({ level: 'silent' }) });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const bare = client(() => `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      for (const [method, path, body] of [
        ['POST', `/v1/collections/${C}/jobs`, { type: 'sync' }],
        ['POST', '/v1/jobs', { type: 'compact' }],
        ['GET', '/v1/jobs', undefined],
        ['GET', '/v1/jobs/sync-x', undefined],
        ['DELETE', '/v1/jobs/sync-x', undefined],
      ] as const) {
        const r = await bare(method, path, body);
        expect(r.status, `${method} ${path}`).toBe(503);
        expect(r.json.error?.message).toMatch(/job queue/);
      }
      const metrics = await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`)).text();
      expect(metrics).not.toMatch(/hypersync_jobs/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe.skipIf(redisDown !== null && !servicesRequired)('background jobs over HTTP, on BullMQ (REDIS_URL set)', () => {
  let dataDir: string;
  let redis: OwnRedis;
  let svc: Service;
  const KEY = 'jobs-key';
  const base = (): string => `http://127.0.0.1:${svc.port}`;
  const call = client(base, KEY);
  const anonymous = client(base);

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'http-jobs-bull-'));
    redis = await OwnRedis.start();
    svc = await Service.start(
      loadConfig({
        HYPERSYNC_PORT: '0',
        HYPERSYNC_HOST: '127.0.0.1',
        HYPERSYNC_DATA_DIR: dataDir,
        HYPERSYNC_DEVICE: 'cpu',
        HYPERSYNC_API_KEYS: KEY,
        REDIS_URL: redis.url,
        HYPERSYNC_QUEUE_PREFIX: `test-${randomUUID()}`,
        HYPERSYNC_VERIFY_INTERVAL_MS: '0',
        HYPERSYNC_COMPACT_INTERVAL_MS: '0',
      }),
      pino({ level: 'silent' }),
    );
    expect((await call('POST', '/v1/collections', { name: 'queued', dim: 3 })).status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await svc.close();
    await redis.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('queues jobs on Redis, counts and cancels them, and serves bull-board behind the API keys', async () => {
    // No worker runs here: the job waits.
    const r = await call('POST', '/v1/collections/queued/jobs', { type: 'rebuild' });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    const id = r.json.jobId as string;
    expect((await call('GET', `/v1/jobs/${id}`)).json).toMatchObject({ id, type: 'rebuild', state: 'waiting', maxAttempts: 3 });
    expect((await call('GET', '/v1/jobs')).json).toMatchObject({ kind: 'bullmq', counts: { rebuild: { waiting: 1 } } });
    const metrics = await (await fetch(`${base()}/metrics`)).text();
    expect(metrics).toMatch(/hypersync_jobs\{type="rebuild",state="waiting"\} 1/);

    const cancelled = await call('DELETE', `/v1/jobs/${id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toMatchObject({ id, state: 'cancelled' });
    expect((await call('GET', `/v1/jobs/${id}`)).json).toMatchObject({ state: 'cancelled' });

    expect((await anonymous('GET', '/v1/jobs')).status).toBe(401);
    const board = await fetch(`${base()}/admin/queues`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(board.status).toBe(200);
    expect(board.headers.get('content-type')).toMatch(/text\/html/);
    const api = await fetch(`${base()}/admin/queues/api/queues`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(api.status).toBe(200);
    const queues = ((await api.json()) as { queues: { name: string }[] }).queues.map((q) => q.name);
    expect(queues).toEqual(expect.arrayContaining(['rebuild', 'sync', 'verify', 'reindex', 'embed', 'compact']));
    expect((await fetch(`${base()}/admin/queues`)).status).toBe(401);
  });

  it('refuses an embed job whose metadata nests 5,000 deep with a 400, not a 503 from a stack overflow (found by the fuzz)', async () => {
    const deep = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
    const res = await fetch(`${base()}/v1/collections/queued/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: `{"type":"embed","items":[{"text":"hi","metadata":{"a":${deep}}}]}`,
    });
    const body = (await res.json()) as ApiBody;
    expect(res.status).toBe(400);
    expect(body.error?.message).toMatch(/^body\.items\.0\.metadata: metadata\.a(\.a)+: metadata nests at most 16 levels deep$/);
    const nul = await call('POST', '/v1/collections/queued/jobs', {
      type: 'embed',
      items: [{ text: 'hi', metadata: { 'k\u0000': 1 } }],
    });
    expect(nul.status).toBe(400);
    expect(nul.json.error?.message).toMatch(/items\.0\.metadata: .*without NUL/);
  });

  it('answers 503 while Redis is down, keeps /metrics up, and recovers when Redis is back', async () => {
    await redis.stop();
    const down = await call('POST', '/v1/collections/queued/jobs', { type: 'sync' });
    expect(down.status).toBe(503);
    expect(down.json.error?.code).toBe('unavailable');
    expect((await call('GET', '/v1/jobs')).status).toBe(503);
    const scrape = await fetch(`${base()}/metrics`);
    expect(scrape.status).toBe(200);
    const text = await scrape.text();
    expect(text).toMatch(/hypersync_wal_bytes/);
    expect(text).not.toMatch(/hypersync_jobs\{/);

    await redis.restart();
    const deadline = Date.now() + 15_000;
    let back: Answer;
    do {
      await sleep(200);
      back = await call('POST', '/v1/collections/queued/jobs', { type: 'sync' });
    } while (back.status === 503 && Date.now() < deadline);
    expect(back.status, JSON.stringify(back.json)).toBe(202);
  }, 30_000);
});
