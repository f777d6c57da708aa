import { InvalidArgumentError } from '../core/errors.js';
import { assertBlockId, isArray } from '../core/ids.js';
import { LIMITS } from '../core/limits.js';
import type { SearchHit } from '../core/search-hit.js';
import { QueryBatch } from '../core/vector.js';
import type { CollectionState } from './collection-state.js';
import { encodeTexts } from './item-input.js';
import { planQuery, type PlanInput, type QueryPlan, withCacheOutcome } from './query-planner.js';
import { resultKey, resultStamp } from './result-cache.js';
import { blockIdOf } from './row-keys.js';
import type { CachedBlock } from './tiered-cache.js';
import type { Tiers } from './tiers.js';
import { compileFilter, type FilterNode, matchesAll } from '../core/filter.js';
import { GATHER_SHARE, type FilterRun } from '../hvs/filtered-search.js';
import type { HvsCollection } from '../hvs/hvs-collection.js';
import type { AnnOptions, AnnPlan } from '../hvs/ivf/ivf-types.js';
import type { FilterChoice } from './query-planner.js';
import type { GetResult, Include, QueryHit, QueryOptions, Source } from './types.js';

const INCLUDES: readonly Include[] = ['content', 'metadata', 'vector'];
const ALL: FilterNode = { op: 'all' };

/**
 * Reads: plans each query once (HVS, or pgvector while the HVS is loading, failed or behind the
 * caller's `minLsn`), runs it, and adds content, metadata and vectors from WAL-only writes, the
 * read cache or one batched NVM read.
 */
export class QueryRouter {
  constructor(
    private readonly tiers: Tiers,
    private readonly minLsnWaitMs: number,
  ) {}

  /** The plan {@link query} would run now, and why. */
  explain(state: CollectionState, opts: QueryOptions & { k?: number } = {}): QueryPlan {
    const filter = queryFilters(opts, 1);
    const node = Array.isArray(filter) ? filter[0] : filter;
    const h = state.hvs;
    const estimate = node && h ? filterChoice(h.estimate(node)) : undefined;
    const k = opts.k ?? 10;
    const ann = checkAnn(opts);
    return this.plan(state, k, checkInclude(opts.include), opts.minLsn, state.lsn, false, false, {
      resultCache: this.tiers.results.enabled,
      index: indexPlan(h, k, ann),
      ...(ann.exact ? { exact: true } : {}),
      filtered: node !== undefined,
      ...(estimate ? { filter: estimate } : {}),
      ...(opts.minScore === undefined ? {} : { minScore: checkMinScore(opts.minScore) }),
    });
  }

  /**
   * k nearest blocks per query (vectors, or texts the encoder turns into vectors), best first,
   * each tagged with the tiers that answered, with the plan that ran.
   */
  async query(
    state: CollectionState,
    queries: readonly (Float32Array | string)[],
    k: number,
    opts: QueryOptions = {},
  ): Promise<{ results: QueryHit[][]; plan: QueryPlan }> {
    if (!Number.isInteger(k) || k < 1 || k > LIMITS.k)
      throw new InvalidArgumentError(`k must be an integer between 1 and ${LIMITS.k}, got ${String(k)}`);
    if (!isArray(queries) || queries.length === 0) throw new InvalidArgumentError('queries must be a non-empty array');
    if (queries.length > LIMITS.queriesPerCall) {
      throw new InvalidArgumentError(`at most ${LIMITS.queriesPerCall} queries per call, got ${queries.length}`);
    }
    const include = checkInclude(opts.include);
    const filter = queryFilters(opts, queries.length);
    const minScore = opts.minScore === undefined ? undefined : checkMinScore(opts.minScore);
    const ann = checkAnn(opts);
    const { minLsn } = opts;
    if (minLsn !== undefined && (!Number.isSafeInteger(minLsn) || minLsn < 0)) {
      throw new InvalidArgumentError(`minLsn must be a non-negative integer, got ${String(minLsn)}`);
    }
    const vectors = await this.queryVectors(state, queries);
    // A caller's minLsn the HVS has not applied yet is waited for first (briefly); the plan is then
    // made once, from what the wait found.
    const appliedLsn = state.lsn;
    let timedOut = false;
    if (minLsn !== undefined && appliedLsn < minLsn && state.status === 'ready' && state.hvs) {
      timedOut = !(await state.waitForLsn(minLsn, this.minLsnWaitMs));
    }
    const h = state.hvs;
    const plan = this.plan(state, k, include, minLsn, appliedLsn, timedOut, h === undefined, {
      resultCache: this.tiers.results.enabled,
      index: indexPlan(h, k, ann),
      ...(ann.exact ? { exact: true } : {}),
      filtered: filter !== undefined,
      ...(minScore === undefined ? {} : { minScore }),
    });
    // The result cache answers only for the HVS, and keeps an answer only if the collection did
    // not change from before the search to the end (its stamp is the same).
    const { results: cache } = this.tiers;
    const cached =
      plan.path === 'hvs' && h && cache.enabled
        ? {
            key: resultKey(state.name, vectors, { k, include, filter, minScore, ann }),
            stamp: cache.stampOf(state.name, resultStamp(state, h)),
          }
        : undefined;
    const answer = cached && cache.get(state.name, cached.key, cached.stamp);
    if (answer) return { results: answer, plan: withCacheOutcome(plan, 'hit') };
    let hits: SearchHit[][];
    if (plan.path === 'hvs' && h) {
      const search = plan.steps.find((s) => s.step === 'hvs-search');
      const { hits: found, run, index } = await searchBlocks(state, h, vectors, k, filter, ann);
      hits = found;
      if (search?.step === 'hvs-search') {
        search.index = index;
        if (run) search.filter = filterChoice(run);
      }
    } else {
      const nvmFilter = Array.isArray(filter) ? filter.map((f) => f ?? ALL) : filter;
      const mode = ann.exact ? 'exact' : 'hnsw';
      hits = await this.tiers.nvm.search(state.name, vectors, k, nvmFilter ? { mode, filter: nvmFilter } : { mode });
    }
    if (minScore !== undefined) {
      const keep = state.metric === 'l2' ? (s: number) => s <= minScore : (s: number) => s >= minScore;
      hits = hits.map((list) => list.filter((x) => keep(x.score)));
    }
    const source: Source = plan.path === 'nvm' ? 'nvm' : include.length > 0 ? 'hvs+nvm' : 'hvs';
    const results = await this.enrich(state, hits, include, source);
    if (!cached) return { results, plan };
    const now = state.hvs;
    if (now && cache.stampOf(state.name, resultStamp(state, now)) === cached.stamp)
      cache.set(state.name, cached.key, cached.stamp, results);
    return { results, plan: withCacheOutcome(plan, 'miss') };
  }

  /**
   * The block: a WAL-only write, or the HVS's vector with the cached (or NVM-read) content, or,
   * where the HVS lacks it, the cache or the NVM; undefined if it does not exist.
   */
  async get(state: CollectionState, id: string): Promise<GetResult | undefined> {
    const { cache, nvm } = this.tiers;
    const collection = state.name;
    assertBlockId(id, 'get');
    const e = state.walEntries.get(id);
    if (e) return e.item ? getResult(id, e.item.vectors[0].slice(), e.item, 'hvs') : undefined;
    const row = state.hvs?.get(id);
    const cached = cache.getBlock(collection, id);
    if (row && cached && cached.version === row.version) return getResult(id, row.vector, cached, 'hvs+nvm');
    if (!row && cached) {
      // The HVS does not have it (loading, or behind): the cached vector serves with the cached block.
      const v = cache.getVector(collection, id);
      if (v && v.version === cached.version) return getResult(id, v.vector.slice(), cached, 'nvm');
    }
    const withVectors = !row;
    const block = (await nvm.getBlocks(collection, [id], { vectors: withVectors })).get(id);
    if (!block) return undefined;
    cache.setBlock(collection, id, { content: block.content, metadata: block.metadata, version: block.version });
    if (row && row.version === block.version) return getResult(id, row.vector, block, 'hvs+nvm');
    // The HVS holds another version (it is behind): the NVM's vector, read now.
    const full = withVectors ? block : (await nvm.getBlocks(collection, [id])).get(id);
    if (!full || full.vectors.length === 0) return undefined;
    cache.setVector(collection, id, { vector: full.vectors[0], version: full.version });
    return getResult(id, full.vectors[0].slice(), full, 'nvm');
  }

  private plan(
    state: CollectionState,
    k: number,
    include: readonly Include[],
    minLsn: number | undefined,
    appliedLsn: number,
    lsnTimedOut: boolean,
    hvsDetached = false,
    extra: Pick<PlanInput, 'index' | 'exact' | 'filter' | 'filtered' | 'minScore' | 'resultCache'>,
  ): QueryPlan {
    const input: PlanInput = {
      collection: state.name,
      // A collection whose HVS index is detached (dropped or switched under us) is served as loading.
      status: hvsDetached && state.status === 'ready' ? 'loading' : state.status,
      appliedLsn,
      k,
      include,
      minLsnWaitMs: this.minLsnWaitMs,
      extraChunkRows: state.extraChunkRows,
      device: this.tiers.hvs.deviceInfo.device,
      lsnTimedOut,
      ...extra,
    };
    if (minLsn !== undefined) input.minLsn = minLsn;
    return planQuery(input);
  }

  /** The query vectors (given, or texts encoded), checked and copied once, here. */
  private async queryVectors(state: CollectionState, queries: readonly (Float32Array | string)[]): Promise<QueryBatch> {
    const texts: { i: number; text: string }[] = [];
    const out: Float32Array[] = [];
    queries.forEach((q, i) => {
      if (typeof q === 'string') texts.push({ i, text: q });
      else if (q instanceof Float32Array) out[i] = q;
      else throw new InvalidArgumentError(`queries[${i}] must be a Float32Array or a text`);
    });
    const encoded = await encodeTexts(
      state,
      texts.map((t) => t.text),
      this.tiers.encoders,
    );
    texts.forEach((t, j) => (out[t.i] = encoded[j]));
    return QueryBatch.of(out, state.dim, state.metric, 'queries');
  }

  /**
   * Adds what the caller asked for to the hits: content and metadata from WAL-only writes, the
   * cache, or one batched NVM read (which also fills the cache); vectors from the HVS or the NVM.
   * A hit whose block the NVM no longer has (deleted since the HVS indexed it) is dropped.
   */
  private async enrich(
    state: CollectionState,
    hits: SearchHit[][],
    include: readonly Include[],
    source: Source,
  ): Promise<QueryHit[][]> {
    const { cache, nvm } = this.tiers;
    if (include.length === 0)
      return hits.map((list) => list.map((x) => ({ id: x.id, score: x.score, version: x.version, source })));
    const wantVector = include.includes('vector');
    const h = state.hvs;
    const blocks = new Map<string, CachedBlock & { vector?: Float32Array; wal?: boolean }>();
    const misses = new Set<string>();
    for (const list of hits) {
      for (const x of list) {
        if (blocks.has(x.id) || misses.has(x.id)) continue;
        const e = state.walEntries.get(x.id);
        if (e?.item) {
          blocks.set(x.id, {
            content: e.item.content,
            metadata: e.item.metadata,
            version: e.item.version,
            vector: e.item.vectors[0],
            wal: true,
          });
          continue;
        }
        const c = cache.getBlock(state.name, x.id);
        if (c) blocks.set(x.id, c);
        else misses.add(x.id);
      }
    }
    const vectorsFromNvm = wantVector && !h;
    if (misses.size > 0 || vectorsFromNvm) {
      const need = vectorsFromNvm ? [...new Set(hits.flat().map((x) => x.id))] : [...misses];
      const got = await nvm.getBlocks(state.name, need, { vectors: vectorsFromNvm });
      for (const [id, b] of got) {
        const cached = { content: b.content, metadata: b.metadata, version: b.version };
        cache.setBlock(state.name, id, cached);
        blocks.set(id, vectorsFromNvm ? { ...cached, vector: b.vectors[0] } : cached);
      }
    }
    return hits.map((list) => {
      const out: QueryHit[] = [];
      for (const x of list) {
        const b = blocks.get(x.id);
        if (!b) continue;
        const hit: QueryHit = { id: x.id, score: x.score, version: x.version, source: b.wal ? 'hvs' : source };
        if (include.includes('content')) hit.content = b.content;
        if (include.includes('metadata')) hit.metadata = b.metadata;
        if (wantVector) {
          const v = b.vector ?? h?.get(x.id)?.vector;
          if (v) hit.vector = v.slice();
        }
        out.push(hit);
      }
      return out;
    });
  }
}

function getResult(id: string, vector: Float32Array, block: CachedBlock, source: Source): GetResult {
  return { id, vector, content: block.content, metadata: block.metadata, version: block.version, source };
}

function checkInclude(include: readonly Include[] | undefined): Include[] {
  if (include === undefined) return [];
  if (!isArray(include)) throw new InvalidArgumentError('include must be an array');
  for (const f of include) {
    if (!INCLUDES.includes(f))
      throw new InvalidArgumentError(`include: unknown field ${JSON.stringify(f)}; one of ${INCLUDES.join(', ')}`);
  }
  return [...new Set(include)];
}

/**
 * The filters of a query call, checked: undefined (none), one for the batch, or one per query.
 * A per-query entry left undefined takes the batch's filter.
 */
function queryFilters(opts: QueryOptions, count: number): FilterNode | (FilterNode | undefined)[] | undefined {
  const shared = opts.filter === undefined ? undefined : compileFilter(opts.filter, 'filter');
  const one = shared && !matchesAll(shared) ? shared : undefined;
  if (opts.filters === undefined) return one;
  if (!isArray(opts.filters) || opts.filters.length !== count) {
    throw new InvalidArgumentError(`filters must be an array of one filter per query (${count})`);
  }
  const each = opts.filters.map((f, i) => {
    const node = f === undefined ? one : compileFilter(f, `queries[${i}].filter`);
    return node && !matchesAll(node) ? node : undefined;
  });
  return each.some((n) => n !== undefined) ? each : undefined;
}

/** The query's index options, checked (the HVS checks them again against its index). */
function checkAnn(opts: AnnOptions): AnnOptions {
  const { exact, nprobe, targetRecall } = opts;
  const out: AnnOptions = {};
  if (exact !== undefined) {
    if (typeof exact !== 'boolean') throw new InvalidArgumentError(`exact must be a boolean, got ${String(exact)}`);
    if (exact) out.exact = true;
  }
  if (nprobe !== undefined) {
    if (!Number.isSafeInteger(nprobe) || nprobe < 1)
      throw new InvalidArgumentError(`nprobe must be a positive integer, got ${String(nprobe)}`);
    out.nprobe = nprobe;
  }
  if (targetRecall !== undefined) {
    if (typeof targetRecall !== 'number' || !(targetRecall > 0 && targetRecall <= 1))
      throw new InvalidArgumentError(`targetRecall must be a number in (0, 1], got ${String(targetRecall)}`);
    out.targetRecall = targetRecall;
  }
  if (out.exact && (out.nprobe !== undefined || out.targetRecall !== undefined)) {
    throw new InvalidArgumentError('exact: true cannot be combined with nprobe or targetRecall');
  }
  return out;
}

/** How the HVS would search: its own plan, or flat when it does not hold the collection. */
function indexPlan(h: HvsCollection | undefined, k: number, ann: AnnOptions): AnnPlan {
  return h ? h.planSearch(k, ann) : { index: 'flat', reason: 'the HVS does not hold this collection' };
}

function checkMinScore(v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new InvalidArgumentError(`minScore must be a finite number, got ${String(v)}`);
  return v;
}

function filterChoice(run: { matching: number; selectivity: number; mode?: FilterChoice['mode'] }): FilterChoice {
  const mode = run.mode ?? (run.matching === 0 ? 'none' : run.selectivity <= GATHER_SHARE ? 'gather' : 'mask');
  return { mode, matching: run.matching, selectivity: run.selectivity };
}

/**
 * The k best blocks per query from the HVS. A block of several chunks has a row per chunk, so
 * rows are over-fetched (×4) and merged per block; a query still short of k blocks while its row
 * list came back full is searched again with 4× the rows, until it has k blocks or every row was
 * a candidate — however many chunks one block has, a query returns k blocks whenever k exist.
 */
async function searchBlocks(
  state: CollectionState,
  h: HvsCollection,
  vectors: QueryBatch,
  k: number,
  filter: FilterNode | (FilterNode | undefined)[] | undefined,
  ann: AnnOptions,
): Promise<{ hits: SearchHit[][]; run: FilterRun | undefined; index: AnnPlan }> {
  const opts = filter === undefined ? { ...ann } : { ...ann, filter };
  if (state.extraChunkRows === 0) {
    const { hits, runs, plan } = await h.searchWithRuns(vectors, k, opts);
    return { hits, run: runs.find((r) => r !== undefined), index: plan };
  }
  for (let fetch = k * 4; ; fetch *= 4) {
    const rows = Math.min(fetch, Math.max(1, h.count));
    const { hits: raw, runs, plan } = await h.searchWithRuns(vectors, rows, { ...opts, unboundedK: true });
    const hits = raw.map((list) => bestPerBlock(list, k));
    const short = hits.some((list, q) => list.length < k && raw[q].length === rows);
    if (!short || rows >= h.count) return { hits, run: runs.find((r) => r !== undefined), index: plan };
  }
}

/** Per query: the best hit of each block (rows of a block's chunks share its id), k at most. */
function bestPerBlock(list: readonly SearchHit[], k: number): SearchHit[] {
  // The list is best first whatever the metric, so a block's first row is its best.
  const seen = new Set<string>();
  const out: SearchHit[] = [];
  for (const x of list) {
    const id = blockIdOf(x.id);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ ...x, id });
    if (out.length === k) break;
  }
  return out;
}
