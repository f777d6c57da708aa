import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HyperSync } from '../../src/integration/hyper-sync.js';
import { freshSeed, randomVectors, rng } from '../fixtures/random.js';

describe('HyperSync.rebuild: off to the side, switched atomically', () => {
  let dir: string;
  let hs: HyperSync;
  const n = 20_000;
  const dim = 32;
  let vectors: Float32Array[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hs-rebuild-'));
    hs = await HyperSync.open({ dataDir: dir, device: 'cpu', sealThreshold: 4096 });
    await hs.createCollection('r', { dim, metric: 'l2' });
    const flat = randomVectors(rng(freshSeed()), n, dim);
    vectors = Array.from({ length: n }, (_, i) => flat.subarray(i * dim, (i + 1) * dim));
    for (let i = 0; i < n; i += 5000) {
      await hs.store(
        'r',
        vectors.slice(i, i + 5000).map((v, j) => ({ id: `v${i + j}`, vector: v })),
      );
    }
  }, 120_000);

  afterAll(async () => {
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers every query, exactly, while rebuilds run and switch; writes during a rebuild are kept', async () => {
    let stop = false;
    const errors: string[] = [];
    let answered = 0;
    // Four query loops, so some query is always in flight at the moment of the switch.
    const loops = Array.from({ length: 4 }, async (_, w) => {
      for (let q = w; !stop; q += 4) {
        const i = (q * 7919) % n;
        try {
          const [hits] = await hs.query('r', [vectors[i]], 1);
          if (hits[0]?.id !== `v${i}`) errors.push(`query ${i}: got ${JSON.stringify(hits[0])}`);
          answered++;
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    });
    const phases: string[] = [];
    for (let round = 0; round < 3; round++) {
      const rebuilding = hs.rebuild('r', { onProgress: (p) => void phases.push(p.phase) });
      await hs.store('r', [{ id: `during${round}`, vector: vectors[round] }]);
      await hs.store('r', [{ id: `wal${round}`, vector: vectors[round + 10] }], { persist: false });
      const r = await rebuilding;
      expect(r.from).toBe('nvm');
    }
    stop = true;
    await Promise.all(loops);
    expect(errors.slice(0, 3)).toEqual([]);
    expect(answered).toBeGreaterThan(10);
    expect(phases).toEqual(expect.arrayContaining(['stream', 'catch-up', 'switch']));
    for (let round = 0; round < 3; round++) {
      expect((await hs.get('r', `during${round}`))?.id).toBe(`during${round}`);
      expect((await hs.get('r', `wal${round}`))?.id).toBe(`wal${round}`);
    }
    expect((await hs.stats('r')).hvs.count).toBe(n + 6);
    expect((await hs.verifyConsistency('r')).consistent).toBe(true);
  }, 180_000);
});
