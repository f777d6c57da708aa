import { describe, expect, it } from 'vitest';
import { planQuery, type PlanInput } from '../../src/integration/query-planner.js';

const base: PlanInput = {
  collection: 'c',
  status: 'ready',
  appliedLsn: 10,
  k: 5,
  include: [],
  minLsnWaitMs: 1000,
  extraChunkRows: 0,
  device: 'cpu',
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
      { step: 'hvs-search', k: 5, device: 'cpu', filter },
      { step: 'min-score', minScore: 0.5 },
      { step: 'content', from: ['cache', 'wal', 'nvm'], fields: ['metadata'] },
    ]);
    const nvm = planQuery({ ...base, status: 'loading', filtered: true });
    const step = nvm.steps[0];
    expect(step.step).toBe('nvm-search');
    expect(step.step === 'nvm-search' ? step.filter?.note : undefined).toMatch(/SQL over jsonb/);
    expect(planQuery({ ...base }).steps[0]).not.toHaveProperty('filter');
  });
});
