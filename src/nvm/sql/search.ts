import { LIMITS } from '../../core/limits.js';
import type { Metric } from '../../core/metric.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { isArray } from '../../core/ids.js';
import type { SearchHit } from '../../core/search-hit.js';
import { QueryBatch } from '../../core/vector.js';
import { mapDbErrors } from '../db-errors.js';
import type { NvmCollection, NvmSearchOptions } from '../nvm-store.js';
import type { SqlDriver } from '../sql-driver.js';
import { checkChunkVectors, vectorToText } from '../vector-codec.js';
import { vectorsTable } from './catalogue.js';

/** pgvector's distance operator per metric. */
const DISTANCE_OP: Record<Metric, string> = { cosine: '<=>', ip: '<#>', l2: '<->' };

/** The HVS's score from pgvector's distance: cosine similarity, inner product, L2 distance. */
function toScore(metric: Metric, d: number): number {
  return metric === 'cosine' ? 1 - d : metric === 'ip' ? -d : d;
}

/** How a checked search runs: {@link NvmSearchOptions} with their defaults. */
export interface SearchPlan {
  mode: 'exact' | 'hnsw';
  efSearch: number;
}

/** Checks a search's arguments (all but the query dimensions, which need the collection). */
export function checkSearch(queries: readonly Float32Array[], k: number, opts: NvmSearchOptions): SearchPlan {
  if (!Number.isInteger(k) || k < 1 || k > LIMITS.k)
    throw new InvalidArgumentError(`k must be an integer between 1 and ${LIMITS.k}, got ${String(k)}`);
  if (!isArray(queries) || queries.length === 0) throw new InvalidArgumentError('queries: the batch is empty');
  const mode = opts.mode ?? 'exact';
  const efSearch = opts.efSearch ?? 100;
  if (!Number.isInteger(efSearch) || efSearch < 1 || efSearch > 1000) {
    throw new InvalidArgumentError(`efSearch must be an integer between 1 and 1000, got ${String(efSearch)}`);
  }
  return { mode, efSearch };
}

/**
 * The `k` best blocks per query in collection `c`: exact by a scan, or through the HNSW index;
 * `iterativeScans` where pgvector (≥ 0.8) has them.
 */
export async function search(
  db: SqlDriver,
  c: NvmCollection,
  batch: readonly Float32Array[] | QueryBatch,
  k: number,
  { mode, efSearch }: SearchPlan,
  iterativeScans: boolean,
): Promise<SearchHit[][]> {
  // A QueryBatch of this dimension was checked where it entered.
  const checked = batch instanceof QueryBatch && batch.dim === c.dim;
  const queries = batch instanceof QueryBatch ? batch.rows() : batch;
  if (!checked) queries.forEach((q, i) => checkChunkVectors([q], c.dim, `queries[${i}]`));
  const op = DISTANCE_OP[c.metric];
  const table = vectorsTable(c.id);
  // Several chunks of one block may come first: take k per query from a wider candidate list.
  const rows = await mapDbErrors(() =>
    db.transaction(async (tx) => {
      if (mode === 'exact') {
        // Without an index in play the planner scans: exact by construction.
        await tx.query('SET LOCAL enable_indexscan = off');
      } else {
        await tx.query(`SET LOCAL hnsw.ef_search = ${efSearch}`);
        // Iterative scans (pgvector ≥ 0.8) keep HNSW results from running short.
        if (iterativeScans) await tx.query('SET LOCAL hnsw.iterative_scan = relaxed_order');
      }
      const { rows } = await tx.query<{ q: number; block_id: string; d: number; version: string }>(
        // The queries are parsed once (a materialised CTE), not once per row compared.
        `WITH q AS MATERIALIZED (SELECT t.v::vector AS v, t.i FROM unnest($1::text[]) WITH ORDINALITY AS t(v, i))
         SELECT q.i AS q, h.block_id, h.d, b.version
           FROM q
           CROSS JOIN LATERAL (
             SELECT block_id, embedding ${op} q.v AS d FROM ${table} ORDER BY embedding ${op} q.v LIMIT $2
           ) h
           JOIN hs_blocks b ON b.collection = $3 AND b.id = h.block_id
          ORDER BY q.i, h.d`,
        [queries.map(vectorToText), k * 4, c.name],
      );
      return rows;
    }),
  );
  const out: SearchHit[][] = queries.map(() => []);
  const seen = queries.map(() => new Set<string>());
  for (const r of rows) {
    const qi = Number(r.q) - 1;
    if (seen[qi].has(r.block_id) || out[qi].length >= k) continue;
    seen[qi].add(r.block_id);
    out[qi].push({ id: r.block_id, score: toScore(c.metric, Number(r.d)), version: Number(r.version) });
  }
  return out;
}
