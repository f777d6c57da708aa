import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { HyperSync } from '../../src/integration/hyper-sync.js';
import type { HyperSyncOptions } from '../../src/integration/options.js';
import type { PlanStep, QueryPlan } from '../../src/integration/query-planner.js';
import type { QueryOptions } from '../../src/integration/types.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { openHyperSync } from '../fixtures/hypersync.js';
import { hyperSyncBackends } from '../fixtures/nvm-backends.js';
import { freshSeed, randomRows, rng } from '../fixtures/random.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL result-cache tests: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const open: HyperSync[] = [];
afterEach(async () => {
  for (const hs of open.splice(0)) await hs.close();
});

async function openHs(opts: Partial<HyperSyncOptions>): Promise<HyperSync> {
  const hs = await openHyperSync({ pollIntervalMs: 200, ...opts }, cleanups, 'hs-rc-');
  open.push(hs);
  return hs;
}

const DIM = 8;

/** The `cache_result` step's outcome, or undefined when the plan has none. */
const outcome = (plan: QueryPlan): string | undefined =>
  plan.steps.find((s): s is Extract<PlanStep, { step: 'cache_result' }> => s.step === 'cache_result')?.outcome;

/** A collection of 40 items (l2) with content and metadata `{ g: i % 3 }`; returns their vectors. */
async function seed(hs: HyperSync, name: string): Promise<Float32Array[]> {
  await hs.createCollection(name, { dim: DIM, metric: 'l2' });
  const vs = randomRows(rng(freshSeed()), 40, DIM);
  await hs.store(
    name,
    vs.map((vector, i) => ({ id: `${name}${i}`, vector, content: `text ${i}`, metadata: { g: i % 3 } })),
  );
  await hs.ready(name);
  return vs;
}

describe.each(hyperSyncBackends(pgProblem, cleanups))('the result cache ($name)', (backend) => {
  const openBackend = async (extra: Partial<HyperSyncOptions> = {}): Promise<HyperSync> => {
    const url = await backend.databaseUrl();
    return openHs(url ? { databaseUrl: url, ...extra } : extra);
  };

  it.skipIf(backend.skip)('answers a repeated identical query, and only that, from the cache', async () => {
    const hs = await openBackend();
    const vs = await seed(hs, 'rc');
    const q = vs[3];
    const opts: QueryOptions = { include: ['content', 'metadata'] };
    const first = await hs.queryWithPlan('rc', [q], 5, opts);
    expect(outcome(first.plan)).toBe('miss');
    expect(first.plan.steps.map((s) => s.step)).toEqual(['cache_result', 'hvs-search', 'content']);
    expect(first.results[0][0]).toMatchObject({ id: 'rc3', content: 'text 3', metadata: { g: 0 }, source: 'hvs+nvm' });
    // The same bytes in another buffer, the includes in another order: a hit with the same hits
    // (their original source), and nothing but the cache ran.
    const second = await hs.queryWithPlan('rc', [Float32Array.from(q)], 5, { include: ['metadata', 'content'] });
    expect(second.plan.steps).toEqual([{ step: 'cache_result', outcome: 'hit' }]);
    expect(second.plan.path).toBe('hvs');
    expect(second.results).toEqual(first.results);
    // Callers get copies: changing a returned hit does not change what the cache answers next.
    second.results[0][0].content = 'changed';
    (second.results[0][0].metadata as Record<string, unknown>).g = 'changed';
    second.results[0].pop();
    const third = await hs.queryWithPlan('rc', [q], 5, opts);
    expect(outcome(third.plan)).toBe('hit');
    expect(third.results).toEqual(first.results);

    // Anything that changes the answer is another key: a miss the first time.
    const oneBit = Float32Array.from(q);
    new Uint32Array(oneBit.buffer)[0] ^= 1;
    const variants: [Float32Array, number, QueryOptions][] = [
      [q, 6, opts],
      [q, 5, { ...opts, filter: { g: 1 } }],
      [q, 5, { ...opts, filter: { g: 2 } }],
      [q, 5, { ...opts, filters: [{ g: 1 }] }],
      [q, 5, { include: ['content'] }],
      [q, 5, { ...opts, exact: true }],
      [q, 5, { ...opts, minScore: 1 }],
      [oneBit, 5, opts],
    ];
    for (const [vector, k, o] of variants) {
      expect(outcome((await hs.queryWithPlan('rc', [vector], k, o)).plan), JSON.stringify({ k, o })).toBe('miss');
    }
    const filtered = await hs.queryWithPlan('rc', [q], 5, { ...opts, filter: { g: 1 } });
    expect(outcome(filtered.plan)).toBe('hit');
    expect(filtered.results[0].every((h) => h.metadata?.g === 1)).toBe(true);
    // A batch is one key: the same two queries in another order are another answer.
    await hs.query('rc', [vs[1], vs[2]], 3);
    expect(outcome((await hs.queryWithPlan('rc', [vs[1], vs[2]], 3)).plan)).toBe('hit');
    expect(outcome((await hs.queryWithPlan('rc', [vs[2], vs[1]], 3)).plan)).toBe('miss');

    const stats = (await hs.stats('rc')).resultCache;
    expect(stats).toMatchObject({ hits: 4, misses: 3 + variants.length });
    expect(stats.hitRatio).toBeCloseTo(stats.hits / (stats.hits + stats.misses), 10);
    expect(stats.entries).toBeGreaterThan(0);
    expect(stats.bytes).toBeGreaterThan(0);
    expect(hs.metrics().results).toMatchObject({ hits: 4, misses: stats.misses, entries: stats.entries, bytes: stats.bytes });
    expect(outcome(hs.explain('rc', { k: 5 }))).toBe('lookup');
  });

  it.skipIf(backend.skip)(
    'any change to the collection makes the next query a miss that sees it; another collection’s do not',
    async () => {
      const hs = await openBackend();
      const vs = await seed(hs, 'a');
      await seed(hs, 'b');
      const q = vs[7];
      const ask = async (): Promise<{ ids: string[]; outcome: string | undefined; metadata: unknown }> => {
        const { results, plan } = await hs.queryWithPlan('a', [q], 4, { include: ['metadata'] });
        return { ids: results[0].map((h) => h.id), outcome: outcome(plan), metadata: results[0][0].metadata };
      };
      expect((await ask()).outcome).toBe('miss');
      expect((await ask()).outcome).toBe('hit');
      // Writes, deletes and a patch to another collection leave this one's answers alone.
      await hs.store('b', [{ id: 'elsewhere', vector: q }]);
      await hs.delete('b', ['b1']);
      await hs.patch('b', 'b2', { metadata: { g: 9 } });
      expect((await ask()).outcome).toBe('hit');

      await hs.store('a', [{ id: 'twin', vector: Float32Array.from(q), metadata: { twin: true } }]);
      let r = await ask();
      expect(r).toMatchObject({ outcome: 'miss' });
      expect(r.ids.slice(0, 2).sort()).toEqual(['a7', 'twin']);
      expect((await ask()).outcome).toBe('hit');

      await hs.delete('a', ['twin']);
      r = await ask();
      expect(r).toMatchObject({ outcome: 'miss', metadata: { g: 1 } });
      expect(r.ids).not.toContain('twin');

      await hs.store('a', [{ id: 'local', vector: Float32Array.from(q) }], { persist: false });
      r = await ask();
      expect(r.outcome).toBe('miss');
      expect(r.ids).toContain('local');
      await hs.delete('a', ['local'], { persist: false });
      r = await ask();
      expect(r.outcome).toBe('miss');
      expect(r.ids).not.toContain('local');

      await hs.patch('a', 'a7', { metadata: { g: 'patched' } });
      expect(await ask()).toMatchObject({ outcome: 'miss', metadata: { g: 'patched' } });
      // A content patch reaches the HVS only through the change log: cached answers go at once.
      const withContent = async (): Promise<{ outcome: string | undefined; content: unknown }> => {
        const { results, plan } = await hs.queryWithPlan('a', [q], 4, { include: ['content'] });
        return { outcome: outcome(plan), content: results[0][0].content };
      };
      await withContent();
      expect((await withContent()).outcome).toBe('hit');
      await hs.patch('a', 'a7', { content: 'patched text' });
      expect(await withContent()).toEqual({ outcome: 'miss', content: 'patched text' });
      await hs.deleteWhere('a', { g: 'patched' });
      r = await ask();
      expect(r.outcome).toBe('miss');
      expect(r.ids).not.toContain('a7');

      await hs.transaction(async (tx) => {
        await tx.store('a', [{ id: 'tx', vector: Float32Array.from(q) }]);
      });
      r = await ask();
      expect(r.outcome).toBe('miss');
      expect(r.ids[0]).toBe('tx');
      expect((await ask()).outcome).toBe('hit');

      // A rebuild switches the index, a compaction runs structural work: neither answer is reused.
      await hs.rebuild('a');
      expect(await ask()).toMatchObject({ outcome: 'miss', ids: r.ids });
      expect((await ask()).outcome).toBe('hit');
      await hs.compact('a');
      expect((await ask()).outcome).toBe('miss');
      // A row removed from the HVS behind the store's back, then put back by a repair.
      hs.hvs.collection('a').delete(['a1']);
      expect((await ask()).outcome).toBe('miss');
      expect((await ask()).outcome).toBe('hit');
      expect(await hs.repair('a')).toMatchObject({ upserted: 1 });
      expect((await ask()).outcome).toBe('miss');

      // Dropped and re-created under the same name: the old answers are gone with their counters.
      expect((await ask()).outcome).toBe('hit');
      await hs.dropCollection('a');
      await hs.createCollection('a', { dim: DIM, metric: 'l2' });
      expect((await hs.stats('a')).resultCache).toEqual({ hits: 0, misses: 0, hitRatio: 0, entries: 0, bytes: 0 });
      await hs.store('a', [{ id: 'fresh', vector: randomRows(rng(freshSeed()), 1, DIM)[0], metadata: {} }]);
      expect(await ask()).toMatchObject({ outcome: 'miss', ids: ['fresh'] });
      expect((await hs.stats('b')).resultCache.entries).toBe(0);
    },
  );

  it.skipIf(backend.skip)('keeps within its byte budget, evicting the least recently used answers', async () => {
    const budgetMb = 0.02;
    const hs = await openBackend({ resultCacheMb: budgetMb });
    const vs = await seed(hs, 'small');
    const include: QueryOptions['include'] = ['content', 'metadata', 'vector'];
    for (const v of vs) await hs.query('small', [v], 10, { include });
    const m = hs.metrics().results;
    expect(m.maxBytes).toBe(Math.floor(budgetMb * 2 ** 20));
    expect(m.bytes).toBeLessThanOrEqual(m.maxBytes);
    expect(m.evictions).toBeGreaterThan(0);
    expect(m.entries).toBeGreaterThan(0);
    expect(m.entries).toBeLessThan(vs.length);
    const stats = (await hs.stats('small')).resultCache;
    expect(stats).toMatchObject({ entries: m.entries, bytes: m.bytes, misses: vs.length });
    // The newest answer is still there, the oldest was evicted.
    expect(outcome((await hs.queryWithPlan('small', [vs[vs.length - 1]], 10, { include })).plan)).toBe('hit');
    expect(outcome((await hs.queryWithPlan('small', [vs[0]], 10, { include })).plan)).toBe('miss');
  });

  it.skipIf(backend.skip)('is off with a budget of 0: no step in the plan, nothing counted', async () => {
    const hs = await openBackend({ resultCacheMb: 0 });
    const vs = await seed(hs, 'off');
    const first = await hs.queryWithPlan('off', [vs[0]], 3);
    const again = await hs.queryWithPlan('off', [vs[0]], 3);
    expect(again.results).toEqual(first.results);
    expect(again.plan.steps.map((s) => s.step)).toEqual(['hvs-search']);
    expect(outcome(hs.explain('off'))).toBeUndefined();
    expect(hs.metrics().results).toEqual({ hits: 0, misses: 0, hitRatio: 0, entries: 0, bytes: 0, maxBytes: 0, evictions: 0 });
    expect((await hs.stats('off')).resultCache).toMatchObject({ hits: 0, misses: 0 });
  });
});

describe.skipIf(!servicesRequired && pgProblem !== null)('the result cache, two processes on one PostgreSQL', () => {
  it('a change another instance wrote, applied from the change log, makes the next query a miss', async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const a = await openHs({ databaseUrl: db.url });
    const b = await openHs({ databaseUrl: db.url });
    const vs = await seed(a, 'shared');
    await b.ready('shared');
    const q = vs[5];
    const ask = async (minLsn?: number): Promise<{ ids: string[]; outcome: string | undefined }> => {
      const { results, plan } = await b.queryWithPlan('shared', [q], 3, minLsn === undefined ? {} : { minLsn });
      return { ids: results[0].map((h) => h.id), outcome: outcome(plan) };
    };
    // b may still be applying a's first writes: wait for them, then the cache answers.
    const { lsn: seeded } = await a.store('shared', [{ id: 'marker', vector: vs[39] }]);
    expect((await ask(seeded)).outcome).toBe('miss');
    expect((await ask()).outcome).toBe('hit');

    const { lsn } = await a.store('shared', [{ id: 'twin', vector: Float32Array.from(q) }]);
    const seen = await ask(lsn);
    expect(seen.outcome).toBe('miss');
    expect(seen.ids.slice(0, 2).sort()).toEqual(['shared5', 'twin']);
    expect((await ask()).outcome).toBe('hit');

    const del = await a.delete('shared', ['twin']);
    const gone = await ask(del.lsn);
    expect(gone.outcome).toBe('miss');
    expect(gone.ids).not.toContain('twin');
  });
});
