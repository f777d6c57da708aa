import type { AnnPlan } from '../hvs/ivf/ivf-types.js';
import type { Include } from './types.js';

/** One step of a query plan, in the order it runs. */
export type PlanStep =
  | { step: 'wait-lsn'; minLsn: number; appliedLsn: number; timeoutMs: number }
  | { step: 'cache_result'; outcome: CacheOutcome }
  | { step: 'hvs-search'; k: number; device: string; index: AnnPlan; filter?: FilterChoice }
  | { step: 'nvm-search'; mode: 'hnsw' | 'exact'; k: number; filter?: { note: string } }
  | { step: 'min-score'; minScore: number }
  | { step: 'content'; from: ('cache' | 'wal' | 'nvm')[]; fields: Include[] };

/**
 * The result cache's part in a plan: `lookup` in `explain` (a repeated identical query since the
 * collection last changed is answered from it), `hit` (it answered: nothing else ran) or `miss`
 * (the search ran and its answer was kept) in a query's plan.
 */
export type CacheOutcome = 'lookup' | 'hit' | 'miss';

/**
 * How the HVS runs a metadata filter: `gather` scores only the matching rows (few match), `mask`
 * scans every row with the filter as a row mask, `mixed` some segments each way, `none` nothing
 * matches. In `explain` it is the estimate from the filter's selectivity; in a query's plan, what ran.
 */
export interface FilterChoice {
  mode: 'gather' | 'mask' | 'mixed' | 'none';
  /** Live rows the filter matches. */
  matching: number;
  /** `matching` over the live rows. */
  selectivity: number;
}

/** The plan a query runs, with the reason for its path. */
export interface QueryPlan {
  collection: string;
  /** Which tier searches. */
  path: 'hvs' | 'nvm';
  steps: PlanStep[];
  reason: string;
}

/** What the planner looks at. */
export interface PlanInput {
  collection: string;
  status: 'loading' | 'ready' | 'failed';
  appliedLsn: number;
  k: number;
  include: readonly Include[];
  minLsn?: number;
  minLsnWaitMs: number;
  /** HVS rows beyond each block's first chunk: hits are per block, so the HVS search over-fetches. */
  extraChunkRows: number;
  device: string;
  /** Set when a `minLsn` wait already ran out: the NVM answers. */
  lsnTimedOut?: boolean;
  /** The filter's estimate on the HVS (when the query has a filter and the HVS holds the collection). */
  filter?: FilterChoice;
  /** Whether the query has a filter (the NVM path compiles it to SQL). */
  filtered?: boolean;
  minScore?: number;
  /** How the HVS index searches (flat, or IVF with its nprobe): the collection's own plan. */
  index: AnnPlan;
  /** The query asked for `exact: true`: pgvector scans exactly when the NVM answers. */
  exact?: boolean;
  /** The result cache is on: answers the HVS gives are looked up there first. */
  resultCache?: boolean;
}

/**
 * Picks how a query is answered. The HVS searches whenever it has the collection loaded and has
 * applied the caller's `minLsn` (waiting briefly for it); otherwise pgvector in the NVM searches
 * (HNSW when the collection has the index and the query did not ask for `exact`, an exact scan
 * otherwise). On the HVS, `index` says whether the IVF lists or a flat scan answer, after a
 * `cache_result` lookup when the result cache is on. Content, metadata and vectors come from the
 * cache, the write-ahead log and one batched NVM read.
 */
export function planQuery(p: PlanInput): QueryPlan {
  const steps: PlanStep[] = [];
  const fields = p.include.filter((f) => f !== 'vector');
  const content: PlanStep | undefined =
    fields.length > 0 || p.include.includes('vector')
      ? { step: 'content', from: ['cache', 'wal', 'nvm'], fields: [...p.include] }
      : undefined;
  const minScore: PlanStep | undefined = p.minScore === undefined ? undefined : { step: 'min-score', minScore: p.minScore };
  const nvm = (reason: string): QueryPlan => {
    const mode = p.exact ? 'exact' : 'hnsw';
    const note =
      mode === 'exact'
        ? 'compiled to SQL over jsonb; an exact scan over the matching rows'
        : 'compiled to SQL over jsonb; HNSW with iterative scans, an exact scan when it comes back short';
    steps.push(p.filtered ? { step: 'nvm-search', mode, k: p.k, filter: { note } } : { step: 'nvm-search', mode, k: p.k });
    if (minScore) steps.push(minScore);
    if (content) steps.push(content);
    return { collection: p.collection, path: 'nvm', steps, reason };
  };
  if (p.status === 'loading') return nvm('the HVS is still loading this collection; pgvector answers meanwhile');
  if (p.status === 'failed') return nvm('the HVS failed to load this collection; pgvector answers');
  if (p.minLsn !== undefined && p.appliedLsn < p.minLsn) {
    if (p.lsnTimedOut) {
      return nvm(
        `the HVS had applied lsn ${p.appliedLsn}, not minLsn ${p.minLsn}, within ${p.minLsnWaitMs} ms; pgvector answers`,
      );
    }
    steps.push({ step: 'wait-lsn', minLsn: p.minLsn, appliedLsn: p.appliedLsn, timeoutMs: p.minLsnWaitMs });
  }
  // Several chunks per block: fetch more rows so k distinct blocks survive the merge by block
  // (more again, for the queries still short, until k blocks or every row).
  const k = p.extraChunkRows > 0 ? p.k * 4 : p.k;
  const { index } = p;
  if (p.resultCache) steps.push({ step: 'cache_result', outcome: 'lookup' });
  steps.push(
    p.filter
      ? { step: 'hvs-search', k, device: p.device, index, filter: p.filter }
      : { step: 'hvs-search', k, device: p.device, index },
  );
  if (minScore) steps.push(minScore);
  if (content) steps.push(content);
  return {
    collection: p.collection,
    path: 'hvs',
    steps,
    reason:
      p.minLsn !== undefined && p.appliedLsn < p.minLsn
        ? `the HVS holds the collection; it waits up to ${p.minLsnWaitMs} ms to apply minLsn ${p.minLsn} and falls back to pgvector otherwise`
        : 'the HVS holds the collection and is up to date',
  };
}

/**
 * The plan with its `cache_result` step's outcome: on a hit, the steps after it did not run and
 * go; the plan is returned as it is when it has no such step.
 */
export function withCacheOutcome(plan: QueryPlan, outcome: 'hit' | 'miss'): QueryPlan {
  const at = plan.steps.findIndex((s) => s.step === 'cache_result');
  if (at < 0) return plan;
  const steps: PlanStep[] = [...plan.steps.slice(0, at), { step: 'cache_result', outcome }];
  if (outcome === 'miss') return { ...plan, steps: [...steps, ...plan.steps.slice(at + 1)] };
  const reason = 'the HVS holds the collection; the same query was answered since it last changed: the result cache answers';
  return { ...plan, steps, reason };
}
