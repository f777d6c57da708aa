import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metric } from '../../src/core/metric.js';
import { Hvs } from '../../src/hvs/hvs.js';
import { freshSeed, randomRows, randomVectors, rng } from '../fixtures/random.js';
import { expectMatchesReference, type ModelRow } from '../fixtures/reference-check.js';

const METRICS: Metric[] = ['cosine', 'ip', 'l2'];
let dataDir: string;
let hvs: Hvs;
let hvsMain: Hvs;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hvs-search-'));
  hvs = await Hvs.open({ dataDir, device: 'cpu', sealThreshold: 64 });
  hvsMain = await Hvs.open({ dataDir: join(dataDir, 'main'), device: 'cpu', sealThreshold: 64, kernelThread: 'main' });
});
afterAll(async () => {
  await hvs.close();
  await hvsMain.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** The collection's expected live rows, maintained next to it. */
class Model {
  readonly rows = new Map<string, Float32Array>();
  live(): ModelRow[] {
    return [...this.rows].map(([id, vector]) => ({ id, vector }));
  }
}

let counter = 0;
const uniqueName = (metric: string): string => `c_${metric}_${counter++}`;

describe.each(METRICS.flatMap((m) => [[m, 'worker'] as const, [m, 'main'] as const]))(
  'HVS search equals the float64 reference (%s, kernel on the %s thread)',
  (metric, thread) => {
    const store = (): Hvs => (thread === 'worker' ? hvs : hvsMain);
    for (const dim of [7, 33, 384]) {
      it(`dim ${dim}: sealed segments + growing, upserts, deletes, duplicates, k from 1 to > N`, async () => {
        const hvs = store();
        const seed = freshSeed();
        const rand = rng(seed);
        const ctx = `seed ${seed}, ${metric}, dim ${dim}`;
        const c = hvs.createCollection(uniqueName(metric), { dim, metric });
        const model = new Model();
        const n = 300; // four sealed segments of 64 plus a growing one
        const vecs = randomRows(rand, n, dim);
        const ids = vecs.map((_, i) => `id-${i}`);
        // duplicates: the same vector under several ids
        vecs[10] = vecs[3].slice();
        vecs[11] = vecs[3].slice();
        await c.upsert(ids.slice(0, 150), vecs.slice(0, 150));
        await c.upsert(ids.slice(150), vecs.slice(150));
        ids.forEach((id, i) => model.rows.set(id, vecs[i]));
        await c.idle();
        expect(c.stats().sealedSegments).toBeGreaterThanOrEqual(4);
        expect(c.stats().growingRows).toBeGreaterThan(0);

        // upserts: replace 40 ids (in sealed and growing segments) with new vectors
        const up = Array.from({ length: 40 }, (_, i) => ids[(i * 7) % n]);
        const upVecs = randomRows(rand, up.length, dim);
        await c.upsert(up, upVecs);
        up.forEach((id, i) => model.rows.set(id, upVecs[i]));
        // deletes, across segments
        const del = Array.from({ length: 50 }, (_, i) => ids[(i * 13 + 5) % n]);
        expect(c.delete(del)).toBe(new Set(del).size);
        for (const id of del) model.rows.delete(id);
        expect(c.count).toBe(model.rows.size);

        const queries = randomRows(rand, 9, dim);
        queries.push(vecs[3].slice()); // a query equal to a duplicated row
        for (const k of [1, 10, 64, model.rows.size + 20]) {
          const results = await c.search(queries, k);
          expect(results).toHaveLength(queries.length);
          results.forEach((hits, q) =>
            expectMatchesReference(metric, queries[q], model.live(), k, hits, `${ctx}, k ${k}, query ${q}`),
          );
        }
      });
    }

    it('N < k on a collection held only in the growing segment', async () => {
      const hvs = store();
      const seed = freshSeed();
      const rand = rng(seed);
      const dim = 5;
      const c = hvs.createCollection(uniqueName(metric), { dim, metric });
      const vecs = randomRows(rand, 3, dim);
      await c.upsert(['a', 'b', 'c'], vecs);
      const q = randomRows(rand, 2, dim);
      const res = await c.search(q, 1024);
      const rows = ['a', 'b', 'c'].map((id, i) => ({ id, vector: vecs[i] }));
      res.forEach((hits, i) => expectMatchesReference(metric, q[i], rows, 1024, hits, `seed ${seed}`));
    });

    it('compaction drops tombstones and keeps results equal to the reference', async () => {
      const hvs = store();
      const seed = freshSeed();
      const rand = rng(seed);
      const dim = 16;
      const c = hvs.createCollection(uniqueName(metric), { dim, metric });
      const model = new Model();
      const vecs = randomRows(rand, 400, dim);
      const ids = vecs.map((_, i) => `v${i}`);
      await c.upsert(ids, vecs);
      ids.forEach((id, i) => model.rows.set(id, vecs[i]));
      const del = ids.filter((_, i) => i % 3 === 0);
      c.delete(del);
      for (const id of del) model.rows.delete(id);
      const before = c.stats();
      expect(before.tombstones).toBeGreaterThan(0);
      const queries = randomRows(rand, 4, dim);
      // a search running while compaction swaps segments still answers from a consistent set
      const [during, report] = await Promise.all([c.search(queries, 10), c.compact()]);
      during.forEach((hits, q) => expectMatchesReference(metric, queries[q], model.live(), 10, hits, `seed ${seed}, during`));
      expect(report.rewritten).toBeGreaterThan(0);
      const after = c.stats();
      expect(after.tombstones).toBe(after.growingRows > 0 ? after.tombstones : 0);
      expect(after.sealedSegments).toBeLessThan(before.sealedSegments);
      expect(after.count).toBe(model.rows.size);
      const res = await c.search(queries, 25);
      res.forEach((hits, q) => expectMatchesReference(metric, queries[q], model.live(), 25, hits, `seed ${seed}, after`));
      for (const id of ids.slice(0, 30)) {
        const got = c.get(id);
        expect(got === undefined).toBe(!model.rows.has(id));
      }
    });
  },
);

describe('segments being sealed', () => {
  it('serve searches, reads and deletes while their index is built, and carry deletes over', async () => {
    const dim = 24;
    const rand = rng(freshSeed());
    const c = hvs.createCollection(uniqueName('sealing'), { dim, metric: 'l2' });
    const model = new Model();
    const vecs = randomRows(rand, 200, dim);
    const ids = vecs.map((_, i) => `s${i}`);
    await c.upsert(ids, vecs); // fills three segments: their seals run after upsert returns
    ids.forEach((id, i) => model.rows.set(id, vecs[i]));
    const q = randomRows(rand, 3, dim);
    const during = await c.search(q, 15);
    during.forEach((hits, i) => expectMatchesReference('l2', q[i], model.live(), 15, hits, 'during seal'));
    expect(c.get('s5')?.vector).toEqual(vecs[5]);
    c.delete(['s1', 's70', 's130']);
    for (const id of ['s1', 's70', 's130']) model.rows.delete(id);
    await c.idle();
    expect(c.stats()).toMatchObject({ sealedSegments: 3, sealingSegments: 0, tombstones: 3, count: 197 });
    const after = await c.search(q, 200);
    after.forEach((hits, i) => expectMatchesReference('l2', q[i], model.live(), 200, hits, 'after seal'));
    expect(c.get('s70')).toBeUndefined();
    expect(c.get('s71')?.vector).toEqual(vecs[71]);
  });

  it('a snapshot taken while seals run waits for them and holds every row once', async () => {
    const dim = 8;
    const name = uniqueName('snapseal');
    const c = hvs.createCollection(name, { dim, metric: 'ip' });
    const vecs = randomVectors(rng(freshSeed()), 300, dim);
    const ids = Array.from({ length: 300 }, (_, i) => `p${i}`);
    await c.upsert(ids, vecs);
    const manifest = await hvs.snapshot(name);
    expect(manifest.segments.reduce((n, s) => n + s.rows, 0)).toBe(300);
    const other = await Hvs.open({ dataDir, device: 'cpu', sealThreshold: 64 });
    try {
      const loaded = await other.loadSnapshot(name);
      expect(loaded.count).toBe(300);
      for (const i of [0, 63, 64, 299]) expect(loaded.get(ids[i])?.vector).toEqual(vecs.slice(i * dim, (i + 1) * dim));
    } finally {
      await other.close();
    }
  });

  it('closing while seals run is clean', async () => {
    const h = await Hvs.open({ dataDir: join(dataDir, 'closing'), device: 'cpu', sealThreshold: 32 });
    const c = h.createCollection('closing_seals', { dim: 16, metric: 'cosine' });
    await c.upsert(
      Array.from({ length: 500 }, (_, i) => `c${i}`),
      randomVectors(rng(freshSeed()), 500, 16),
    );
    await h.close();
    await expect(c.search([new Float32Array(16).fill(1)], 1)).rejects.toThrow(/closed/);
  });
});

describe('reads by id and memory accounting', () => {
  it('get returns the stored vector and version; upsert bumps the version', async () => {
    const c = hvs.createCollection(uniqueName('get'), { dim: 4, metric: 'ip' });
    const v = Float32Array.of(1.5, -2, 0.25, 1e-7);
    await c.upsert(['x'], [v]);
    expect(c.get('x')).toEqual({ vector: v, version: 1 });
    await c.upsert(['x'], [Float32Array.of(0, 0, 0, 1)]);
    expect(c.get('x')?.version).toBe(2);
    expect(c.count).toBe(1);
    await c.upsert(['x'], [v], [42]);
    expect(c.get('x')?.version).toBe(42);
    c.delete(['x']);
    expect(c.get('x')).toBeUndefined();
    expect(c.count).toBe(0);
    expect(await c.search([v], 3)).toEqual([[]]);
  });

  it('flat inputs that are views into larger buffers are read at their offset', async () => {
    const dim = 8;
    const rand = rng(freshSeed());
    const c = hvs.createCollection(uniqueName('view'), { dim, metric: 'ip' });
    const big = randomVectors(rand, 100, dim);
    await c.upsert(
      Array.from({ length: 50 }, (_, i) => `r${i}`),
      big.subarray(50 * dim),
    );
    expect(c.get('r0')?.vector).toEqual(big.slice(50 * dim, 51 * dim));
    const queries = big.subarray(3 * dim, 7 * dim);
    expect(await c.search(queries, 5)).toEqual(await c.search(queries.slice(), 5));
  });

  it('cosine rows are stored normalised', async () => {
    const c = hvs.createCollection(uniqueName('norm'), { dim: 2, metric: 'cosine' });
    await c.upsert(['a'], [Float32Array.of(3, 4)]);
    const got = c.get('a')!.vector;
    expect(got[0]).toBeCloseTo(0.6, 6);
    expect(got[1]).toBeCloseTo(0.8, 6);
  });

  it('reports host and device bytes', async () => {
    const dim = 256;
    const c = hvs.createCollection(uniqueName('mem'), { dim, metric: 'l2' });
    const rand = rng(freshSeed());
    await c.upsert(
      Array.from({ length: 200 }, (_, i) => `m${i}`),
      randomVectors(rand, 200, dim),
    );
    await c.idle();
    expect(c.stats().sealedSegments).toBe(3);
    const m = c.memoryUsage();
    const sealedRows = 3 * 64;
    expect(m.deviceBytes).toBe(sealedRows * dim * 4 + sealedRows * 4);
    expect(m.diskBytes).toBe(sealedRows * dim * 4);
    expect(m.hostBytes).toBeGreaterThanOrEqual((200 - sealedRows) * dim * 4);
    // the host's copy of sealed vectors is on disk, not in RAM
    expect(m.hostBytes).toBeLessThan(200 * dim * 4);
    const total = hvs.memoryUsage();
    expect(total.collections[c.name]).toEqual(m);
  });
});
