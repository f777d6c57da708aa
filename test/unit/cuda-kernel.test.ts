import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCudaAddon, probeCudaDevice } from '../../kernels/cuda-addon.js';
import { CudaSearchKernel } from '../../kernels/cuda-kernel.js';
import { resolveDevice } from '../../kernels/device.js';
import { OnnxSearchKernel } from '../../kernels/onnx-kernel.js';
import { referenceScore, referenceSearch } from '../../kernels/reference.js';
import type { TopKResult } from '../../kernels/types.js';
import { ClosedError, DeviceMemoryError, DeviceUnavailableError } from '../../src/core/errors.js';
import type { Metric } from '../../src/core/metric.js';
import { Hvs } from '../../src/hvs/hvs.js';
import { freshSeed, randomRows, randomVectors, rng } from '../fixtures/random.js';
import { expectMatchesReference } from '../fixtures/reference-check.js';

const build = loadCudaAddon();
const device = probeCudaDevice();
const reason = device.ok ? '' : device.reason;
const METRICS: Metric[] = ['ip', 'cosine', 'l2'];

function normaliseRows(v: Float32Array, dim: number): void {
  for (let r = 0; r < v.length / dim; r++) {
    const row = v.subarray(r * dim, (r + 1) * dim);
    const n = Math.hypot(...row);
    for (let j = 0; j < dim; j++) row[j] /= n;
  }
}

/** The kernel score (larger is better) of `query` against row `r`, in float64. */
function kernelScore(metric: Metric, query: Float32Array, vectors: Float32Array, r: number, dim: number): number {
  let dot = 0;
  let xx = 0;
  for (let j = 0; j < dim; j++) {
    dot += query[j] * vectors[r * dim + j];
    xx += vectors[r * dim + j] ** 2;
  }
  return metric === 'l2' ? 2 * dot - xx : dot;
}

interface Data {
  metric: Metric;
  vectors: Float32Array;
  queries: Float32Array;
  rows: number;
  dim: number;
  batch: number;
}

/**
 * Top-k of `res` against the float64 reference over the rows `live` lets through: ranks agree
 * except between scores within `tol` (ties aside), reported scores are the true kernel scores,
 * and slots past the live rows are empty.
 */
function expectReference(res: TopKResult, d: Data, k: number, live: (r: number) => boolean, tol: number, ctx: string): void {
  const kk = Math.min(k, d.rows);
  expect(res.k, `${ctx}: k`).toBe(kk);
  const refMetric = d.metric === 'cosine' ? 'ip' : d.metric;
  for (let q = 0; q < d.batch; q++) {
    const query = d.queries.subarray(q * d.dim, (q + 1) * d.dim);
    const ref = referenceSearch(refMetric, query, d.vectors, d.rows, d.dim, kk, live);
    const seen = new Set<number>();
    for (let i = 0; i < kk; i++) {
      const r = res.rows[q * kk + i];
      const s = res.scores[q * kk + i];
      if (i >= ref.length) {
        expect([r, s], `${ctx}, query ${q}, slot ${i}: past the live rows`).toEqual([-1, -Infinity]);
        continue;
      }
      expect(r, `${ctx}, query ${q}, slot ${i}: empty while ${ref.length} rows are live`).toBeGreaterThanOrEqual(0);
      expect(live(r), `${ctx}, query ${q}: masked row ${r} returned`).toBe(true);
      expect(seen.has(r), `${ctx}, query ${q}: row ${r} twice`).toBe(false);
      seen.add(r);
      const truth = kernelScore(d.metric, query, d.vectors, r, d.dim);
      expect(Math.abs(s - truth), `${ctx}, query ${q}: score of row ${r}`).toBeLessThan(tol * Math.max(1, Math.abs(truth)));
      if (r === ref[i].row) continue;
      const mine = referenceScore(refMetric, query, d.vectors, r, d.dim);
      expect(Math.abs(mine - ref[i].score), `${ctx}, query ${q}: rank ${i} holds ${r}, reference ${ref[i].row}`).toBeLessThan(
        tol * Math.max(1, Math.abs(ref[i].score)),
      );
    }
  }
}

/** The same top-k from two kernels, rows differing only between near-ties. */
function expectSameTopK(a: TopKResult, b: TopKResult, d: Data, tol: number, ctx: string): void {
  expect(a.k, `${ctx}: k`).toBe(b.k);
  for (let i = 0; i < a.rows.length; i++) {
    if (a.rows[i] === b.rows[i]) continue;
    expect(Math.abs(a.scores[i] - b.scores[i]), `${ctx}: slot ${i} holds ${a.rows[i]} and ${b.rows[i]}`).toBeLessThan(
      tol * Math.max(1, Math.abs(a.scores[i])),
    );
  }
}

function makeData(metric: Metric, rows: number, dim: number, batch: number, seed: number): Data {
  const rand = rng(seed);
  const vectors = randomVectors(rand, rows, dim);
  const queries = randomVectors(rand, batch, dim);
  if (metric === 'cosine') {
    normaliseRows(vectors, dim);
    normaliseRows(queries, dim);
  }
  return { metric, vectors, queries, rows, dim, batch };
}

/** A mask with about `share` of the rows at −Infinity, and the transient bias to match. */
function tombstones(d: Data, share: number, seed: number): { mask: Float32Array; masked: number; bias: Float32Array } {
  const rand = rng(seed ^ 0x5bd1e995);
  const mask = new Float32Array(d.rows);
  const bias = new Float32Array(d.rows);
  let masked = 0;
  for (let r = 0; r < d.rows; r++) {
    let xx = 0;
    for (let j = 0; j < d.dim; j++) xx += d.vectors[r * d.dim + j] ** 2;
    const dead = rand() < share;
    if (dead) masked++;
    mask[r] = dead ? -Infinity : 0;
    bias[r] = dead ? -Infinity : d.metric === 'l2' ? -xx : 0;
  }
  return { mask, masked, bias };
}

describe(`CUDA addon build (${build.ok ? build.build : build.reason})`, () => {
  it('is built where nvcc is, or says why not', () => {
    if (build.ok) expect(build.addon.maxDeviceK).toBeGreaterThanOrEqual(1024);
    else expect(build.reason).toMatch(/CUDA addon (not built|did not load)/);
  });

  it('probes the device without throwing, with a reason where none runs', () => {
    if (device.ok) {
      expect(device.probe.name.length).toBeGreaterThan(0);
      expect(device.probe.cublasPath).toMatch(/libcublas/);
    } else {
      expect(reason.length).toBeGreaterThan(0);
      // The addon loaded here but found no GPU, driver or cuBLAS: its own probe says the same.
      if (build.ok) expect(build.addon.probe(0)).toMatchObject({ ok: false, reason });
    }
  });
});

describe.skipIf(device.ok)(`HYPERSYNC_DEVICE without a usable CUDA device (${reason})`, () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cuda-kernel-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('cuda refuses at start with the reason', async () => {
    const err = (await resolveDevice('cuda').catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(DeviceUnavailableError);
    expect(err.message).toContain(reason);
    await expect(Hvs.open({ dataDir, device: 'cuda' })).rejects.toThrow(DeviceUnavailableError);
  });

  it('auto falls back to onnxruntime, saying why', async () => {
    const info = await resolveDevice('auto');
    expect(info).toMatchObject({ kernel: 'onnx', precision: 'fp32', cudaAddon: { available: false, reason } });
    expect(info.reason).toContain(`CUDA addon unavailable (${reason})`);
    const hvs = await Hvs.open({ dataDir, device: 'auto', kernelThread: 'main' });
    expect(hvs.deviceInfo.kernel).toBe('onnx');
    await hvs.close();
  });

  it('the CUDA kernel does not open', async () => {
    const info = await resolveDevice('cpu');
    expect(() => CudaSearchKernel.open(info)).toThrow(DeviceUnavailableError);
  });
});

describe.skipIf(!device.ok)(`CUDA kernel ${device.ok ? `on ${device.probe.name}` : `(skipped: ${reason})`}`, () => {
  let kernel: CudaSearchKernel;
  let cpu: OnnxSearchKernel;
  beforeAll(async () => {
    // Small score tiles, so every case runs several tiles and merges their candidates.
    kernel = CudaSearchKernel.open(await resolveDevice('cuda'), { tileBytes: 16384 });
    cpu = new OnnxSearchKernel(await resolveDevice('cpu'));
  });
  afterAll(async () => {
    await kernel?.close();
    await cpu?.close();
  });

  it('says which kernel and precision run', () => {
    expect(kernel.deviceInfo).toMatchObject({ device: 'cuda', kernel: 'cuda-addon', precision: 'fp32' });
    expect(kernel.deviceInfo.cudaAddon).toMatchObject({ available: true });
    expect(kernel.memory().totalBytes).toBeGreaterThan(0);
  });

  // Tiles, several slices per query, the register and the shared-memory selection, the host
  // selection past maxDeviceK, and k > rows.
  const cases = [
    { rows: 3000, dim: 37, batch: 5, k: 10 },
    { rows: 40000, dim: 16, batch: 3, k: 7 },
    { rows: 2000, dim: 24, batch: 3, k: 100 },
    { rows: 2600, dim: 12, batch: 2, k: 2500 },
    { rows: 50, dim: 9, batch: 2, k: 80 },
  ];
  describe.each(METRICS)('%s', (metric) => {
    it.each(cases)('rows $rows, dim $dim, batch $batch, k $k: equals the reference and the CPU kernel', async (c) => {
      const seed = freshSeed();
      const ctx = `seed ${seed}, ${metric}, rows ${c.rows}, k ${c.k}`;
      const d = makeData(metric, c.rows, c.dim, c.batch, seed);
      const { mask, masked, bias } = tombstones(d, 0.1, seed);
      const live = (r: number): boolean => mask[r] === 0;
      const gpuIndex = await kernel.createIndex(d.vectors, d.rows, d.dim, metric);
      const cpuIndex = await cpu.createIndex(d.vectors, d.rows, d.dim, metric);
      expect(gpuIndex.deviceBytes).toBe(d.rows * d.dim * 4 + (metric === 'l2' ? d.rows * 4 : 0));
      const resident = await gpuIndex.search(d.queries, d.batch, c.k, { mask, masked });
      const transient = await kernel.searchTransient(d.vectors, d.rows, d.dim, metric, bias, d.queries, d.batch, c.k);
      expectReference(resident, d, c.k, live, 1e-4, `${ctx}, resident`);
      expectReference(transient, d, c.k, live, 1e-4, `${ctx}, transient`);
      expectSameTopK(resident, await cpuIndex.search(d.queries, d.batch, c.k, { mask, masked }), d, 1e-4, `${ctx}, vs CPU`);
      const unmasked = await gpuIndex.search(d.queries, d.batch, c.k, { mask: new Float32Array(d.rows), masked: 0 });
      expectReference(unmasked, d, c.k, () => true, 1e-4, `${ctx}, no mask`);
      await gpuIndex.release();
      await cpuIndex.release();
    });
  });

  it('a filter mask letting 5 rows through returns those 5 and empty slots', async () => {
    const seed = freshSeed();
    const d = makeData('ip', 5000, 20, 4, seed);
    const mask = new Float32Array(d.rows).fill(-Infinity);
    for (const r of [3, 999, 1000, 2500, 4999]) mask[r] = 0;
    const index = await kernel.createIndex(d.vectors, d.rows, d.dim, 'ip');
    for (const k of [3, 10, 600]) {
      const res = await index.search(d.queries, d.batch, k, { mask, masked: d.rows - 5 });
      expectReference(res, d, k, (r) => mask[r] === 0, 1e-4, `seed ${seed}, k ${k}`);
    }
    await index.release();
  });

  it('searchIndexes answers several indexes in one call, in order', async () => {
    const seed = freshSeed();
    const a = makeData('l2', 1500, 32, 6, seed);
    const b = { ...makeData('l2', 700, 32, 6, seed + 1), queries: a.queries };
    const ia = await kernel.createIndex(a.vectors, a.rows, a.dim, 'l2');
    const ib = await kernel.createIndex(b.vectors, b.rows, b.dim, 'l2');
    const tb = tombstones(b, 0.3, seed);
    const [ra, rb] = await kernel.searchIndexes(
      [
        { index: ia, mask: new Float32Array(a.rows), masked: 0 },
        { index: ib, mask: tb.mask, masked: tb.masked },
      ],
      a.queries,
      a.batch,
      20,
    );
    expectReference(ra, a, 20, () => true, 1e-4, `seed ${seed}, first`);
    expectReference(rb, b, 20, (r) => tb.mask[r] === 0, 1e-4, `seed ${seed}, second`);
    await ia.release();
    await ib.release();
  });

  it('refuses an index past the memory limit or the free memory with DeviceMemoryError, and keeps working', async () => {
    const info = await resolveDevice('cuda');
    const limited = CudaSearchKernel.open(info, { memoryLimitBytes: 64 * 1024 });
    const d = makeData('ip', 1000, 32, 2, freshSeed());
    await expect(limited.createIndex(d.vectors, d.rows, d.dim, 'ip')).rejects.toThrow(DeviceMemoryError);
    const small = await limited.createIndex(d.vectors, 400, d.dim, 'ip');
    expect(limited.memory().accountedBytes).toBe(400 * 32 * 4);
    await expect(limited.createIndex(d.vectors, 200, d.dim, 'ip')).rejects.toThrow(/limit/);
    await small.release();
    expect(limited.memory().accountedBytes).toBe(0);
    await limited.close();
    const greedy = CudaSearchKernel.open(info, { reserveBytes: 2 ** 52 });
    await expect(greedy.createIndex(d.vectors, d.rows, d.dim, 'ip')).rejects.toThrow(DeviceMemoryError);
    await greedy.close();
  });

  it('release and close are safe twice; use after either is a ClosedError', async () => {
    const info = await resolveDevice('cuda');
    const k2 = CudaSearchKernel.open(info);
    const d = makeData('ip', 100, 8, 1, freshSeed());
    const index = await k2.createIndex(d.vectors, d.rows, d.dim, 'ip');
    await index.release();
    await index.release();
    expect(index.deviceBytes).toBe(0);
    await expect(index.search(d.queries, 1, 5, { mask: new Float32Array(100), masked: 0 })).rejects.toThrow(ClosedError);
    await k2.close();
    await k2.close();
    await expect(k2.createIndex(d.vectors, d.rows, d.dim, 'ip')).rejects.toThrow(ClosedError);
  });

  it('TF32 when asked: says so, and results stay within TF32 rounding', async () => {
    const info = await resolveDevice('cuda', { tf32: true });
    expect(info.precision).toBe('tf32');
    const tf32 = CudaSearchKernel.open(info);
    const seed = freshSeed();
    const d = makeData('ip', 4000, 64, 4, seed);
    const index = await tf32.createIndex(d.vectors, d.rows, d.dim, 'ip');
    const res = await index.search(d.queries, d.batch, 10, { mask: new Float32Array(d.rows), masked: 0 });
    expectReference(res, d, 10, () => true, 2e-2, `seed ${seed}, tf32`);
    await index.release();
    await tf32.close();
  });

  it('the HVS on CUDA answers like the float64 reference', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'cuda-hvs-'));
    const hvs = await Hvs.open({ dataDir, device: 'cuda', sealThreshold: 64 });
    try {
      expect(hvs.deviceInfo.kernel).toBe('cuda-addon');
      for (const metric of METRICS) {
        const seed = freshSeed();
        const rand = rng(seed);
        const c = hvs.createCollection(`cuda_${metric}`, { dim: 24, metric });
        const vecs = randomRows(rand, 300, 24);
        const ids = vecs.map((_, i) => `v${i}`);
        await c.upsert(ids, vecs);
        const del = ids.filter((_, i) => i % 7 === 0);
        c.delete(del);
        await c.idle();
        const rows = ids.map((id, i) => ({ id, vector: vecs[i] })).filter((_, i) => i % 7 !== 0);
        const queries = randomRows(rand, 5, 24);
        for (const k of [1, 10, 400]) {
          const results = await c.search(queries, k);
          results.forEach((hits, q) =>
            expectMatchesReference(metric, queries[q], rows, k, hits, `seed ${seed}, ${metric}, k ${k}`),
          );
        }
      }
    } finally {
      await hvs.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
