import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeLogGapError, InvalidArgumentError } from '../../src/core/errors.js';
import { Hvs } from '../../src/hvs/hvs.js';
import { HyperSync } from '../../src/integration/hyper-sync.js';
import { buildSnapshot } from '../../src/integration/rebuild.js';
import { InlineJobQueue } from '../../src/jobs/inline-job-queue.js';
import { LocalFleet } from '../../src/jobs/node-ops.js';
import type { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';
import { DEFAULT_CONCURRENCY, PROCESSORS } from '../../workers/index.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { nvmBackends } from '../fixtures/nvm-backends.js';
import { freshSeed, randomRows, rng } from '../fixtures/random.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { tempDir } from '../fixtures/temp-dirs.js';

const pgProblem = await postgresProblem();
if (pgProblem && servicesRequired) throw new Error(pgProblem);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const vec = (x: number, dim = 4): Float32Array => Float32Array.from({ length: dim }, (_, i) => x + i);

describe.each(nvmBackends(pgProblem, cleanups, 'prune-'))('NVM change-log pruning on $name', (backend) => {
  let nvm: SqlNvmStore;
  beforeAll(async () => {
    if (backend.skip) return;
    nvm = await backend.open();
    cleanups.push(() => nvm.close());
    await nvm.createCollection('p', { dim: 4, metric: 'l2' });
  });

  it.skipIf(backend.skip)('removes rows up to a horizon that never moves back, and refuses to read across it', async () => {
    const lsns: number[] = [];
    for (let i = 0; i < 3; i++) lsns.push((await nvm.writeBlocks('p', [{ id: `b${i}`, vectors: [vec(i)] }])).lsn);
    expect(await nvm.changesPrunedThrough()).toBe(0);
    expect(await nvm.changesAfter(0)).toHaveLength(3);

    expect(await nvm.pruneChanges(lsns[1])).toEqual({ deleted: 2, prunedThrough: lsns[1] });
    expect(await nvm.changesPrunedThrough()).toBe(lsns[1]);
    expect((await nvm.changesAfter(lsns[1])).map((c) => c.blockId)).toEqual(['b2']);
    const gap = await nvm.changesAfter(lsns[0]).catch((e: unknown) => e);
    expect(gap).toBeInstanceOf(ChangeLogGapError);
    expect(gap).toMatchObject({ from: lsns[0], prunedThrough: lsns[1], httpStatus: 503 });
    await expect(nvm.changesAfter(0, 10, 'p')).rejects.toBeInstanceOf(ChangeLogGapError);

    // Never back; never past the newest row, and the newest lsn stays put with the log empty.
    expect(await nvm.pruneChanges(lsns[0])).toEqual({ deleted: 0, prunedThrough: lsns[1] });
    expect(await nvm.pruneChanges(Number.MAX_SAFE_INTEGER)).toEqual({ deleted: 1, prunedThrough: lsns[2] });
    expect(await nvm.lastLsn()).toBe(lsns[2]);
    expect(await nvm.changesAfter(lsns[2])).toEqual([]);
    const next = await nvm.writeBlocks('p', [{ id: 'b3', vectors: [vec(3)] }]);
    expect(next.lsn).toBeGreaterThan(lsns[2]);
    expect((await nvm.changesAfter(lsns[2])).map((c) => c.blockId)).toEqual(['b3']);
    // The blocks themselves are untouched: streaming the collection still finds all four.
    let rows = 0;
    for await (const page of nvm.streamVectors('p')) rows += page.ids.length;
    expect(rows).toBe(4);

    await expect(nvm.pruneChanges(-1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nvm.pruneChanges(1.5)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe.skipIf(!servicesRequired && pgProblem !== null)('HyperSync after the change log is pruned (PostgreSQL)', () => {
  const dim = 16;
  const n = 3000;
  let url: string;
  let root: string;
  let vectors: Float32Array[];
  const open = (name: string, extra: Partial<Parameters<typeof HyperSync.open>[0]> = {}): Promise<HyperSync> =>
    HyperSync.open({ dataDir: join(root, name), databaseUrl: url, device: 'cpu', ...extra });

  beforeAll(async () => {
    if (pgProblem && !servicesRequired) return;
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    url = db.url;
    root = await tempDir('hs-prune-', cleanups);
    vectors = randomRows(rng(freshSeed()), n + 200, dim);
  });

  /** Checks that `hs` holds exactly what the NVM holds, and answers queries with it. */
  async function expectInStep(hs: HyperSync, collection: string, present: number[], absent: number[]): Promise<void> {
    expect((await hs.verifyConsistency(collection)).consistent).toBe(true);
    for (const i of present.slice(0, 20)) {
      const [hits] = await hs.query(collection, [vectors[i]], 1);
      expect(hits[0]?.id).toBe(`v${i}`);
    }
    for (const i of absent) expect(await hs.get(collection, `v${i}`)).toBeUndefined();
  }

  it('a process restarting from a snapshot older than the horizon rebuilds from the tables', async () => {
    const a = await open('a');
    await a.createCollection('c', { dim, metric: 'l2' });
    await a.store(
      'c',
      vectors.slice(0, n).map((v, i) => ({ id: `v${i}`, vector: v })),
    );
    await a.ready();
    await a.close(); // snapshot at the current lsn

    // Another process writes, deletes and prunes the log while `a` is down.
    const w = await open('w');
    await w.store(
      'c',
      vectors.slice(n, n + 100).map((v, i) => ({ id: `v${n + i}`, vector: v })),
    );
    await w.delete('c', ['v0', 'v1', 'v2']);
    const pruned = await w.nvm.pruneChanges(await w.nvm.lastLsn());
    expect(pruned.deleted).toBeGreaterThan(0);
    await w.close();

    const again = await open('a');
    try {
      await again.ready();
      expect((await again.stats('c')).hvs.count).toBe(n + 100 - 3);
      await expectInStep(again, 'c', [n + 5, n + 50, 10, 20], [0, 1, 2]);
    } finally {
      await again.close();
    }
  }, 120_000);

  it('a running process left behind by a prune rebuilds that collection and catches up', async () => {
    const a = await open('live-a');
    await a.createCollection('live', { dim, metric: 'l2' });
    await a.store(
      'live',
      vectors.slice(0, 1000).map((v, i) => ({ id: `v${i}`, vector: v })),
    );
    // `b` tails only when asked (no LISTEN, no timer), so the prune lands before it reads.
    const b = await open('live-b', { listen: false, pollIntervalMs: 0 });
    try {
      await b.ready();
      expect((await b.stats('live')).hvs.count).toBe(1000);
      await a.store(
        'live',
        vectors.slice(1000, 1100).map((v, i) => ({ id: `v${1000 + i}`, vector: v })),
      );
      await a.delete('live', ['v3', 'v4']);
      await a.nvm.pruneChanges(await a.nvm.lastLsn());
      // Queries keep being answered from b's index until it has caught up.
      const [before] = await b.query('live', [vectors[5]], 1);
      expect(before[0]?.id).toBe('v5');

      await b.sync({ direction: 'nvm-to-hvs' });
      expect((await b.stats('live')).hvs.count).toBe(1098);
      await expectInStep(b, 'live', [1000, 1050, 1099, 7], [3, 4]);
      // And it goes on tailing normally after the rebuild.
      await a.store('live', [{ id: 'v1100', vector: vectors[1100] }]);
      await b.sync({ direction: 'nvm-to-hvs' });
      expect((await b.get('live', 'v1100'))?.id).toBe('v1100');
    } finally {
      await b.close();
      await a.close();
    }
  }, 120_000);

  it("installing a worker's snapshot older than the horizon streams from the tables instead", async () => {
    const hs = await open('install');
    const workerHvs = await Hvs.open({ dataDir: join(root, 'install-worker'), device: 'cpu' });
    try {
      await hs.createCollection('w', { dim, metric: 'l2' });
      await hs.store(
        'w',
        vectors.slice(0, 800).map((v, i) => ({ id: `v${i}`, vector: v })),
      );
      const built = await buildSnapshot(
        { hvs: workerHvs, nvm: hs.nvm, log: pino({ level: 'silent' }) },
        'w',
        join(root, 'install-worker', 'snap'),
      );
      expect(built.rows).toBe(800);
      // Written and pruned after the worker's snapshot: replaying the log cannot bring it up to date.
      await hs.store(
        'w',
        vectors.slice(800, 850).map((v, i) => ({ id: `v${800 + i}`, vector: v })),
      );
      await hs.delete('w', ['v10']);
      await hs.nvm.pruneChanges(await hs.nvm.lastLsn());
      expect(await hs.nvm.changesPrunedThrough()).toBeGreaterThan(built.lsn);

      const result = await hs.rebuild('w', { snapshotDir: built.dir });
      expect(result.from).toBe('nvm');
      expect(result.rows).toBe(849);
      await expectInStep(hs, 'w', [800, 849, 11], [10]);
    } finally {
      await workerHvs.close();
      await hs.close();
    }
  }, 120_000);

  it('a compact job over every collection snapshots them and prunes the log up to the oldest snapshot', async () => {
    // No snapshot at close: the restart below must start from the compact job's snapshot.
    const hs = await open('compact', { snapshotOnClose: false });
    await hs.createCollection('k', { dim, metric: 'l2' });
    await hs.store(
      'k',
      vectors.slice(0, 500).map((v, i) => ({ id: `v${i}`, vector: v })),
    );
    await hs.delete('k', ['v9']);
    await hs.ready();
    const queue = new InlineJobQueue({
      processors: PROCESSORS,
      concurrency: DEFAULT_CONCURRENCY,
      context: {
        nvm: hs.nvm,
        encoders: hs.encoderSet,
        fleet: new LocalFleet(hs),
        rebuildDir: join(root, 'compact', 'rebuilds'),
        log: pino({ level: 'silent' }),
      },
    });
    try {
      const one = await queue.wait((await queue.add('compact', { collection: 'k' })).id);
      expect(one.state).toBe('completed');
      expect(one.result).toMatchObject({ changeLog: { pruned: false } });

      await hs.sync();
      const newest = await hs.nvm.lastLsn();
      const all = await queue.wait((await queue.add('compact', {})).id);
      expect(all.state, all.error).toBe('completed');
      const result = all.result as {
        nodes: { result: { changeLogPosition: number; collections: Record<string, { snapshotLsn: number }> } }[];
        changeLog: { prunedThrough: number; deleted: number };
      };
      expect(result.nodes[0].result.collections.k.snapshotLsn).toBe(newest);
      expect(result.nodes[0].result.changeLogPosition).toBe(newest);
      expect(result.changeLog.prunedThrough).toBe(newest);
      expect(result.changeLog.deleted).toBeGreaterThan(0);
      expect(await hs.nvm.changesPrunedThrough()).toBe(newest);
      await hs.store('k', [{ id: 'after', vector: vectors[600] }]);
      expect((await hs.get('k', 'after'))?.id).toBe('after');
    } finally {
      await queue.close();
      await hs.close();
    }
    // The restart loads the compact job's snapshot and needs only the log after the horizon.
    const again = await open('compact');
    try {
      await again.ready();
      await expectInStep(again, 'k', [0, 100, 499], [9]);
      expect((await again.get('k', 'after'))?.id).toBe('after');
    } finally {
      await again.close();
    }
  }, 120_000);
});
