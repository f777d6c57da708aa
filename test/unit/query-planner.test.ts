import { describe, expect, it } from 'vitest';
import { planQuery, type PlanInput, withCacheOutcome } from '../../src/integration/query-planner.js';

const base: PlanInput = {
  collection: 'c',
  status: 'ready',
  appliedLsn: 10,
  k: 5,
  include: [],
  minLsnWaitMs: 1000,
  extraChunkRows: 0,
  device: 'cpu',
  index: { index: 'flat', reason: 'fewer than 50000 sealed rows' },
};

describe('planQuery', () => {
  it('searches the HVS when it holds the collection and is up to date', () => {
    const p = planQuery({ ...base, include: ['content'] });
    expect(p.path).toBe('hvs');
    expect(p.steps.map((s) => s.step)).toEqual(['hvs-search', 'content']);
    expect(p.reason).toMatch(/up to date/);
  });

  it('falls back to pgvector while the collection loads or after a failed load', () => {
    expect(planQuery({ ...base, status: 'loading' })).toMatchObject({ path: 'nvm', steps: [{ step: 'nvm-search', k: 5 }] });
    expect(planQuery({ ...base, status: 'failed' }).reason).toMatch(/failed/);
  });

  it('waits for minLsn, then falls back to pgvector when the wait ran out', () => {
    const waiting = planQuery({ ...base, minLsn: 12 });
    expect(waiting.path).toBe('hvs');
    expect(waiting.steps[0]).toEqual({ step: 'wait-lsn', minLsn: 12, appliedLsn: 10, timeoutMs: 1000 });
    const late = planQuery({ ...base, minLsn: 12, lsnTimedOut: true });
    expect(late.path).toBe('nvm');
    expect(late.reason).toMatch(/minLsn 12/);
    expect(planQuery({ ...base, minLsn: 10 }).steps[0].step).toBe('hvs-search');
  });

  it('over-fetches from the HVS when blocks have several chunks', () => {
    // Rows ×4 to start with (past the k limit: it bounds blocks returned, not rows searched); the
    // router searches again with more rows for a query still short of k blocks.
    const p = planQuery({ ...base, extraChunkRows: 3, k: 300 });
    expect(p.steps[0]).toMatchObject({ step: 'hvs-search', k: 1200 });
  });

  it('shows a filter: its estimate on the HVS, its SQL form on pgvector, and the score threshold', () => {
    const filter = { mode: 'gather' as const, matching: 12, selectivity: 0.012 };
    const hvs = planQuery({ ...base, filter, filtered: true, minScore: 0.5, include: ['metadata'] });
    expect(hvs.steps).toEqual([
      { step: 'hvs-search', k: 5, device: 'cpu', index: base.index, filter },
      { step: 'min-score', minScore: 0.5 },
      { step: 'content', from: ['cache', 'wal', 'nvm'], fields: ['metadata'] },
    ]);
    const nvm = planQuery({ ...base, status: 'loading', filtered: true });
    const step = nvm.steps[0];
    expect(step.step).toBe('nvm-search');
    expect(step.step === 'nvm-search' ? step.filter?.note : undefined).toMatch(/SQL over jsonb/);
    expect(planQuery({ ...base }).steps[0]).not.toHaveProperty('filter');
  });

  it('shows the HVS index plan (IVF with its nprobe, or flat) and scans pgvector exactly for exact: true', () => {
    const index = { index: 'ivf' as const, nprobe: 12, nlist: 1264, candidates: 40, expectedRecall: 0.97, deltaRows: 3 };
    expect(planQuery({ ...base, index }).steps[0]).toEqual({ step: 'hvs-search', k: 5, device: 'cpu', index });
    const flat = { index: 'flat' as const, reason: 'exact: true' };
    expect(planQuery({ ...base, index: flat, exact: true }).steps[0]).toEqual({
      step: 'hvs-search',
      k: 5,
      device: 'cpu',
      index: flat,
    });
    expect(planQuery({ ...base, status: 'loading', exact: true }).steps[0]).toEqual({ step: 'nvm-search', mode: 'exact', k: 5 });
    expect(planQuery({ ...base, status: 'loading' }).steps[0]).toEqual({ step: 'nvm-search', mode: 'hnsw', k: 5 });
    const filtered = planQuery({ ...base, status: 'failed', exact: true, filtered: true }).steps[0];
    expect(filtered).toMatchObject({ step: 'nvm-search', mode: 'exact' });
    expect(filtered.step === 'nvm-search' ? filtered.filter?.note : undefined).toMatch(/exact scan/);
  });

  it('looks the result cache up before the HVS search; a hit runs nothing after it, a miss everything', () => {
    const p = planQuery({ ...base, include: ['content'], minLsn: 12, resultCache: true });
    expect(p.steps.map((s) => s.step)).toEqual(['wait-lsn', 'cache_result', 'hvs-search', 'content']);
    expect(p.steps[1]).toEqual({ step: 'cache_result', outcome: 'lookup' });
    const hit = withCacheOutcome(p, 'hit');
    expect(hit.steps).toEqual([p.steps[0], { step: 'cache_result', outcome: 'hit' }]);
    expect(hit.reason).toMatch(/result cache/);
    const miss = withCacheOutcome(p, 'miss');
    expect(miss.steps).toEqual([p.steps[0], { step: 'cache_result', outcome: 'miss' }, ...p.steps.slice(2)]);
    expect(miss.reason).toBe(p.reason);
    // pgvector's answers are not cached: no step, and nothing to settle.
    const nvm = planQuery({ ...base, status: 'loading', resultCache: true });
    expect(nvm.steps.map((s) => s.step)).toEqual(['nvm-search']);
    expect(withCacheOutcome(nvm, 'hit')).toBe(nvm);
  });
});
