import { describe, expect, it } from 'vitest';
import { resolveDevice } from '../../kernels/device.js';
import { OnnxSearchKernel } from '../../kernels/onnx-kernel.js';
import { referenceScore, referenceSearch } from '../../kernels/reference.js';
import { DeviceUnavailableError } from '../../src/core/errors.js';
import { freshSeed, randomVectors, rng } from '../fixtures/random.js';

describe('device selection', () => {
  it('cpu is always available and says why it was chosen', async () => {
    const info = await resolveDevice('cpu');
    expect(info).toMatchObject({ device: 'cpu', executionProviders: ['cpu'], reason: 'HYPERSYNC_DEVICE=cpu' });
    expect(info.runtime).toMatch(/^\d+\.\d+/);
  });

  it('auto picks a CUDA kernel only where one runs, and cuda fails loudly otherwise', async () => {
    const auto = await resolveDevice('auto');
    if (auto.kernel === 'cuda-addon') {
      expect(auto.device).toBe('cuda');
      expect((await resolveDevice('cuda')).kernel).toBe('cuda-addon');
    } else {
      // Without the addon `cuda` refuses, naming why; `auto` says why it did not use it.
      expect(auto.cudaAddon).toMatchObject({ available: false });
      expect(auto.reason).toMatch(/CUDA addon unavailable/);
      await expect(resolveDevice('cuda')).rejects.toThrow(DeviceUnavailableError);
      await expect(resolveDevice('cuda')).rejects.toThrow(/CUDA search kernel cannot run/);
      if (auto.device === 'cpu') expect(auto.reason).toMatch(/CUDA execution provider unavailable/);
      else expect(auto.executionProviders[0]).toBe('cuda');
    }
  });
});

describe('raw kernel results equal the float64 reference', () => {
  it.each(['ip', 'l2'] as const)('resident index and transient search (%s), with a tombstone mask', async (metric) => {
    const seed = freshSeed();
    const rand = rng(seed);
    const kernel = new OnnxSearchKernel(await resolveDevice('cpu'));
    const rows = 500;
    const dim = 31;
    const vectors = randomVectors(rand, rows, dim);
    const queries = randomVectors(rand, 3, dim);
    const index = await kernel.createIndex(vectors, rows, dim, metric);
    const mask = new Float32Array(rows);
    const dead = new Set<number>();
    for (let i = 0; i < 60; i++) dead.add(Math.floor(rand() * rows));
    for (const r of dead) mask[r] = -Infinity;
    const bias = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += vectors[r * dim + j] ** 2;
      bias[r] = dead.has(r) ? -Infinity : metric === 'l2' ? -s : 0;
    }
    const k = 25;
    const resident = await index.search(queries, 3, k, { mask, masked: dead.size });
    const transient = await kernel.searchTransient(vectors, rows, dim, metric, bias, queries, 3, k);
    for (const res of [resident, transient]) {
      for (let q = 0; q < 3; q++) {
        const query = queries.subarray(q * dim, (q + 1) * dim);
        const ref = referenceSearch(metric, query, vectors, rows, dim, k, (r) => !dead.has(r));
        const got = Array.from(res.rows.subarray(q * res.k, (q + 1) * res.k));
        for (const r of got) expect(dead.has(r), `seed ${seed}: tombstoned row ${r} surfaced`).toBe(false);
        // Ranks agree except where true scores tie within float32 rounding (at the k boundary
        // too, so a returned row may be just outside the reference's list).
        got.forEach((r, i) => {
          if (r === ref[i].row) return;
          const truth = referenceScore(metric, query, vectors, r, dim);
          expect(Math.abs(truth - ref[i].score), `seed ${seed}: rank ${i} holds row ${r}, reference ${ref[i].row}`).toBeLessThan(
            1e-4,
          );
        });
      }
    }
    await index.release();
    await index.release();
    await kernel.close();
    await kernel.close();
  });
});

describe('filtered kernel searches equal the float64 reference', () => {
  // From almost every row masked to almost none: the mask is the sealed graph's Gemm bias; and the
  // matching rows gathered and scored alone, as a segment does when few match.
  it.each([
    ['ip', 0.97],
    ['l2', 0.5],
    ['ip', 0.05],
    ['l2', 0.004],
    ['cosine', 0.02],
  ] as const)('%s with %s of the rows matching: masked and gathered', async (metric, share) => {
    const seed = freshSeed();
    const rand = rng(seed);
    const kernel = new OnnxSearchKernel(await resolveDevice('cpu'));
    const rows = 2000;
    const dim = 24;
    const vectors = randomVectors(rand, rows, dim);
    if (metric === 'cosine') {
      for (let r = 0; r < rows; r++) {
        const v = vectors.subarray(r * dim, (r + 1) * dim);
        const n = Math.hypot(...v);
        for (let j = 0; j < dim; j++) v[j] /= n;
      }
    }
    const batch = 4;
    const queries = randomVectors(rand, batch, dim);
    const index = await kernel.createIndex(vectors, rows, dim, metric);
    const mask = new Float32Array(rows).fill(-Infinity);
    const allowed: number[] = [];
    for (let r = 0; r < rows; r++) if (rand() < share) allowed.push(r);
    if (allowed.length === 0) allowed.push(7);
    for (const r of allowed) mask[r] = 0;
    const masked = rows - allowed.length;
    const ok = new Set(allowed);
    const k = 20;
    const runs = {
      masked: await index.search(queries, batch, k, { mask, masked }),
      // The same rows gathered and scored alone (what a segment does when few rows match).
      gathered: await (async () => {
        const sel = Int32Array.from(allowed);
        const dimRows = new Float32Array(sel.length * dim);
        sel.forEach((r, i) => dimRows.set(vectors.subarray(r * dim, (r + 1) * dim), i * dim));
        const bias = new Float32Array(sel.length);
        if (metric === 'l2')
          sel.forEach((r, i) => (bias[i] = -dimRows.subarray(i * dim, (i + 1) * dim).reduce((a, x) => a + x * x, 0)));
        const out = await kernel.searchTransient(dimRows, sel.length, dim, metric, bias, queries, batch, k);
        for (let i = 0; i < out.rows.length; i++) if (out.rows[i] >= 0) out.rows[i] = sel[out.rows[i]];
        return out;
      })(),
    };
    for (const [how, res] of Object.entries(runs)) {
      for (let q = 0; q < batch; q++) {
        const query = queries.subarray(q * dim, (q + 1) * dim);
        const ref = referenceSearch(metric === 'cosine' ? 'ip' : metric, query, vectors, rows, dim, k, (r) => ok.has(r));
        const got = Array.from(res.rows.subarray(q * res.k, (q + 1) * res.k)).filter((r) => r >= 0);
        expect(got.length, `seed ${seed} ${how}: never short while ${k} rows match`).toBe(Math.min(k, allowed.length));
        got.forEach((r, i) => {
          expect(ok.has(r), `seed ${seed} ${how}: row ${r} does not match`).toBe(true);
          if (r === ref[i].row) return;
          const truth = referenceScore(metric === 'cosine' ? 'ip' : metric, query, vectors, r, dim);
          expect(
            Math.abs(truth - ref[i].score),
            `seed ${seed} ${how}: rank ${i} holds ${r}, reference ${ref[i].row}`,
          ).toBeLessThan(1e-4);
        });
      }
    }
    await index.release();
    await kernel.close();
  });
});
