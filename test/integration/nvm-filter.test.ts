import fc from 'fast-check';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CollectionNotFoundError, InvalidArgumentError } from '../../src/core/errors.js';
import { compareCodePoints, compileFilter, matchesFilter, type FilterNode } from '../../src/core/filter.js';
import type { Metric } from '../../src/core/metric.js';
import type { NvmSearchStats } from '../../src/nvm/nvm-store.js';
import type { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';
import { AWKWARD_STRINGS, filterValue, metadataValue } from '../fixtures/filter-arbitraries.js';
import { nvmBackends, type NvmBackend } from '../fixtures/nvm-backends.js';
import { referenceScore } from '../../kernels/reference.js';
import { freshSeed, randomRows, randomVectors, rng } from '../fixtures/random.js';
import { expectMatchesReference, type ModelRow } from '../fixtures/reference-check.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL NVM filter tests: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const backends: NvmBackend[] = nvmBackends(pgProblem, cleanups, 'nvm-filter-');

const f32 = (...v: number[]): Float32Array => Float32Array.from(v);
const byCodePoint = (a: string, b: string): number => compareCodePoints(a, b);

/** Every page of a filtered scroll. */
async function scrollAll(store: SqlNvmStore, collection: string, filter: FilterNode, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let after: string | undefined;
  for (let pages = 0; ; pages++) {
    const page = await store.scroll(collection, { filter, limit, ...(after === undefined ? {} : { after }) });
    expect(page.blocks.length).toBeLessThanOrEqual(limit);
    ids.push(...page.blocks.map((b) => b.id));
    if (page.next === null) return ids;
    expect(page.blocks.length).toBe(limit);
    after = page.next;
    expect(pages).toBeLessThan(1000);
  }
}

describe.each(backends)('NVM metadata filters ($name)', (backend) => {
  let store: SqlNvmStore;
  beforeEach(async () => {
    if (backend.skip) return;
    store = await backend.open();
  });
  afterEach(async () => {
    if (!backend.skip) await store.close();
  });

  it.skipIf(backend.skip)('count and scroll equal the reference matchesFilter on random items and filters', async () => {
    await store.createCollection('p', { dim: 2, metric: 'l2' });
    let run = 0;
    let partial = 0;
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(metadataValue, { minLength: 8, maxLength: 30 }),
        fc.array(filterValue, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 7 }),
        async (metas, filters, limit) => {
          run++;
          // Ids in several scripts, so the scroll order is code-point order, not UTF-16 order.
          const items = metas.map((metadata, i) => ({ id: `${AWKWARD_STRINGS[i % AWKWARD_STRINGS.length]}#${i}`, metadata }));
          await store.deleteWhere('p', { op: 'all' });
          await store.writeBlocks(
            'p',
            items.map((it) => ({ id: it.id, metadata: it.metadata, vectors: [f32(run, 0)] })),
          );
          for (const raw of filters) {
            const filter = compileFilter(raw);
            const expected = items
              .filter((it) => matchesFilter(filter, it.metadata))
              .map((it) => it.id)
              .sort(byCodePoint);
            tried++;
            if (expected.length > 0 && expected.length < items.length) partial++;
            const context = `filter ${JSON.stringify(raw)}`;
            expect(await store.count('p', filter), context).toBe(expected.length);
            expect(await scrollAll(store, 'p', filter, limit), context).toEqual(expected);
          }
        },
      ),
      { numRuns: 60 },
    );
    // The filters drawn must split the items, not only match all or none.
    expect(partial / tried).toBeGreaterThan(0.12);
  });

  it.skipIf(backend.skip).each([
    ['cosine', 40],
    ['l2', 15],
    ['ip', 15],
  ] as const)(
    'filtered exact and HNSW search equal a float64 brute force over the matching items (%s)',
    async (metric: Metric, numRuns: number) => {
      const seed = freshSeed();
      const rand = rng(seed);
      const dim = 8;
      const n = 300;
      await store.createCollection('s', { dim, metric });
      const metas = fc.sample(metadataValue, { numRuns: n, seed });
      const flat = randomVectors(rand, n, dim);
      // Every tenth block has 12 chunk vectors close together (it scores by its best one), so
      // that near a query its chunks fill the candidate rows and the search must look further.
      const rows = metas.map((metadata, i) => {
        const first = flat.slice(i * dim, (i + 1) * dim);
        const near = randomRows(rand, i % 10 === 0 ? 11 : 0, dim).map((v) => first.map((x, j) => x + 0.02 * v[j]));
        return { id: `b${i}`, metadata, vectors: [first, ...near] };
      });
      // A selective field too: 1 to 3 items share each value.
      rows.forEach((r, i) => (r.metadata.sel = i % 97));
      await store.writeBlocks(
        's',
        rows.map((r) => ({ id: r.id, metadata: r.metadata, vectors: r.vectors })),
      );
      /** The blocks that match, each as its best chunk for `q`: the float64 brute force. */
      const reference = (filter: FilterNode, q: Float32Array): ModelRow[] =>
        rows
          .filter((r) => matchesFilter(filter, r.metadata))
          .map((r) => {
            const score = (v: Float32Array): number => referenceScore(metric, q, v, 0, dim) * (metric === 'l2' ? -1 : 1);
            return { id: r.id, vector: r.vectors.reduce((best, v) => (score(v) > score(best) ? v : best)) };
          });
      await store.createHnswIndex('s', { m: 16, efConstruction: 64 });
      const stats: NvmSearchStats = { queries: 0, short: 0, reruns: 0 };
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            filterValue,
            fc.integer({ min: 0, max: 99 }).map((sel) => ({ sel })),
          ),
          filterValue,
          fc.integer({ min: 1, max: 20 }),
          fc.integer(),
          async (raw, other, k, qseed) => {
            const filters = [compileFilter(raw), compileFilter(other), compileFilter(raw)];
            const queries = Array.from({ length: 3 }, (_, i) => randomVectors(rng(qseed + i), 1, dim));
            for (const mode of ['exact', 'hnsw'] as const) {
              const results = await store.search('s', queries, k, { mode, filter: filters, efSearch: 1000, stats });
              results.forEach((hits, q) => {
                const context = `seed ${seed}, ${mode}, filter ${JSON.stringify(q === 1 ? other : raw)}, k ${k}`;
                expectMatchesReference(metric, queries[q], reference(filters[q], queries[q]), k, hits, context);
              });
            }
            const one = compileFilter(raw);
            const single = await store.search('s', [queries[0]], k, { filter: one });
            expectMatchesReference(metric, queries[0], reference(one, queries[0]), k, single[0], `seed ${seed}`);
          },
        ),
        { numRuns },
      );
      expect(stats.queries).toBe(numRuns * 6);
      expect(stats.reruns).toBe(stats.short);
    },
  );

  it.skipIf(backend.skip).each(['exact', 'hnsw'] as const)(
    'a block with 40 chunk vectors near the query does not push the others out (%s)',
    async (mode) => {
      await store.createCollection('chunks', { dim: 4, metric: 'l2' });
      const big = Array.from({ length: 40 }, (_, i) => f32(1 + i * 1e-4, 0, 0, 0));
      const others = Array.from({ length: 10 }, (_, i) => ({ id: `o${i}`, vectors: [f32(1, 0.5 + i * 0.1, 0, 0)] }));
      await store.writeBlocks('chunks', [{ id: 'big', vectors: big, metadata: { kind: 'big' } }, ...others]);
      if (mode === 'hnsw') await store.createHnswIndex('chunks');
      const q = [f32(1, 0, 0, 0)];
      const stats: NvmSearchStats = { queries: 0, short: 0, reruns: 0 };
      const [hits] = await store.search('chunks', q, 3, { mode, stats });
      expect(hits.map((h) => h.id)).toEqual(['big', 'o0', 'o1']);
      expect(hits[0].score).toBeCloseTo(0, 5);
      const [filtered] = await store.search('chunks', q, 3, { mode, filter: compileFilter({ kind: { $ne: 'big' } }) });
      expect(filtered.map((h) => h.id)).toEqual(['o0', 'o1', 'o2']);
      const [all] = await store.search('chunks', q, 20, { mode });
      expect(all).toHaveLength(11);
      if (mode === 'hnsw') {
        // The index's 12 nearest chunk rows are all the big block's: short, and rerun exactly.
        expect(stats).toEqual({ queries: 1, short: 1, reruns: 1 });
        const raw: NvmSearchStats = { queries: 0, short: 0, reruns: 0 };
        const [rawHits] = await store.search('chunks', q, 3, { mode, fallback: false, stats: raw });
        expect(rawHits.map((h) => h.id)).toEqual(['big']);
        expect(raw).toEqual({ queries: 1, short: 1, reruns: 0 });
      } else {
        expect(stats).toEqual({ queries: 1, short: 0, reruns: 0 });
      }
    },
  );

  it.skipIf(backend.skip)('search refuses a filter list of the wrong length and bad filter nodes', async () => {
    await store.createCollection('s', { dim: 2, metric: 'l2' });
    const q = [f32(1, 2), f32(3, 4)];
    await expect(store.search('s', q, 1, { filter: [compileFilter({ a: 1 })] })).rejects.toThrow(InvalidArgumentError);
    await expect(store.search('s', q, 1, { filter: { op: 'nope' } as unknown as FilterNode })).rejects.toThrow(
      InvalidArgumentError,
    );
    await expect(store.count('s', { op: 'eq', path: ['a'], value: 'x\u0000' })).rejects.toThrow(InvalidArgumentError);
    await expect(store.count('s', { op: 'eq', path: [], value: 1 })).rejects.toThrow(InvalidArgumentError);
    await expect(store.count('nope', compileFilter({ a: 1 }))).rejects.toThrow(CollectionNotFoundError);
    expect(await store.search('s', q, 3, { filter: compileFilter({ a: 1 }), mode: 'hnsw' })).toEqual([[], []]);
  });

  it.skipIf(backend.skip)('dotted paths never index into arrays; $eq is no array membership; JSON null exists', async () => {
    await store.createCollection('paths', { dim: 2, metric: 'l2' });
    const items = [
      { id: 'p1', metadata: { arr: ['x', 5], o: { '0': 'y', n: null }, s: 'abc', n: null } },
      { id: 'p2', metadata: { arr: 'x', o: ['y'], s: ['abc'], '0': { '1': 2 } } },
    ];
    await store.writeBlocks(
      'paths',
      items.map((it) => ({ ...it, vectors: [f32(0, 0)] })),
    );
    const cases: [Record<string, unknown>, string[]][] = [
      [{ 'arr.0': 'x' }, []],
      [{ 'arr.0': { $exists: true } }, []],
      [{ 'arr.1': { $gt: 1 } }, []],
      [{ 'arr.-1': { $exists: true } }, []],
      [{ 'arr.0': { $contains: 'x' } }, []],
      [{ 'o.0': 'y' }, ['p1']],
      [{ 'o.0': { $gte: 'y' } }, ['p1']],
      [{ 'o.0': { $exists: true } }, ['p1']],
      [{ '0.1': { $lte: 2 } }, ['p2']],
      [{ arr: 'x' }, ['p2']],
      [{ arr: { $contains: 'x' } }, ['p1', 'p2']],
      [{ arr: { $contains: 5 } }, ['p1']],
      [{ s: { $contains: 'b' } }, ['p1']],
      [{ s: { $contains: 'abc' } }, ['p1', 'p2']],
      [{ n: { $exists: true } }, ['p1']],
      [{ 'o.n': { $exists: true } }, ['p1']],
      [{ n: { $ne: 1 } }, ['p1', 'p2']],
      [{ missing: { $nin: [1, 'x'] } }, ['p1', 'p2']],
      [{ s: { $gt: 'abb', $lt: 'abd' } }, ['p1']],
    ];
    for (const [raw, expected] of cases) {
      const filter = compileFilter(raw);
      expect(
        items.filter((it) => matchesFilter(filter, it.metadata)).map((it) => it.id),
        `reference ${JSON.stringify(raw)}`,
      ).toEqual(expected);
      expect(await scrollAll(store, 'paths', filter, 10), JSON.stringify(raw)).toEqual(expected);
    }
  });

  it.skipIf(backend.skip)('names and values with quotes, backslashes and SQL stay data', async () => {
    await store.createCollection('inj', { dim: 2, metric: 'l2' });
    const evil = ["it's", 'x"y', 'back\\slash', "'); DROP TABLE hs_blocks; --", '{a,b}', 'NULL', '😀'];
    await store.writeBlocks(
      'inj',
      evil.map((s, i) => ({
        id: s,
        metadata: { [s]: s, nested: { [s]: i }, list: [s, i] },
        vectors: [f32(i, 0)],
      })),
    );
    for (const [i, s] of evil.entries()) {
      expect(await store.count('inj', compileFilter({ [s]: s }))).toBe(1);
      expect(await store.count('inj', compileFilter({ [s]: { $exists: true } }))).toBe(1);
      expect(await store.count('inj', compileFilter({ [s]: { $gte: s, $lte: s } }))).toBe(1);
      expect(await store.count('inj', compileFilter({ [s]: { $contains: [...s].slice(1).join('') } }))).toBe(1);
      expect(await store.count('inj', compileFilter({ [`nested.${s}`]: i }))).toBe(1);
      expect(await store.count('inj', compileFilter({ list: { $contains: s } }))).toBe(1);
    }
    // Long $in lists take another path (one array parameter).
    const many = [...evil, ...Array.from({ length: 30 }, (_, i) => `v${i}`)];
    expect(await store.count('inj', compileFilter({ list: { $in: many } }))).toBe(0);
    expect(await store.count('inj', compileFilter({ "it's": { $in: many } }))).toBe(1);
    expect(await store.count('inj', compileFilter({ "it's": { $nin: many } }))).toBe(evil.length - 1);
    const { deleted, ids } = await store.deleteWhere('inj', compileFilter({ "'); DROP TABLE hs_blocks; --": { $exists: true } }));
    expect({ deleted, ids }).toEqual({ deleted: 1, ids: ["'); DROP TABLE hs_blocks; --"] });
    expect(await store.count('inj')).toBe(evil.length - 1);
  });

  it.skipIf(backend.skip)('deleteWhere deletes the matching blocks with their vectors and logs each', async () => {
    await store.createCollection('d', { dim: 2, metric: 'l2' });
    const items = Array.from({ length: 20 }, (_, i) => ({
      id: `d${i}`,
      metadata: { n: i, tag: i % 3 === 0 ? 'x' : 'y' },
      vectors: [f32(i, 0), f32(i, 1)],
    }));
    await store.writeBlocks('d', items);
    const before = await store.lastLsn();
    const filter = compileFilter({ $or: [{ tag: 'x' }, { n: { $gte: 17 } }] });
    const expected = items.filter((it) => matchesFilter(filter, it.metadata)).map((it) => it.id);
    const out = await store.deleteWhere('d', filter);
    expect(out.deleted).toBe(expected.length);
    expect([...out.ids].sort()).toEqual([...expected].sort());
    expect(await store.count('d')).toBe(20 - expected.length);
    expect(await store.count('d', filter)).toBe(0);
    expect(await store.counts('d')).toEqual({ blocks: 20 - expected.length, vectors: 2 * (20 - expected.length) });
    const changes = await store.changesAfter(before);
    expect(changes.map((c) => c.op)).toEqual(expected.map(() => 'delete'));
    expect(changes.map((c) => c.blockId).sort()).toEqual([...expected].sort());
    expect(out.lsn).toBe(changes[changes.length - 1].lsn);
    expect(await store.deleteWhere('d', filter)).toEqual({ deleted: 0, lsn: 0, ids: [] });
    await expect(store.deleteWhere('nope', filter)).rejects.toThrow(CollectionNotFoundError);
  });

  it.skipIf(backend.skip)(
    'patchBlock changes metadata and content, bumps the version, logs it and keeps the vectors',
    async () => {
      await store.createCollection('pb', { dim: 2, metric: 'l2' });
      const vectors = [f32(1, 2), f32(3, 4)];
      await store.writeBlocks('pb', [{ id: 'a', content: 'old', metadata: { tag: 'x' }, vectors }]);
      const before = await store.lastLsn();
      const out = await store.patchBlock('pb', 'a', { metadata: { tag: 'y', n: 2 } });
      expect(out?.version).toBe(2);
      expect(out!.lsn).toBeGreaterThan(before);
      expect(await store.changesAfter(before)).toEqual([
        expect.objectContaining({ lsn: out!.lsn, collection: 'pb', blockId: 'a', op: 'upsert', version: 2 }),
      ]);
      const a = (await store.getBlocks('pb', ['a'])).get('a')!;
      expect(a).toMatchObject({ content: 'old', metadata: { tag: 'y', n: 2 }, version: 2 });
      expect(a.vectors).toEqual(vectors);
      expect(await store.count('pb', compileFilter({ tag: 'y' }))).toBe(1);

      expect((await store.patchBlock('pb', 'a', { content: null }))?.version).toBe(3);
      expect((await store.getBlocks('pb', ['a'])).get('a')).toMatchObject({ content: null, metadata: { tag: 'y', n: 2 } });
      expect(await store.patchBlock('pb', 'missing', { content: 'x' })).toBeUndefined();
      await expect(store.patchBlock('nope', 'a', { content: 'x' })).rejects.toThrow(CollectionNotFoundError);
      await expect(store.patchBlock('pb', 'a', {})).rejects.toThrow(InvalidArgumentError);
      await expect(store.patchBlock('pb', 'a', { metadata: { 'a.b': 1 } })).rejects.toThrow(InvalidArgumentError);

      const { result, lsn } = await store.unitOfWork((uow) => uow.patchBlock('pb', 'a', { content: 'new' }));
      expect(result).toEqual({ version: 4, lsn });
      expect((await store.versions('pb', ['a'])).get('a')).toBe(4);
    },
  );

  it.skipIf(backend.skip)('scroll pages hold whole blocks, vectors on request, and refuse bad limits', async () => {
    await store.createCollection('sc', { dim: 2, metric: 'l2' });
    await store.writeBlocks('sc', [
      { id: 'b', metadata: { k: 1 }, vectors: [f32(1, 1), f32(2, 2)] },
      { id: 'a', content: 'A', vectors: [] },
      { id: 'c', vectors: [f32(3, 3)] },
    ]);
    const first = await store.scroll('sc', { limit: 2, vectors: true });
    expect(first.blocks.map((b) => [b.id, b.vectors.length])).toEqual([
      ['a', 0],
      ['b', 2],
    ]);
    expect(first.blocks[0]).toMatchObject({ content: 'A', version: 1, metadata: {} });
    expect(first.next).toBe('b');
    const second = await store.scroll('sc', { limit: 2, after: first.next! });
    expect(second).toEqual({ blocks: [expect.objectContaining({ id: 'c', vectors: [] })], next: null });
    await expect(store.scroll('sc', { limit: 0 })).rejects.toThrow(InvalidArgumentError);
    await expect(store.scroll('sc', { limit: 10_001 })).rejects.toThrow(InvalidArgumentError);
    await expect(store.scroll('sc', { limit: 1, after: '' })).rejects.toThrow(InvalidArgumentError);
    await expect(store.scroll('nope', { limit: 1 })).rejects.toThrow(CollectionNotFoundError);
  });

  it.skipIf(backend.skip)('streamVectors pages carry each entry’s block metadata', async () => {
    await store.createCollection('st', { dim: 2, metric: 'l2' });
    await store.writeBlocks('st', [
      { id: 'a', metadata: { tag: 'x', o: { n: 1 } }, vectors: [f32(1, 1), f32(2, 2), f32(3, 3)] },
      { id: 'b', vectors: [f32(4, 4)] },
      { id: 'c', metadata: { tag: 'z' }, vectors: [] },
    ]);
    const seen: [string, number, Record<string, unknown>][] = [];
    for await (const page of store.streamVectors('st', 1)) {
      expect(page.metadata).toHaveLength(page.ids.length);
      page.ids.forEach((id, i) => seen.push([id, page.chunks[i], page.metadata[i]]));
    }
    expect(seen).toEqual([
      ['a', 0, { tag: 'x', o: { n: 1 } }],
      ['a', 1, { tag: 'x', o: { n: 1 } }],
      ['a', 2, { tag: 'x', o: { n: 1 } }],
      ['b', 0, {}],
    ]);
  });
});
