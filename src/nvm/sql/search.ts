import { LIMITS } from '../../core/limits.js';
import type { Metric } from '../../core/metric.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { filterKey, type FilterNode } from '../../core/filter.js';
import { isArray } from '../../core/ids.js';
import type { SearchHit } from '../../core/search-hit.js';
import { QueryBatch } from '../../core/vector.js';
import { mapDbErrors } from '../db-errors.js';
import type { NvmCollection, NvmSearchOptions, NvmSearchStats } from '../nvm-store.js';
import type { SqlDriver, SqlExecutor } from '../sql-driver.js';
import { checkChunkVectors, vectorToText } from '../vector-codec.js';
import { vectorsTable } from './catalogue.js';
import { filterToSql } from './filter-sql.js';

/** pgvector's distance operator per metric. */
const DISTANCE_OP: Record<Metric, string> = { cosine: '<=>', ip: '<#>', l2: '<->' };

/**
 * Chunk rows asked for per hit in a collection with blocks of several chunks, so that they still
 * fill k; a collection of one chunk per block asks for k rows (an iterative scan behind a
 * selective filter then stops 4× sooner).
 */
export const CHUNK_OVERFETCH = 4;

/** The HVS's score from pgvector's distance: cosine similarity, inner product, L2 distance. */
function toScore(metric: Metric, d: number): number {
  return metric === 'cosine' ? 1 - d : metric === 'ip' ? -d : d;
}

/** Queries that share one filter: searched by one statement. */
interface QueryGroup {
  filter: FilterNode;
  /** Indices into the batch. */
  queries: number[];
}

/** How a checked search runs: {@link NvmSearchOptions} with their defaults. */
export interface SearchPlan {
  mode: 'exact' | 'hnsw';
  efSearch: number;
  groups: QueryGroup[];
  fallback: boolean;
  stats?: NvmSearchStats;
}

/** Checks a search's arguments (all but the query dimensions, which need the collection). */
export function checkSearch(queries: readonly Float32Array[], k: number, opts: NvmSearchOptions): SearchPlan {
  if (!Number.isInteger(k) || k < 1 || k > LIMITS.k)
    throw new InvalidArgumentError(`k must be an integer between 1 and ${LIMITS.k}, got ${String(k)}`);
  if (!isArray(queries) || queries.length === 0) throw new InvalidArgumentError('queries: the batch is empty');
  const mode = opts.mode ?? 'exact';
  if (mode !== 'exact' && mode !== 'hnsw') throw new InvalidArgumentError(`mode must be exact or hnsw, got ${String(mode)}`);
  const efSearch = opts.efSearch ?? 100;
  if (!Number.isInteger(efSearch) || efSearch < 1 || efSearch > 1000) {
    throw new InvalidArgumentError(`efSearch must be an integer between 1 and 1000, got ${String(efSearch)}`);
  }
  const { filter = { op: 'all' } } = opts;
  const perQuery = (f: FilterNode | readonly FilterNode[]): f is readonly FilterNode[] => Array.isArray(f);
  if (perQuery(filter) && filter.length !== queries.length) {
    throw new InvalidArgumentError(`filter: one per query, got ${filter.length} for ${queries.length} queries`);
  }
  const byKey = new Map<string, QueryGroup>();
  queries.forEach((_, i) => {
    const f: FilterNode = perQuery(filter) ? filter[i] : filter;
    const key = filterKey(f);
    let g = byKey.get(key);
    if (!g) {
      // Compiled once here so that a bad filter is refused before the database is asked.
      filterToSql(f, 'm', []);
      g = { filter: f, queries: [] };
      byKey.set(key, g);
    }
    g.queries.push(i);
  });
  return { mode, efSearch, groups: [...byKey.values()], fallback: opts.fallback ?? true, stats: opts.stats };
}

type HitRow = { q: number; block_id: string; d: number; version: string };

/**
 * The `k` best blocks per query in collection `c` among those its filter matches: exact by a
 * scan, or through the HNSW index (`iterativeScans` where pgvector ≥ 0.8 has them), with short
 * answers rerun exactly unless the plan says not to.
 */
export async function search(
  db: SqlDriver,
  c: NvmCollection,
  batch: readonly Float32Array[] | QueryBatch,
  k: number,
  plan: SearchPlan,
  iterativeScans: boolean,
  chunks: { overfetch: number; onShort?: () => void } = { overfetch: CHUNK_OVERFETCH },
): Promise<SearchHit[][]> {
  // A QueryBatch of this dimension was checked where it entered.
  const checked = batch instanceof QueryBatch && batch.dim === c.dim;
  const queries = batch instanceof QueryBatch ? batch.rows() : batch;
  if (!checked) queries.forEach((q, i) => checkChunkVectors([q], c.dim, `queries[${i}]`));
  const texts = queries.map(vectorToText);
  const out: SearchHit[][] = queries.map(() => []);
  const collect = (rows: HitRow[]): void => {
    for (const r of rows) {
      out[Number(r.q)].push({ id: r.block_id, score: toScore(c.metric, Number(r.d)), version: Number(r.version) });
    }
  };
  const exact = plan.mode === 'exact';
  let short = 0;
  let reruns = 0;
  await mapDbErrors(() =>
    db.transaction(async (tx) => {
      // One snapshot for the candidates, the count of matching blocks and the reruns.
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      if (exact) {
        // Without an index in play the planner scans: exact by construction.
        await tx.query('SET LOCAL enable_indexscan = off');
      } else {
        await tx.query(`SET LOCAL hnsw.ef_search = ${plan.efSearch}`);
        // Iterative scans (pgvector ≥ 0.8) go on through the graph while the filter rejects rows.
        if (iterativeScans) await tx.query('SET LOCAL hnsw.iterative_scan = relaxed_order');
      }
      const rerun: QueryGroup[] = [];
      for (const g of plan.groups) {
        collect(await nearestChunks(tx, c, texts, g, k, chunks.overfetch));
        // Fewer than k blocks: either fewer match, or a few blocks' chunks filled the candidates
        // (or, through the index, the graph search ran out).
        const few = g.queries.filter((q) => out[q].length < k);
        if (few.length === 0 || (!exact && !plan.fallback && !plan.stats)) continue;
        const matching = await countSearchable(tx, c, g.filter, k);
        const missing = few.filter((q) => out[q].length < matching);
        if (!exact) short += missing.length;
        if ((exact || plan.fallback) && missing.length > 0) rerun.push({ filter: g.filter, queries: missing });
        // Short without over-fetching: perhaps blocks of several chunks now; over-fetch from here on.
        if (missing.length > 0 && chunks.overfetch === 1) chunks.onShort?.();
      }
      if (rerun.length === 0) return;
      if (!exact) await tx.query('SET LOCAL enable_indexscan = off');
      for (const g of rerun) {
        for (const q of g.queries) out[q] = [];
        if (!exact) reruns += g.queries.length;
        collect(await bestChunkPerBlock(tx, c, texts, g, k));
      }
    }),
  );
  if (plan.stats) {
    plan.stats.queries += queries.length;
    plan.stats.short += short;
    plan.stats.reruns += reruns;
  }
  return out;
}

/** The queries of `g` as a materialised CTE `q(v, i)` (parsed once, not once per row compared): params $1, $2. */
const QUERIES_CTE = `q AS MATERIALIZED (SELECT t.v::vector AS v, t.i FROM unnest($1::text[], $2::int[]) AS t(v, i))`;

/**
 * Every block that matches scores by its best chunk, so a block with many chunks is one
 * candidate among the others and each query gets min(k, matching blocks) hits. Exact, but it
 * aggregates over every vector: the rerun for the queries {@link nearestChunks} left short.
 */
async function bestChunkPerBlock(
  tx: SqlExecutor,
  c: NvmCollection,
  texts: string[],
  g: QueryGroup,
  k: number,
): Promise<HitRow[]> {
  const op = DISTANCE_OP[c.metric];
  const params: unknown[] = [g.queries.map((q) => texts[q]), g.queries, c.name, k];
  const where = filterToSql(g.filter, 'b.metadata', params);
  const { rows } = await tx.query<HitRow>(
    `WITH ${QUERIES_CTE},
          m AS MATERIALIZED (SELECT b.id, b.version FROM hs_blocks b WHERE b.collection = $3 AND ${where})
     SELECT q.i AS q, h.block_id, h.d, h.version
       FROM q
       CROSS JOIN LATERAL (
         SELECT v.block_id, min(v.embedding ${op} q.v) AS d, m.version
           FROM ${vectorsTable(c.id)} v JOIN m ON m.id = v.block_id
          GROUP BY v.block_id, m.version
          ORDER BY d, v.block_id LIMIT $4
       ) h
      ORDER BY q.i, h.d, h.block_id`,
    params,
  );
  return rows;
}

/**
 * The `k × overfetch` nearest chunk rows whose block matches, reduced to their blocks
 * (each by its best chunk: when k distinct blocks come out, they are the k best). Through the
 * HNSW index unless the transaction turned index scans off; there the filter is in the scan's
 * WHERE, so iterative scans continue past rejected rows.
 */
async function nearestChunks(
  tx: SqlExecutor,
  c: NvmCollection,
  texts: string[],
  g: QueryGroup,
  k: number,
  overfetch: number,
): Promise<HitRow[]> {
  const op = DISTANCE_OP[c.metric];
  const params: unknown[] = [g.queries.map((q) => texts[q]), g.queries, c.name, k, k * overfetch];
  const where = filterToSql(g.filter, 'b.metadata', params);
  const { rows } = await tx.query<HitRow>(
    `WITH ${QUERIES_CTE}
     SELECT q.i AS q, h.block_id, h.d, h.version
       FROM q
       CROSS JOIN LATERAL (
         SELECT n.block_id, min(n.d) AS d, min(n.version) AS version
           FROM (SELECT v.block_id, v.embedding ${op} q.v AS d, b.version
                   FROM ${vectorsTable(c.id)} v JOIN hs_blocks b ON b.collection = $3 AND b.id = v.block_id
                  WHERE ${where}
                  ORDER BY v.embedding ${op} q.v LIMIT $5) n
          GROUP BY n.block_id
          ORDER BY d, n.block_id LIMIT $4
       ) h
      ORDER BY q.i, h.d, h.block_id`,
    params,
  );
  return rows;
}

/** How many blocks with vectors match `filter`, counted up to `cap`. */
async function countSearchable(tx: SqlExecutor, c: NvmCollection, filter: FilterNode, cap: number): Promise<number> {
  const params: unknown[] = [c.name, cap];
  const where = filterToSql(filter, 'b.metadata', params);
  const { rows } = await tx.query<{ n: string }>(
    `SELECT count(*) AS n FROM (
       SELECT 1 FROM hs_blocks b
        WHERE b.collection = $1 AND ${where}
          AND EXISTS (SELECT 1 FROM ${vectorsTable(c.id)} v WHERE v.block_id = b.id)
        LIMIT $2) x`,
    params,
  );
  return Number(rows[0].n);
}
