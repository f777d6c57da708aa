import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CollectionState } from '../../src/integration/collection-state.js';
import { repairInconsistencies, verifyConsistency } from '../../src/integration/consistency.js';
import { SyncManager } from '../../src/integration/sync-manager.js';
import type { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';
import { nvmBackends } from '../fixtures/nvm-backends.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { openSyncHarness, type SyncHarness } from '../fixtures/sync-harness.js';
import { tempDir } from '../fixtures/temp-dirs.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL consistency tests: ${pgProblem}`);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const v = (...xs: number[]): Float32Array => Float32Array.from(xs);

describe.each(nvmBackends(pgProblem, cleanups, 'consistency-nvm-'))('consistency checker on $name', (backend) => {
  let nvm: SqlNvmStore;
  let h: SyncHarness;
  let run = 0;
  beforeAll(async () => {
    if (backend.skip) return;
    nvm = await backend.open();
    cleanups.push(() => nvm.close());
  }, 180_000);
  beforeEach(async () => {
    if (backend.skip) return;
    run++;
    h = await openSyncHarness(nvm, await tempDir('consistency-', cleanups));
  });
  afterEach(async () => {
    if (backend.skip) return;
    await h.close();
  });

  /** A collection whose tiers agree: `n` blocks written to the NVM and caught up. */
  async function inStep(n: number, metric: 'l2' | 'cosine' = 'l2'): Promise<CollectionState> {
    const s = await h.addCollection(`c_${run}`, { dim: 2, metric });
    await h.nvm.writeBlocks(
      s.name,
      Array.from({ length: n }, (_, i) => ({ id: `b${i}`, vectors: [v(i + 1, 1)], metadata: {} })),
    );
    await new SyncManager(h.ctx, { pollIntervalMs: 0, walSyncIntervalMs: 0 }, false).catchUp();
    return s;
  }

  it.skipIf(backend.skip)('reports tiers that agree as consistent, with equal counts and digests', async () => {
    const s = await inStep(5);
    const r = await verifyConsistency(h.nvm, s);
    expect(r).toMatchObject({ collection: s.name, consistent: true, total: 0, inconsistencies: [] });
    expect(r.hvs).toEqual(r.nvm);
    expect(r.hvs.count).toBe(5);
  });

  it.skipIf(backend.skip)('finds blocks missing in either tier, other versions and other vector bytes', async () => {
    const s = await inStep(5);
    const hv = s.hvs!;
    s.deleteBlocks(['b0']); // missing in the HVS
    await s.upsertBlocks([{ id: 'extra', version: 1, vectors: [v(7, 7)], metadata: {} }]); // missing in the NVM
    await s.upsertBlocks([{ id: 'b1', version: hv.versionOf('b1')! + 5, vectors: [v(2, 1)], metadata: {} }]); // other version
    await s.upsertBlocks([{ id: 'b2', version: hv.versionOf('b2')!, vectors: [v(9, 9)], metadata: {} }]); // other bytes
    // A write the NVM has and the HVS has not applied yet: stale in the HVS.
    await h.nvm.writeBlocks(s.name, [{ id: 'b3', vectors: [v(4, 4)], metadata: {} }]);
    const r = await verifyConsistency(h.nvm, s);
    expect(r.consistent).toBe(false);
    expect(r.total).toBe(5);
    const kinds = Object.fromEntries(r.inconsistencies.map((x) => [x.id, x.kind]));
    expect(kinds).toEqual({
      b0: 'missing_in_hvs',
      extra: 'missing_in_nvm',
      b1: 'version_mismatch',
      b2: 'vector_mismatch',
      b3: 'version_mismatch',
    });
    expect(r.inconsistencies.find((x) => x.id === 'b1')).toMatchObject({ hvsVersion: hv.versionOf('b1') });
    expect(r.hvs.count).toBe(5);
    expect(r.nvm.count).toBe(5);
  });

  it.skipIf(backend.skip)('lists at most `limit` differences and counts them all', async () => {
    const s = await inStep(6);
    s.deleteBlocks(['b0', 'b1', 'b2', 'b3', 'b4']);
    const r = await verifyConsistency(h.nvm, s, { limit: 2 });
    expect(r.total).toBe(5);
    expect(r.inconsistencies).toHaveLength(2);
    expect(r.consistent).toBe(false);
  });

  it.skipIf(backend.skip)('compares vectors the NVM holds unnormalised as the HVS indexes them (cosine)', async () => {
    const s = await inStep(3, 'cosine');
    expect((await verifyConsistency(h.nvm, s)).consistent).toBe(true);
  });

  it.skipIf(backend.skip)('repair makes the HVS match the NVM for what the report lists', async () => {
    const s = await inStep(4);
    s.deleteBlocks(['b0']);
    await s.upsertBlocks([{ id: 'extra', version: 1, vectors: [v(7, 7)], metadata: {} }]);
    await s.upsertBlocks([{ id: 'b1', version: 1, vectors: [v(9, 9)], metadata: {} }]);
    h.cache.setBlock(s.name, 'b1', { version: 99, content: 'stale', metadata: {} });
    const report = await verifyConsistency(h.nvm, s);
    expect(await repairInconsistencies(h.nvm, h.cache, s, report)).toEqual({ upserted: 2, deleted: 1 });
    expect((await verifyConsistency(h.nvm, s)).consistent).toBe(true);
    expect(s.hvs!.has('extra')).toBe(false);
    expect(h.cache.getBlock(s.name, 'b1')).toBeUndefined();
    // Nothing listed, nothing done.
    expect(await repairInconsistencies(h.nvm, h.cache, s, await verifyConsistency(h.nvm, s))).toEqual({
      upserted: 0,
      deleted: 0,
    });
  });
});
