import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '../../src/core/errors.js';
import { compareCodePoints, compileFilter, type Filter, matchesFilter } from '../../src/core/filter.js';
import type { HyperSync } from '../../src/integration/hyper-sync.js';
import { filterArb, metadataArb } from '../fixtures/filters.js';
import { openHyperSyncOn } from '../fixtures/hypersync.js';
import { hyperSyncBackends } from '../fixtures/nvm-backends.js';
import { freshSeed, randomRows, rng } from '../fixtures/random.js';
import { expectMatchesReference, type ModelRow } from '../fixtures/reference-check.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL filter tests: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});
const open: HyperSync[] = [];
afterEach(async () => {
  for (const hs of open.splice(0)) await hs.close();
});

const DIM = 8;

interface Item {
  vector: Float32Array;
  metadata: Record<string, unknown>;
}

describe.each(hyperSyncBackends(pgProblem, cleanups))('filters and the data API ($name)', (backend) => {
  const openHs = async (): Promise<HyperSync> => {
    const hs = await openHyperSyncOn(backend, { pollIntervalMs: 200 }, cleanups, 'hs-filter-');
    open.push(hs);
    return hs;
  };

  /** A collection of `n` items with random metadata, and the model beside it. */
  const filled = async (hs: HyperSync, name: string, n: number, seed: number): Promise<Map<string, Item>> => {
    await hs.createCollection(name, { dim: DIM, metric: 'cosine' });
    const vectors = randomRows(rng(seed), n, DIM);
    const metas = fc.sample(metadataArb, { numRuns: n, seed });
    const items = vectors.map((vector, i) => ({ id: `d${i}`, vector, metadata: metas[i], content: `text ${i}` }));
    await hs.store(name, items);
    await hs.ready(name);
    return new Map(items.map((it) => [it.id, { vector: it.vector, metadata: it.metadata }]));
  };

  const matching = (model: Map<string, Item>, filter: Filter): ModelRow[] => {
    const node = compileFilter(filter);
    return [...model].filter(([, it]) => matchesFilter(node, it.metadata)).map(([id, it]) => ({ id, vector: it.vector }));
  };

  it.skipIf(backend.skip)(
    'HVS and pgvector answer every filter exactly and never short; count and scroll agree',
    async () => {
      const hs = await openHs();
      const seed = freshSeed();
      const model = await filled(hs, 'f', 400, seed);
      await hs.nvm.createHnswIndex('f', { m: 8, efConstruction: 32 });
      const rand = rng(seed + 1);
      await fc.assert(
        fc.asyncProperty(filterArb, async (filter) => {
          const ctx = `seed ${seed}, ${JSON.stringify(filter)}`;
          const rows = matching(model, filter);
          const q = randomRows(rand, 1, DIM)[0];
          const { results, plan } = await hs.queryWithPlan('f', [q], 10, { filter });
          expect(plan.path).toBe('hvs');
          expectMatchesReference('cosine', q, rows, 10, results[0], `${ctx}, HVS`);
          const node = compileFilter(filter);
          const [exact] = await hs.nvm.search('f', [q], 10, { mode: 'exact', filter: node });
          expectMatchesReference('cosine', q, rows, 10, exact, `${ctx}, pgvector exact`);
          // HNSW is approximate, but never short and never outside the filter.
          const [approx] = await hs.nvm.search('f', [q], 10, { mode: 'hnsw', filter: node });
          const allowed = new Set(rows.map((r) => r.id));
          expect(approx.length, `${ctx}, pgvector hnsw`).toBe(Math.min(10, rows.length));
          for (const h of approx) expect(allowed.has(h.id), `${ctx}, pgvector hnsw: ${h.id}`).toBe(true);
          expect(await hs.count('f', filter), ctx).toBe(rows.length);
          const listed: string[] = [];
          let cursor: string | undefined;
          do {
            const page = await hs.scroll('f', { filter, limit: 37, ...(cursor ? { cursor } : {}) });
            listed.push(...page.items.map((it) => it.id));
            cursor = page.nextCursor ?? undefined;
          } while (cursor);
          expect(listed, ctx).toEqual(rows.map((r) => r.id).sort(compareCodePoints));
        }),
        { numRuns: 40, seed },
      );
    },
    120_000,
  );

  it.skipIf(backend.skip)('one filter per query, minScore, include, explain', async () => {
    const hs = await openHs();
    const seed = freshSeed();
    const model = await filled(hs, 'g', 200, seed);
    const filters: Filter[] = [{ lang: 'de' }, { year: { $gte: 2015 } }, { $not: { lang: 'de' } }];
    const queries = randomRows(rng(seed), 3, DIM);
    const results = await hs.query('g', queries, 5, { filters, include: ['metadata', 'content'] });
    results.forEach((hits, i) => {
      expectMatchesReference('cosine', queries[i], matching(model, filters[i]), 5, hits, `seed ${seed}, query ${i}`);
      for (const h of hits) expect(matchesFilter(compileFilter(filters[i]), h.metadata ?? {})).toBe(true);
    });
    const [all] = await hs.query('g', [queries[0]], 20);
    const cut = all[9].score;
    const [above] = await hs.query('g', [queries[0]], 20, { minScore: cut });
    expect(above.map((h) => h.id)).toEqual(all.filter((h) => h.score >= cut).map((h) => h.id));
    const plan = hs.explain('g', { filter: { lang: 'de' }, k: 5 });
    const step = plan.steps.find((s) => s.step === 'hvs-search');
    expect(step).toMatchObject({ filter: { matching: matching(model, { lang: 'de' }).length } });
    await expect(hs.query('g', queries, 5, { filter: { lang: { $regex: 'x' } } })).rejects.toThrow(
      /filter\.lang\.\$regex: unknown operator/,
    );
    await expect(hs.query('g', queries, 5, { filter: { $or: [{ a: 1 }, { b: [1] }] } as Filter })).rejects.toThrow(
      InvalidArgumentError,
    );
  });

  it.skipIf(backend.skip)('deletes by filter, patches metadata, gets many: both tiers follow', async () => {
    const hs = await openHs();
    const seed = freshSeed();
    const model = await filled(hs, 'h', 150, seed);
    const gone = matching(model, { lang: 'en' }).map((r) => r.id);
    const { deleted, lsn } = await hs.deleteWhere('h', { lang: 'en' });
    expect(deleted).toBe(gone.length);
    expect(await hs.count('h', { lang: 'en' })).toBe(0);
    const q = randomRows(rng(seed), 1, DIM);
    const [hits] = await hs.query('h', q, 150, { minLsn: lsn });
    expect(hits.filter((h) => gone.includes(h.id))).toEqual([]);
    expect((await hs.verifyConsistency('h')).consistent).toBe(true);

    const keep = [...model.keys()].find((id) => !gone.includes(id)) as string;
    const before = await hs.getMany('h', [keep]);
    const patched = await hs.patch('h', keep, { metadata: { lang: 'xx', tags: ['patched'] } });
    expect(patched.version).toBe(before[0].version + 1);
    const [found] = await hs.query('h', q, 5, { filter: { lang: 'xx' }, minLsn: patched.lsn, include: ['metadata', 'vector'] });
    expect(found.map((h) => h.id)).toEqual([keep]);
    expect(found[0].metadata).toEqual({ lang: 'xx', tags: ['patched'] });
    expect(Array.from(found[0].vector ?? [])).toEqual(Array.from((await hs.get('h', keep))?.vector ?? []));
    const [byTag] = await hs.query('h', q, 5, { filter: { tags: { $contains: 'patched' } } });
    expect(byTag.map((h) => h.id)).toEqual([keep]);
    await hs.patch('h', keep, { content: null });
    expect((await hs.get('h', keep))?.content).toBeNull();
    await expect(hs.patch('h', 'nope', { content: 'x' })).rejects.toThrow(NotFoundError);
    await expect(hs.patch('h', keep, {})).rejects.toThrow(/needs metadata or content/);
    await expect(hs.patch('h', keep, { metadata: { 'a.b': 1 } })).rejects.toThrow(/may not contain "\."/);

    const ids = [keep, 'missing', gone[0], ...[...model.keys()].filter((id) => !gone.includes(id)).slice(1, 3)];
    const many = await hs.getMany('h', ids, { include: ['metadata'] });
    expect(many.map((it) => it.id)).toEqual(ids.filter((id) => id !== 'missing' && id !== gone[0]));
    expect(many[0]).toEqual({
      id: keep,
      version: patched.version + 1,
      source: 'nvm',
      metadata: { lang: 'xx', tags: ['patched'] },
    });
    expect((await hs.verifyConsistency('h')).consistent).toBe(true);
  });

  it.skipIf(backend.skip)('a block with many chunks never pushes the others out', async () => {
    const hs = await openHs();
    await hs.createCollection('chunks', { dim: 4, metric: 'l2' });
    const near = Array.from({ length: 40 }, (_, i) => Float32Array.of(i * 0.001, 0, 0, 0));
    const { lsn } = await hs.nvm.writeBlocks('chunks', [
      { id: 'big', vectors: near, metadata: { kind: 'big' } },
      ...Array.from({ length: 10 }, (_, i) => ({
        id: `small${i}`,
        vectors: [Float32Array.of(1 + i, 0, 0, 0)],
        metadata: { kind: 'small' },
      })),
    ]);
    await hs.ready('chunks');
    const q = [Float32Array.of(0, 0, 0, 0)];
    const [hits] = await hs.query('chunks', q, 3, { minLsn: lsn });
    expect(hits.map((h) => h.id)).toEqual(['big', 'small0', 'small1']);
    for (const mode of ['exact', 'hnsw'] as const) {
      const [nvm] = await hs.nvm.search('chunks', q, 3, { mode });
      expect(nvm.map((h) => h.id)).toEqual(['big', 'small0', 'small1']);
    }
    const [filtered] = await hs.query('chunks', q, 3, { minLsn: lsn, filter: { kind: { $ne: 'small' } } });
    expect(filtered.map((h) => h.id)).toEqual(['big']);
  });
});
