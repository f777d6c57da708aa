import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  ClosedError,
  CollectionNotFoundError,
  DimensionMismatchError,
  InvalidArgumentError,
  InvalidVectorError,
} from '../../src/core/errors.js';
import type { HyperSync } from '../../src/integration/hyper-sync.js';
import type { HyperSyncOptions } from '../../src/integration/options.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { openHyperSync } from '../fixtures/hypersync.js';
import { hyperSyncBackends } from '../fixtures/nvm-backends.js';
import { freshSeed, randomRows, rng } from '../fixtures/random.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { tempDir } from '../fixtures/temp-dirs.js';
import { bits } from '../fixtures/vectors.js';
import { waitUntil } from '../fixtures/wait.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL HyperSync tests: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const open: HyperSync[] = [];
afterEach(async () => {
  for (const hs of open.splice(0)) await hs.close();
});

async function openHs(opts: Partial<HyperSyncOptions> & { dataDir?: string }): Promise<HyperSync> {
  const hs = await openHyperSync({ pollIntervalMs: 200, ...opts }, cleanups, 'hs-int-');
  open.push(hs);
  return hs;
}

const backends = hyperSyncBackends(pgProblem, cleanups);

describe.each(backends)('HyperSync over both tiers ($name)', (backend) => {
  const openBackend = async (extra: Partial<HyperSyncOptions> = {}) => {
    const url = await backend.databaseUrl();
    return openHs(url ? { databaseUrl: url, ...extra } : extra);
  };

  it.skipIf(backend.skip)('stores, gets and queries with content, exactly, in both persist modes', async () => {
    const hs = await openBackend();
    const dim = 16;
    await hs.createCollection('docs', { dim, metric: 'l2' });
    const rand = rng(freshSeed());
    const vectors = randomRows(rand, 60, dim);
    const items = vectors.map((vector, i) => ({ id: `d${i}`, vector, content: `text ${i}`, metadata: { i } }));
    const durable = await hs.store('docs', items.slice(0, 40));
    expect(durable.persisted).toBe(true);
    expect(durable.lsn).toBeGreaterThan(0);
    const local = await hs.store('docs', items.slice(40), { persist: false });
    expect(local.persisted).toBe(false);
    expect(local.ids).toEqual(items.slice(40).map((x) => x.id));

    for (const i of [0, 39, 40, 59]) {
      const got = await hs.get('docs', `d${i}`);
      expect(got?.content).toBe(`text ${i}`);
      expect(got?.metadata).toEqual({ i });
      expect(bits(got!.vector)).toEqual(bits(vectors[i]));
    }
    expect(await hs.get('docs', 'nope')).toBeUndefined();

    const { results, plan } = await hs.queryWithPlan('docs', [vectors[3], vectors[50]], 3, { include: ['content', 'metadata'] });
    expect(plan.path).toBe('hvs');
    expect(results[0][0]).toMatchObject({ id: 'd3', content: 'text 3', metadata: { i: 3 }, source: 'hvs+nvm' });
    expect(results[0][0].score).toBeCloseTo(0, 2); // L2 via ‖q‖² − (2q·x − ‖x‖²) in float32, then a square root
    expect(results[1][0]).toMatchObject({ id: 'd50', content: 'text 50', source: 'hvs' });
    expect(results[0]).toHaveLength(3);

    // The WAL-only half reaches PostgreSQL by a sync, and then both tiers agree.
    expect((await hs.stats('docs')).walPending).toBe(20);
    const synced = await hs.sync();
    expect(synced.persisted).toBe(20);
    const st = await hs.stats('docs');
    expect(st).toMatchObject({ count: 60, walPending: 0, hvs: { count: 60, ready: true } });
    const report = await hs.verifyConsistency('docs');
    expect(report).toMatchObject({ consistent: true, total: 0, hvs: { count: 60 }, nvm: { count: 60 } });
    expect(report.hvs.digest).toBe(report.nvm.digest);

    // Deletes, and a re-store that makes a new version.
    expect(await hs.delete('docs', ['d1', 'd2', 'missing'])).toMatchObject({ deleted: 2 });
    await hs.delete('docs', ['d41'], { persist: false });
    expect(await hs.get('docs', 'd1')).toBeUndefined();
    expect(await hs.get('docs', 'd41')).toBeUndefined();
    await hs.store('docs', [{ id: 'd3', vector: vectors[7], content: 'again' }]);
    expect(await hs.get('docs', 'd3')).toMatchObject({ version: 2, content: 'again' });
    const again = await hs.query('docs', [vectors[7]], 2, { include: ['content'] });
    expect(again[0].map((h) => h.id).sort()).toEqual(['d3', 'd7']);
    expect((await hs.verifyConsistency('docs')).consistent).toBe(true);
    expect((await hs.stats('docs')).count).toBe(57);
  });

  it.skipIf(backend.skip)('answers bad input with typed errors and writes nothing', async () => {
    const hs = await openBackend();
    await hs.createCollection('c', { dim: 4, metric: 'cosine' });
    const v = new Float32Array([1, 2, 3, 4]);
    await expect(hs.store('c', [{ id: 'a', vector: new Float32Array(3) }])).rejects.toBeInstanceOf(DimensionMismatchError);
    await expect(
      hs.store('c', [
        { id: 'a', vector: v },
        { id: 'b', vector: new Float32Array([1, NaN, 0, 0]) },
      ]),
    ).rejects.toBeInstanceOf(InvalidVectorError);
    await expect(hs.store('c', [{ id: 'z', vector: new Float32Array(4) }])).rejects.toBeInstanceOf(InvalidVectorError);
    await expect(hs.store('c', [])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(hs.store('c', [{ id: 't', text: 'hello' }])).rejects.toThrow(/encoder/);
    await expect(hs.store('nope', [{ vector: v }])).rejects.toBeInstanceOf(CollectionNotFoundError);
    await expect(hs.query('c', [v], 0)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(hs.query('c', [v], 1e9)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(hs.query('c', [new Float32Array(2)], 1)).rejects.toBeInstanceOf(DimensionMismatchError);
    await expect(hs.query('c', [v], 1, { include: ['bogus' as 'content'] })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await hs.stats('c')).count).toBe(0);
    expect(await hs.get('c', 'a')).toBeUndefined();
  });

  it.skipIf(backend.skip)(
    'NVM reads racing a drop of their collection fail as not found, not with a raw database error (found by the fuzz)',
    async () => {
      // A read that took the catalogue row before the drop then met "relation hs_vec_N does not
      // exist", which reached HTTP as a 500 (GET /v1/collections/:c while it was dropped).
      const hs = await openBackend();
      const reads = [() => hs.stats('r'), () => hs.count('r'), () => hs.scroll('r'), () => hs.storedVersions('r', ['a'])];
      const unexpected: string[] = [];
      let churning = true;
      const churn = (async () => {
        try {
          for (let i = 0; i < 60; i++) {
            await hs.createCollection('r', { dim: 3 });
            await hs.store('r', [{ id: 'a', vector: new Float32Array([1, 0, 0]) }]);
            await hs.dropCollection('r');
          }
        } finally {
          churning = false;
        }
      })();
      const reader = async (): Promise<void> => {
        while (churning) {
          // PGlite answers in microtasks: without a turn of the event loop the readers would starve the churn.
          await new Promise((resolve) => setImmediate(resolve));
          for (const read of reads) {
            await read().catch((err: unknown) => {
              if (!(err instanceof CollectionNotFoundError)) unexpected.push(String(err));
            });
          }
        }
      };
      await Promise.all([churn, reader(), reader(), reader()]);
      expect(unexpected).toEqual([]);
    },
    120_000,
  );

  it.skipIf(backend.skip)(
    'a transaction that throws leaves both tiers untouched; one that commits is fully visible',
    async () => {
      const hs = await openBackend();
      await hs.createCollection('a', { dim: 8, metric: 'ip' });
      await hs.createCollection('b', { dim: 8, metric: 'ip' });
      const rand = rng(freshSeed());
      const vs = randomRows(rand, 6, 8);
      await hs.store('a', [{ id: 'keep', vector: vs[0] }]);
      await expect(
        hs.transaction(async (tx) => {
          await tx.store('a', [{ id: 'x', vector: vs[1] }]);
          await tx.store('b', [{ id: 'y', vector: vs[2] }]);
          tx.delete('a', ['keep']);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      // A bad write inside fails the same way.
      await expect(
        hs.transaction(async (tx) => {
          await tx.store('a', [{ id: 'x', vector: vs[1] }]);
          await tx.store('b', [{ id: 'y', vector: new Float32Array(3) }]);
        }),
      ).rejects.toBeInstanceOf(DimensionMismatchError);
      for (const [c, n] of [
        ['a', 1],
        ['b', 0],
      ] as const) {
        const st = await hs.stats(c);
        expect(st.nvm.count).toBe(n);
        expect(st.hvs.count).toBe(n);
      }
      expect(await hs.get('a', 'keep')).toBeDefined();

      const { result, lsn } = await hs.transaction(async (tx) => {
        await tx.store('a', [{ id: 'x', vector: vs[1], content: 'x' }]);
        await tx.store('b', [{ id: 'y', vector: vs[2] }]);
        tx.delete('a', ['keep']);
        return 'ok';
      });
      expect(result).toBe('ok');
      expect(lsn).toBeGreaterThan(0);
      expect(await hs.get('a', 'keep')).toBeUndefined();
      expect(await hs.get('a', 'x')).toMatchObject({ content: 'x' });
      expect((await hs.query('b', [vs[2]], 1))[0][0].id).toBe('y');
      expect((await hs.verifyConsistency('a')).consistent).toBe(true);
      expect((await hs.verifyConsistency('b')).consistent).toBe(true);
    },
  );

  it.skipIf(backend.skip)('recovers from its snapshot and from the NVM, serving from pgvector until ready', async () => {
    const url = await backend.databaseUrl();
    const dataDir = await tempDir('hs-int-', cleanups);
    const base = url ? { databaseUrl: url, dataDir } : { dataDir };
    const dim = 12;
    const rand = rng(freshSeed());
    const vectors = randomRows(rand, 300, dim);
    const hs = await openHs({ ...base, sealThreshold: 64 });
    await hs.createCollection('r', { dim, metric: 'cosine' });
    await hs.store(
      'r',
      vectors.slice(0, 250).map((vector, i) => ({ id: `r${i}`, vector })),
    );
    await hs.close();
    open.length = 0;

    // Reopen from the snapshot written at close; a write made while closed arrives by the change log.
    const again = await openHs({ ...base, sealThreshold: 64 });
    const loaded = new Promise<string>((resolve) => again.once('loaded', (_name, r) => resolve(r.from)));
    await again.ready();
    expect(await loaded).toBe('snapshot');
    await again.store(
      'r',
      vectors.slice(250).map((vector, i) => ({ id: `r${250 + i}`, vector })),
    );
    expect((await again.stats('r')).hvs.count).toBe(300);
    expect((await again.verifyConsistency('r')).consistent).toBe(true);
    await again.close();
    open.length = 0;

    // Without a snapshot: rebuilt from the NVM; pgvector answered meanwhile.
    await rm(join(dataDir, 'hvs'), { recursive: true, force: true });
    const third = await openHs({ ...base, sealThreshold: 64 });
    // open() returns before the HVS has the collection: the plan then is pgvector.
    expect(third.readiness()).toEqual({ ready: false, collections: { r: 'loading' } });
    expect(third.explain('r')).toMatchObject({ path: 'nvm', steps: [{ step: 'nvm-search' }] });
    const early = await third.queryWithPlan('r', [vectors[10]], 1);
    expect(['nvm', 'hvs']).toContain(early.plan.path);
    expect(early.results[0][0].id).toBe('r10');
    if (early.plan.path === 'nvm') expect(early.results[0][0].source).toBe('nvm');
    await third.ready();
    const late = await third.queryWithPlan('r', [vectors[10]], 1);
    expect(late.plan.path).toBe('hvs');
    expect(late.results[0][0].id).toBe('r10');
    expect((await third.verifyConsistency('r')).consistent).toBe(true);
  });
});

describe.skipIf(!servicesRequired && pgProblem !== null)('HyperSync on one PostgreSQL, two processes', () => {
  it('two instances converge: a write through one is found by the other at once with minLsn', async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const a = await openHs({ databaseUrl: db.url, pollIntervalMs: 60_000 });
    const b = await openHs({ databaseUrl: db.url, pollIntervalMs: 60_000 });
    await a.createCollection('shared', { dim: 8, metric: 'l2' });
    // b learns of the collection from the NVM (it was created by another process) and loads it.
    await b.ready('shared');
    const rand = rng(freshSeed());
    const vs = randomRows(rand, 20, 8);
    const { lsn } = await a.store(
      'shared',
      vs.map((vector, i) => ({ id: `s${i}`, vector, content: `c${i}` })),
    );
    const t0 = performance.now();
    const { results, plan } = await b.queryWithPlan('shared', [vs[5]], 1, { minLsn: lsn, include: ['content'] });
    expect(results[0][0]).toMatchObject({ id: 's5', content: 'c5' });
    expect(plan.path).toBe('hvs');
    expect(performance.now() - t0).toBeLessThan(1000);
    // And back: b deletes, a reads its own view after b's lsn.
    const del = await b.delete('shared', ['s5']);
    const after = await a.query('shared', [vs[5]], 1, { minLsn: del.lsn });
    expect(after[0][0].id).not.toBe('s5');
    expect(await a.get('shared', 's5')).toBeUndefined();
    expect((await a.verifyConsistency('shared')).consistent).toBe(true);
    expect((await b.verifyConsistency('shared')).consistent).toBe(true);
  });

  it('a collection created or dropped by one instance appears in or leaves the other by the catalogue poll', async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const a = await openHs({ databaseUrl: db.url, pollIntervalMs: 100 });
    const b = await openHs({ databaseUrl: db.url, pollIntervalMs: 100 });
    await a.createCollection('temp', { dim: 4, metric: 'ip' });
    const until = (ok: () => boolean): Promise<boolean> => waitUntil(ok, { timeoutMs: 5000, intervalMs: 50 });
    expect(await until(() => b.listCollections().some((c) => c.name === 'temp'))).toBe(true);
    await a.dropCollection('temp');
    expect(await until(() => !b.listCollections().some((c) => c.name === 'temp'))).toBe(true);
    await expect(b.query('temp', [new Float32Array(4).fill(1)], 1)).rejects.toBeInstanceOf(CollectionNotFoundError);
  });

  it('blocks written straight into PostgreSQL by another producer become searchable; a row deleted there is found and repaired', async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const hs = await openHs({ databaseUrl: db.url });
    await hs.createCollection('ext', { dim: 4, metric: 'cosine' });
    await hs.store('ext', [
      { id: 'a', vector: new Float32Array([1, 0, 0, 0]) },
      { id: 'b', vector: new Float32Array([0, 1, 0, 0]) },
    ]);
    // Another producer: the NVM's own API in a separate store object on the same database.
    const { SqlNvmStore } = await import('../../src/nvm/sql-nvm-store.js');
    const other = await SqlNvmStore.open({ databaseUrl: db.url });
    const { lsn } = await other.writeBlocks('ext', [
      { id: 'multi', content: 'two chunks', vectors: [new Float32Array([0, 0, 3, 0]), new Float32Array([0, 0, 0, 5])] },
    ]);
    await other.close();
    const hits = await hs.query('ext', [new Float32Array([0, 0, 0, 1])], 2, { minLsn: lsn, include: ['content'] });
    expect(hits[0][0]).toMatchObject({ id: 'multi', content: 'two chunks', source: 'hvs+nvm' });
    expect(hits[0][0].score).toBeCloseTo(1, 5);
    expect(hits[0].map((h) => h.id)).not.toContain('multi\u00001');
    expect((await hs.verifyConsistency('ext')).consistent).toBe(true);

    // A row deleted directly in PostgreSQL, behind the change log's back.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(`DELETE FROM hs_blocks WHERE collection = 'ext' AND id = 'b'`);
    await client.end();
    const report = await hs.verifyConsistency('ext');
    expect(report.consistent).toBe(false);
    expect(report.inconsistencies).toEqual([{ id: 'b', kind: 'missing_in_nvm', hvsVersion: 1 }]);
    expect(report.hvs.count).toBe(3);
    expect(report.nvm.count).toBe(2);
    const fixed = await hs.repair('ext');
    expect(fixed).toMatchObject({ deleted: 1, after: { consistent: true } });
    expect((await hs.query('ext', [new Float32Array([0, 1, 0, 0])], 3))[0].map((h) => h.id)).not.toContain('b');
  });

  it('minLsn the HVS does not reach in time: pgvector answers, and the plan says why', async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const hs = await openHs({ databaseUrl: db.url, minLsnWaitMs: 150 });
    await hs.createCollection('m', { dim: 4, metric: 'l2' });
    const { lsn } = await hs.store('m', [{ id: 'p', vector: new Float32Array([1, 2, 3, 4]), content: 'P' }]);
    const q = [new Float32Array([1, 2, 3, 4])];
    const t0 = performance.now();
    const ahead = await hs.queryWithPlan('m', q, 1, { minLsn: lsn + 1000, include: ['content'] });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    expect(ahead.plan.path).toBe('nvm');
    expect(ahead.plan.reason).toMatch(/minLsn/);
    expect(ahead.results[0][0]).toMatchObject({ id: 'p', content: 'P', source: 'nvm' });
    expect(hs.explain('m', { minLsn: lsn }).path).toBe('hvs');
    const waiting = hs.explain('m', { minLsn: lsn + 1000 });
    expect(waiting.steps[0]).toMatchObject({ step: 'wait-lsn', timeoutMs: 150 });
    // The cache: a repeated content read is a hit.
    const before = hs.metrics().cache.blocks.hits;
    await hs.query('m', q, 1, { include: ['content'] });
    expect(hs.metrics().cache.blocks.hits).toBeGreaterThan(before);
  });

  it('closes once; use after close is a ClosedError', async () => {
    const hs = await openHs({});
    await hs.close();
    await hs.close();
    expect(() => hs.listCollections()).toThrow(ClosedError);
    await expect(hs.store('x', [])).rejects.toBeInstanceOf(ClosedError);
  });
});
