import { afterAll, describe, expect, it } from 'vitest';
import { loadNativeIvf } from '../../kernels/native-ivf.js';
import { referenceSearch } from '../../kernels/reference.js';
import type { Metric } from '../../src/core/metric.js';
import { IvfIndex } from '../../src/hvs/ivf/ivf-index.js';
import { freshSeed, randomVectors, rng } from '../fixtures/random.js';

const native = loadNativeIvf();
const reason = native.ok ? '' : native.reason;

describe('native IVF kernel availability', () => {
  it('loads where the build is required (CI), or says why not', () => {
    if (process.env.HYPERSYNC_REQUIRE_NATIVE === '1') expect(native.ok, reason).toBe(true);
    else if (!native.ok) expect(reason).toMatch(/native IVF kernel/);
  });
});

function normalise(x: Float32Array, dim: number): Float32Array {
  for (let r = 0; r < x.length / dim; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += x[r * dim + j] ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) x[r * dim + j] *= inv;
  }
  return x;
}

/** The metric's own score from the kernel's: L2 kernel scores are 2·q·x − ‖x‖². */
function metricScore(metric: Metric, kernelScore: number, q: Float32Array): number {
  if (metric !== 'l2') return kernelScore;
  let qq = 0;
  for (const v of q) qq += v * v;
  return Math.sqrt(Math.max(0, qq - kernelScore));
}

describe.skipIf(!native.ok)('native IVF kernel against the float64 reference', () => {
  const kernel = native.ok ? native.kernel : undefined!;
  afterAll(() => {
    kernel.useIsa('best');
  });
  // dim 37: not a multiple of 4 or 16, so the padded and tail paths run.
  const dim = 37;
  const n = 2_500;
  const batch = 9;
  const k = 10;

  for (const isa of ['best', 'generic'] as const) {
    for (const metric of ['cosine', 'ip', 'l2'] as const) {
      it(`${isa} ${metric}: exact top-k with deletes and a mask equals the reference; a full probe equals exact`, async () => {
        kernel.useIsa(isa);
        const seed = freshSeed();
        const rand = rng(seed);
        const data = randomVectors(rand, n, dim);
        const queries = randomVectors(rand, batch, dim);
        if (metric === 'cosine') {
          normalise(data, dim);
          normalise(queries, dim);
        }
        const index = await IvfIndex.build(kernel, data, n, dim, metric, { nlist: 20, seed });
        // Entries are in list order: order[e] is the input row.
        for (let e = 0; e < n; e += 7) index.delete(e);
        const mask = new Float32Array(n);
        for (let e = 3; e < n; e += 5) mask[e] = -Infinity;
        const live = (e: number): boolean => index.isLive(e) && mask[e] === 0;
        const exact = await index.exact(queries, batch, k, mask);
        const full = await index.search(queries, batch, k, 20, n, mask);
        const listed = index.arrays.vectors;
        for (let q = 0; q < batch; q++) {
          const qv = queries.subarray(q * dim, (q + 1) * dim);
          const ref = referenceSearch(metric, qv, listed, n, dim, k, live);
          for (let i = 0; i < k; i++) {
            const at = `seed ${seed} query ${q} rank ${i}`;
            const row = exact.rows[q * k + i];
            expect(live(row), at).toBe(true);
            expect(metricScore(metric, exact.scores[q * k + i], qv), at).toBeCloseTo(ref[i].score, 3);
            expect(full.rows[q * k + i], at).toBe(row);
          }
        }
      });
    }
  }

  it('the int8 scan ranks the same candidates on both instruction sets (integer sums are exact)', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const data = normalise(randomVectors(rand, n, dim), dim);
    const queries = normalise(randomVectors(rand, batch, dim), dim);
    kernel.useIsa('best');
    const index = await IvfIndex.build(kernel, data, n, dim, 'cosine', { nlist: 16, seed });
    const fast = await index.search(queries, batch, k, 4, 2 * k);
    kernel.useIsa('generic');
    const portable = await index.search(queries, batch, k, 4, 2 * k);
    kernel.useIsa('best');
    expect([...portable.rows], `seed ${seed}`).toEqual([...fast.rows]);
    for (let i = 0; i < fast.scores.length; i++) expect(portable.scores[i]).toBeCloseTo(fast.scores[i], 4);
    // And the codes' approximation is close: 4k candidates from every list find the exact top-k.
    const exact = await index.exact(queries, batch, k);
    const all = await index.search(queries, batch, k, 16, 4 * k);
    let found = 0;
    for (let q = 0; q < batch; q++) {
      const truth = new Set(exact.rows.subarray(q * k, (q + 1) * k));
      for (let i = 0; i < k; i++) if (truth.has(all.rows[q * k + i])) found++;
    }
    expect(found / (batch * k), `seed ${seed}`).toBeGreaterThanOrEqual(0.97);
  });

  it('refuses arrays of the wrong size or type with a RangeError instead of reading past them', async () => {
    const data = randomVectors(rng(1), 64, 8);
    const index = await IvfIndex.build(kernel, data, 64, 8, 'ip', { nlist: 2 });
    await expect(async () => index.search(new Float32Array(7), 1, 3, 1, 8)).rejects.toThrow(RangeError);
    const { scale, offset } = index.arrays;
    expect(() => kernel.assign(data, 65, 8, new Float32Array(16), 2, 0, 1, new Int32Array(65), scale, offset)).toThrow(
      /x holds 512 values/,
    );
    expect(() => kernel.assign(data, 64, 8, new Float32Array(16), 2, 0, 1, new Int32Array(8), scale, offset)).toThrow(/labels/);
    expect(() =>
      kernel.assign(data, 64, 8, new Float32Array(16), 2, 0, 1, new Int32Array(64), scale, new Float32Array(2)),
    ).toThrow(/offset/);
    expect(() => new kernel.IvfIndex({ ...index.arrays, codes: new Uint8Array(3) })).toThrow(/codes/);
    expect(() => kernel.useIsa('sse' as 'best')).toThrow(/useIsa/);
  });
});
