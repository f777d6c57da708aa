import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChangeLogGapError, ClosedError } from '../../src/core/errors.js';
import { applyChanges, SyncManager } from '../../src/integration/sync-manager.js';
import type { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';
import { nvmBackends } from '../fixtures/nvm-backends.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { openSyncHarness, type SyncHarness } from '../fixtures/sync-harness.js';
import { tempDir } from '../fixtures/temp-dirs.js';
import { bits } from '../fixtures/vectors.js';
import { waitUntil } from '../fixtures/wait.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL sync-manager tests: ${pgProblem}`);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const v = (...xs: number[]): Float32Array => Float32Array.from(xs);

describe.each(nvmBackends(pgProblem, cleanups, 'sync-nvm-'))('SyncManager on $name', (backend) => {
  let nvm: SqlNvmStore;
  let h: SyncHarness;
  let sm: SyncManager | undefined;
  // One store per backend (opening PGlite is slow); each test has collections of its own.
  let run = 0;
  const c = (name: string): string => `${name}_${run}`;
  beforeAll(async () => {
    if (backend.skip) return;
    nvm = await backend.open();
    cleanups.push(() => nvm.close());
  }, 180_000);
  const manager = (opts: ConstructorParameters<typeof SyncManager>[1] = {}, listen = false): SyncManager =>
    (sm = new SyncManager(h.ctx, { pollIntervalMs: 0, walSyncIntervalMs: 0, ...opts }, listen));

  beforeEach(async () => {
    if (backend.skip) return;
    run++;
    h = await openSyncHarness(nvm, await tempDir('sync-', cleanups));
  });
  afterEach(async () => {
    if (backend.skip) return;
    await sm?.stop();
    sm = undefined;
    await h.close();
  });

  it.skipIf(backend.skip)('NVM → HVS: catchUp applies upserts and deletes another writer made, with their versions', async () => {
    const s = await h.addCollection(c('a'), { dim: 2, metric: 'l2' });
    await h.nvm.writeBlocks(c('a'), [
      { id: 'x', vectors: [v(1, 2)] },
      { id: 'y', vectors: [v(3, 4)] },
    ]);
    await h.nvm.writeBlocks(c('a'), [{ id: 'x', vectors: [v(5, 6)] }]);
    const { lsn } = await h.nvm.deleteBlocks(c('a'), ['y']);
    h.cache.setBlock(c('a'), 'x', { version: 1, content: 'old', metadata: {} });

    await manager().catchUp();
    const hv = s.hvs!;
    expect(bits(hv.get('x')!.vector)).toEqual(bits(v(5, 6)));
    expect(hv.versionOf('x')).toBe((await h.nvm.versions(c('a'), ['x'])).get('x'));
    expect(hv.has('y')).toBe(false);
    expect(s.lsn).toBe(lsn);
    // What the cache held for a changed block is gone.
    expect(h.cache.getBlock(c('a'), 'x')).toBeUndefined();
    expect(h.errors).toEqual([]);
  });

  it.skipIf(backend.skip)('is idempotent: a second catch-up or old change rows change nothing', async () => {
    const s = await h.addCollection(c('a'), { dim: 2, metric: 'l2' });
    const from = s.lsn;
    await h.nvm.writeBlocks(c('a'), [{ id: 'x', vectors: [v(1, 0)] }]);
    const m = manager();
    await m.catchUp();
    const lsn = s.lsn;
    await m.catchUp();
    expect(s.lsn).toBe(lsn);
    expect(s.hvs!.count).toBe(1);
    // Re-applying rows at or before the position does nothing, even where the HVS differs.
    s.deleteBlocks(['x']);
    await applyChanges(h.ctx, s, await h.nvm.changesAfter(from));
    expect(s.hvs!.has('x')).toBe(false);
    expect(s.lsn).toBe(lsn);
  });

  it.skipIf(backend.skip)('tracks positions: every ready collection advances, in batches, past rows of others', async () => {
    const a = await h.addCollection(c('a'), { dim: 2, metric: 'l2' });
    const b = await h.addCollection(c('b'), { dim: 2, metric: 'l2' });
    let last = 0;
    for (let i = 0; i < 7; i++) last = (await h.nvm.writeBlocks(c('a'), [{ id: `x${i}`, vectors: [v(i, 1)] }])).lsn;
    await manager({ batch: 2 }).catchUp();
    expect(a.hvs!.count).toBe(7);
    expect(a.lsn).toBe(last);
    // b had no rows in the range: it has applied it all the same.
    expect(b.lsn).toBe(last);
    expect(b.hvs!.count).toBe(0);
  });

  it.skipIf(backend.skip)('asks to discover a collection it does not hold when the log names one', async () => {
    await h.addCollection(c('a'), { dim: 2, metric: 'l2' });
    await h.nvm.createCollection(c('stranger'), { dim: 2, metric: 'l2' });
    await h.nvm.writeBlocks(c('stranger'), [{ id: 's', vectors: [v(1, 1)] }]);
    await manager().catchUp();
    expect(h.discovered).toEqual([c('stranger')]);
  });

  it.skipIf(backend.skip)(
    'HVS → NVM: persistWal writes WAL-only blocks with their versions, once, and empties the log',
    async () => {
      const s = await h.addCollection(c('a'), { dim: 2, metric: 'l2' });
      await h.localUpsert(s, [
        { id: 'w1', version: 1, vectors: [v(1, 1)] },
        { id: 'w2', version: 4, vectors: [v(2, 2)] },
      ]);
      expect(h.wal.pendingCount).toBe(1);
      const m = manager();
      // A call made while a run is in flight joins the next run (the one in flight may have taken
      // its records before the caller's last append): here nothing is left for it.
      const [n1, n2] = await Promise.all([m.persistWal(), m.persistWal()]);
      expect([n1, n2]).toEqual([2, 0]);
      const stored = await h.nvm.getBlocks(c('a'), ['w1', 'w2']);
      expect(stored.get('w1')?.version).toBe(1);
      expect(stored.get('w2')?.version).toBe(4);
      expect(bits(stored.get('w2')!.vectors[0])).toEqual(bits(v(2, 2)));
      expect(h.wal.pendingCount).toBe(0);
      expect(s.walEntries.size).toBe(0);
      expect(await m.persistWal()).toBe(0);
      // Its own change rows, applied back, leave the HVS as it is.
      await m.catchUp();
      expect(s.hvs!.versionOf('w2')).toBe(4);
    },
  );

  it.skipIf(backend.skip)('leaves a block with a WAL-only write alone when the change log names it', async () => {
    const s = await h.addCollection(c('a'), { dim: 2, metric: 'l2' });
    await h.localUpsert(s, [{ id: 'x', version: 1, vectors: [v(9, 9)] }]);
    await h.nvm.writeBlocks(c('a'), [{ id: 'x', vectors: [v(1, 1)] }]);
    await manager().catchUp();
    expect(bits(s.hvs!.get('x')!.vector)).toEqual(bits(v(9, 9)));
    expect(s.walEntries.has('x')).toBe(true);
  });

  it.skipIf(backend.skip)('persisting a write of a collection dropped meanwhile completes its record', async () => {
    const s = await h.addCollection(c('gone'), { dim: 2, metric: 'l2' });
    await h.localUpsert(s, [{ id: 'x', version: 1, vectors: [v(1, 1)] }]);
    await h.nvm.dropCollection(c('gone'));
    await manager().persistWal();
    expect(h.wal.pendingCount).toBe(0);
  });

  it.skipIf(backend.skip)('a collection behind a pruned change log is handed to rebuild, then tailed again', async () => {
    const a = await h.addCollection(c('a'), { dim: 2, metric: 'l2' });
    await h.nvm.writeBlocks(c('a'), [{ id: 'x', vectors: [v(1, 1)] }]);
    const { lsn } = await h.nvm.writeBlocks(c('a'), [{ id: 'y', vectors: [v(2, 2)] }]);
    await h.nvm.pruneChanges(lsn - 1);
    await expect(h.nvm.changesAfter(a.lsn)).rejects.toBeInstanceOf(ChangeLogGapError);
    await manager().catchUp();
    expect(h.rebuilt).toEqual([c('a')]);
    expect(a.lsn).toBe(lsn);
  });

  it.skipIf(backend.skip)('wakes by LISTEN/NOTIFY once started, and not after stop', async () => {
    const s = await h.addCollection(c('a'), { dim: 2, metric: 'l2' });
    const m = manager({}, true);
    await m.start();
    await h.nvm.writeBlocks(c('a'), [{ id: 'x', vectors: [v(1, 1)] }]);
    expect(await waitUntil(() => s.hvs!.has('x'))).toBe(true);
    await m.stop();
    await m.stop();
    await h.nvm.writeBlocks(c('a'), [{ id: 'y', vectors: [v(1, 1)] }]);
    m.wake();
    await new Promise((r) => setTimeout(r, 300));
    expect(s.hvs!.has('y')).toBe(false);
  });

  // Last: it closes the shared store.
  it.skipIf(backend.skip)('a failing background round reaches onError; catchUp rejects', async () => {
    await h.addCollection(c('a'), { dim: 2, metric: 'l2' });
    const m = manager();
    await h.nvm.close();
    m.wake();
    expect(await waitUntil(() => h.errors.length > 0)).toBe(true);
    expect(h.errors[0]).toBeInstanceOf(ClosedError);
    await expect(m.catchUp()).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('SyncManager options', () => {
  it('refuses negative, fractional and zero-batch settings', () => {
    const ctx = {} as ConstructorParameters<typeof SyncManager>[0];
    expect(() => new SyncManager(ctx, { pollIntervalMs: -1 })).toThrow(RangeError);
    expect(() => new SyncManager(ctx, { walSyncIntervalMs: 1.5 })).toThrow(RangeError);
    expect(() => new SyncManager(ctx, { batch: 0 })).toThrow(RangeError);
    expect(new SyncManager(ctx).opts).toEqual({
      pollIntervalMs: 1000,
      batch: 10_000,
      walSyncIntervalMs: 1000,
      walCheckpointBytes: 64 * 2 ** 20,
    });
  });
});
