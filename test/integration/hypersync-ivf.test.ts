import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import type { IvfProgress } from '../../src/hvs/ivf/ivf-index.js';
import type { HyperSync } from '../../src/integration/hyper-sync.js';
import type { PlanStep } from '../../src/integration/query-planner.js';
import { clusteredSource, recallAt } from '../fixtures/clustered.js';
import { openHyperSync, openHyperSyncOn } from '../fixtures/hypersync.js';
import { tempDir } from '../fixtures/temp-dirs.js';
import { hyperSyncBackends } from '../fixtures/nvm-backends.js';
import { freshSeed, rng } from '../fixtures/random.js';
import { expectMatchesReference, type ModelRow } from '../fixtures/reference-check.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL IVF tests: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});
const open: HyperSync[] = [];
afterEach(async () => {
  for (const hs of open.splice(0)) await hs.close();
});

const DIM = 32;
const N = 6000;
const K = 10;

const hvsStep = (steps: readonly PlanStep[]): Extract<PlanStep, { step: 'hvs-search' }> => {
  const s = steps.find((x) => x.step === 'hvs-search');
  if (s?.step !== 'hvs-search') throw new Error('no hvs-search step in the plan');
  return s;
};

describe.each(hyperSyncBackends(pgProblem, cleanups))('the IVF index through HyperSync ($name)', (backend) => {
  it.skipIf(backend.skip)(
    'trains on request (with progress and a snapshot), plans and answers queries by IVF, exact or a chosen nprobe, and stays right after writes and a compaction',
    async () => {
      const seed = freshSeed();
      const ctx = `seed ${seed}`;
      const draw = clusteredSource(rng(seed), DIM, 24, 0.4);
      const opts = { pollIntervalMs: 200, ivfMinRows: 0, sealThreshold: 1024 };
      const hs = await openHyperSyncOn(backend, opts, cleanups, 'hs-ivf-');
      open.push(hs);
      await hs.createCollection('v', { dim: DIM, metric: 'cosine' });
      const model = new Map<string, Float32Array>();
      const vectors = draw(N);
      const items = vectors.map((vector, i) => ({ id: `d${i}`, vector, metadata: { even: i % 2 === 0 } }));
      await hs.store('v', items);
      items.forEach((it) => model.set(it.id, it.vector));
      await hs.ready('v');

      // Before training: flat, and the stats say why.
      expect(hvsStep(hs.explain('v').steps).index).toMatchObject({ index: 'flat' });
      expect((await hs.stats('v')).hvs.index).toMatchObject({ state: 'flat', minRows: 0 });

      const phases = new Set<IvfProgress['phase']>();
      const trained = await hs.trainIndex('v', { onProgress: (p) => phases.add(p.phase) });
      expect([...phases]).toEqual(expect.arrayContaining(['kmeans', 'assign', 'calibrate']));
      expect(trained.index.state).toBe('ivf');
      expect(trained.snapshotLsn, 'a snapshot is written after training').toBeGreaterThan(0);
      const ivf = trained.index.ivf;
      if (!ivf) throw new Error('no IVF summary');
      expect(ivf.rows).toBe(N);
      expect(ivf.nprobe).toBeLessThan(ivf.nlist);

      const queries = draw(100);
      const plan = hs.explain('v', { k: K });
      expect(hvsStep(plan.steps).index).toMatchObject({ index: 'ivf', nprobe: ivf.nprobe, nlist: ivf.nlist });

      // exact: true is the brute-force answer, checked against a float64 reference.
      const rows = (): ModelRow[] => [...model].map(([id, vector]) => ({ id, vector }));
      const exact = await hs.queryWithPlan('v', queries, K, { exact: true });
      expect(hvsStep(exact.plan.steps).index).toEqual({ index: 'flat', reason: 'exact: true' });
      const live = rows();
      queries.slice(0, 20).forEach((q, i) => expectMatchesReference('cosine', q, live, K, exact.results[i], `${ctx} q${i}`));

      // The defaults reach recall@10 ≥ 0.95; a small nprobe runs as asked; targetRecall 1 is exact.
      const approx = await hs.queryWithPlan('v', queries, K);
      expect(hvsStep(approx.plan.steps).index).toMatchObject({ index: 'ivf', nprobe: ivf.nprobe });
      expect(recallAt(exact.results, approx.results), ctx).toBeGreaterThanOrEqual(0.95);
      const narrow = await hs.queryWithPlan('v', queries, K, { nprobe: 1 });
      expect(hvsStep(narrow.plan.steps).index).toMatchObject({ index: 'ivf', nprobe: 1 });
      expect(narrow.results.every((list) => list.length === K)).toBe(true);
      const full = await hs.queryWithPlan('v', queries, K, { targetRecall: 1 });
      expect(hvsStep(full.plan.steps).index.index).toBe('flat');
      expect(full.results.map((l) => l.map((h) => h.id))).toEqual(exact.results.map((l) => l.map((h) => h.id)));

      // Bad options: clear errors, wherever the query goes.
      for (const bad of [{ nprobe: 0 }, { nprobe: 1.5 }, { targetRecall: 0 }, { targetRecall: 2 }, { exact: true, nprobe: 4 }]) {
        await expect(hs.query('v', queries.slice(0, 1), K, bad), JSON.stringify(bad)).rejects.toThrow(InvalidArgumentError);
        expect(() => hs.explain('v', bad), JSON.stringify(bad)).toThrow(InvalidArgumentError);
      }
      await expect(hs.query('v', queries.slice(0, 1), K, { exact: 'yes' as unknown as boolean })).rejects.toThrow(/exact/);
      await expect(hs.trainIndex('v', { nlist: 0 })).rejects.toThrow(InvalidArgumentError);

      // Writes after training: new rows are found (searched beside the lists), deleted rows never come back.
      const fresh = draw(50).map((vector, i) => ({ id: `n${i}`, vector, metadata: { even: true } }));
      await hs.store('v', fresh);
      fresh.forEach((it) => model.set(it.id, it.vector));
      const gone = Array.from({ length: 300 }, (_, i) => `d${i * 7}`);
      await hs.delete('v', gone);
      gone.forEach((id) => model.delete(id));
      const own = await hs.query(
        'v',
        fresh.map((f) => f.vector),
        1,
      );
      expect(own.map((l) => l[0]?.id)).toEqual(fresh.map((f) => f.id));
      const after = await hs.query('v', queries, K);
      const removed = new Set(gone);
      expect(after.flat().some((h) => removed.has(h.id))).toBe(false);
      const afterExact = await hs.query('v', queries, K, { exact: true });
      expect(recallAt(afterExact, after), ctx).toBeGreaterThanOrEqual(0.95);
      // A filter applies to the lists as a mask.
      const filtered = await hs.query('v', queries, K, { filter: { even: true } });
      for (const list of filtered) {
        expect(list).toHaveLength(K);
        for (const h of list) expect(h.id.startsWith('n') || Number(h.id.slice(1)) % 2 === 0, h.id).toBe(true);
      }
      const filteredExact = await hs.query('v', queries, K, { filter: { even: true }, exact: true });
      expect(recallAt(filteredExact, filtered), ctx).toBeGreaterThanOrEqual(0.9);

      // A compaction folds sealed rows and tombstones into the lists; the growing segment (the 50
      // new rows, below the seal threshold) stays the flat delta beside them.
      await hs.compact('v');
      const folded = (await hs.stats('v')).hvs.index;
      expect(folded).toMatchObject({ state: 'ivf', deltaRows: 50, ivf: { deleted: 0 } });
      expect((folded?.ivf?.rows ?? 0) + (folded?.deltaRows ?? 0)).toBe(model.size);
      const foldedHits = await hs.query('v', queries, K);
      expect(recallAt(afterExact, foldedHits), ctx).toBeGreaterThanOrEqual(0.95);
    },
    240_000,
  );

  it.skipIf(backend.skip)(
    'a restart loads the trained index from the snapshot instead of retraining',
    async () => {
      const seed = freshSeed();
      const draw = clusteredSource(rng(seed), DIM, 16, 0.4);
      const url = await backend.databaseUrl();
      const dataDir = await tempDir('hs-ivf-restart-', cleanups);
      const opts = { dataDir, pollIntervalMs: 200, ivfMinRows: 0, sealThreshold: 1024, ...(url ? { databaseUrl: url } : {}) };
      const first = await openHyperSync(opts, cleanups);
      await first.createCollection('r', { dim: DIM, metric: 'l2' });
      await first.store(
        'r',
        draw(4000).map((vector, i) => ({ id: `r${i}`, vector })),
      );
      await first.ready('r');
      const trained = await first.trainIndex('r');
      const queries = draw(20);
      const before = await first.queryWithPlan('r', queries, K);
      await first.close();

      const second = await openHyperSync(opts, cleanups);
      open.push(second);
      await second.ready('r');
      const index = (await second.stats('r')).hvs.index;
      // The same lists and calibration, read back: trainMs is the first run's, not a new one.
      expect(index?.state).toBe('ivf');
      expect(index?.ivf).toMatchObject({ nlist: trained.index.ivf?.nlist, trainMs: trained.index.ivf?.trainMs });
      const again = await second.queryWithPlan('r', queries, K);
      expect(hvsStep(again.plan.steps).index).toEqual(hvsStep(before.plan.steps).index);
      expect(again.results.map((l) => l.map((h) => h.id))).toEqual(before.results.map((l) => l.map((h) => h.id)));
    },
    120_000,
  );
});
