/**
 * A collection whose ids are overwritten compacts itself once tombstones pass
 * `compactTombstonePercent` of its sealed rows: rows held stay bounded, results stay exact.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hvs } from '../../src/hvs/hvs.js';
import type { HvsCollection } from '../../src/hvs/hvs-collection.js';
import { freshSeed, randomRows, rng } from '../fixtures/random.js';
import { expectMatchesReference } from '../fixtures/reference-check.js';

let dataDir: string;
let hvs: Hvs;
/** The same, with background compaction off. */
let hvsManual: Hvs;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hvs-auto-compact-'));
  hvs = await Hvs.open({ dataDir, device: 'cpu', sealThreshold: 500 });
  hvsManual = await Hvs.open({ dataDir: join(dataDir, 'manual'), device: 'cpu', sealThreshold: 500, compactTombstonePercent: 0 });
});
afterAll(async () => {
  await hvs.close();
  await hvsManual.close();
  await rm(dataDir, { recursive: true, force: true });
});

const IDS = 2000;
const ROUNDS = 6;
const DIM = 16;

/** Writes IDS ids, then overwrites all of them ROUNDS - 1 times; returns the live vectors. */
async function overwrite(store: Hvs, name: string): Promise<{ c: HvsCollection; live: Map<string, Float32Array>; seed: number }> {
  const seed = freshSeed();
  const rand = rng(seed);
  const c = store.createCollection(name, { dim: DIM, metric: 'l2' });
  const live = new Map<string, Float32Array>();
  for (let round = 0; round < ROUNDS; round++) {
    for (let off = 0; off < IDS; off += 250) {
      const ids = Array.from({ length: 250 }, (_, i) => `id-${off + i}`);
      const vecs = randomRows(rand, ids.length, DIM);
      await c.upsert(ids, vecs);
      ids.forEach((id, i) => live.set(id, vecs[i]));
    }
  }
  await c.idle();
  return { c, live, seed };
}

describe('background compaction of tombstones', () => {
  it('keeps the rows an overwritten collection holds bounded, and its results exact', async () => {
    const { c, live, seed } = await overwrite(hvs, 'auto');
    const s = c.stats();
    expect(s.count).toBe(IDS);
    // 12,000 rows written for 2,000 ids: without compaction 10,000 would be tombstones.
    expect(s.tombstones).toBeLessThan(IDS);
    const rand = rng(seed + 1);
    const queries = randomRows(rand, 5, DIM);
    const rows = [...live].map(([id, vector]) => ({ id, vector }));
    const hits = await c.search(queries, 10);
    hits.forEach((h, q) => expectMatchesReference('l2', queries[q], rows, 10, h, `seed ${seed}, query ${q}`));
    for (const [id, v] of [...live].slice(0, 50)) expect(c.get(id)?.vector).toEqual(v);
  });

  it('is off with compactTombstonePercent 0 (tombstones stay until compact())', async () => {
    const { c } = await overwrite(hvsManual, 'manual');
    expect(c.stats().tombstones).toBeGreaterThanOrEqual(IDS * (ROUNDS - 1) - 500);
    await c.compact();
    expect(c.stats().tombstones).toBeLessThan(500);
  });

  it('refuses a percent outside [0, 100]', async () => {
    const bad = await Hvs.open({ dataDir: join(dataDir, 'bad'), device: 'cpu', compactTombstonePercent: 101 });
    try {
      expect(() => bad.createCollection('bad', { dim: 4, metric: 'l2' })).toThrow(
        /compactTombstonePercent must be an integer in \[0, 100\]/,
      );
    } finally {
      await bad.close();
    }
  });
});
