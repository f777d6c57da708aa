import { InvalidArgumentError } from '../../core/errors.js';
import { mapDbErrors } from '../db-errors.js';
import type { VectorBatchPage } from '../nvm-store.js';
import type { SqlDriver } from '../sql-driver.js';
import { vectorFromBinary } from '../vector-codec.js';
import { type Catalogue, vectorsTable } from './catalogue.js';

/**
 * ANALYZE the tables whose statistics are missing or older than a fifth of their rows' changes
 * (best effort: errors are ignored, the stream runs all the same).
 */
async function analyzeIfStale(db: SqlDriver, tables: string[]): Promise<void> {
  try {
    const { rows } = await db.query<{ relname: string }>(
      `SELECT t.name AS relname FROM unnest($1::text[]) AS t(name)
         LEFT JOIN pg_stat_user_tables s ON s.relname = t.name
        WHERE s.relname IS NULL
           OR (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL)
           OR s.n_mod_since_analyze > greatest(1000, s.n_live_tup / 5)`,
      [tables],
    );
    if (rows.length > 0) await db.exec(`ANALYZE ${rows.map((r) => r.relname).join(', ')}`);
  } catch {
    // Statistics are an optimisation here.
  }
}

/** Every chunk vector of the collection, a page of up to `batchBlocks` blocks at a time, in (lsn, id) order. */
export async function* streamVectors(
  db: SqlDriver,
  catalogue: Catalogue,
  collection: string,
  batchBlocks = 10_000,
): AsyncGenerator<VectorBatchPage> {
  if (!Number.isInteger(batchBlocks) || batchBlocks < 1)
    throw new InvalidArgumentError(`batchBlocks must be a positive integer, got ${batchBlocks}`);
  const c = await catalogue.getCollection(collection);
  // Fresh planner statistics first: right after a bulk load they say a block has thousands of
  // vectors, and the per-block lookups below get planned as bitmap scans under JIT (≈6× slower).
  // Best effort: a role that may not ANALYZE streams all the same.
  await analyzeIfStale(db, ['hs_blocks', vectorsTable(c.id)]);
  let lastLsn = -1;
  let lastId = '';
  for (;;) {
    // Keyset pagination on (lsn, id): each page is one bounded query, on any backend; one row
    // per vector, in pgvector's binary form (no arrays to parse).
    const { rows } = await mapDbErrors(() =>
      db.query<{
        id: string;
        lsn: string;
        version: string;
        chunk: number;
        vector: Uint8Array;
        metadata: Record<string, unknown> | string | null;
      }>(
        // LATERAL: each page block's vectors by index lookup. A plain join lets the planner
        // hash-join against a scan of the whole vectors table, once per page: quadratic (OFFSET 0
        // keeps the subquery from being flattened into such a join). A block's metadata comes
        // with its first chunk only; the others share that object.
        `SELECT b.id, b.lsn, b.version, v.chunk, vector_send(v.embedding) AS vector,
                CASE WHEN v.first THEN b.metadata END AS metadata
           FROM (SELECT id, lsn, version, metadata FROM hs_blocks
                  WHERE collection = $1 AND (lsn, id) > ($2, $3)
                  ORDER BY lsn, id LIMIT $4) b
           CROSS JOIN LATERAL (SELECT chunk, embedding, row_number() OVER (ORDER BY chunk) = 1 AS first
                                 FROM ${vectorsTable(c.id)} WHERE block_id = b.id OFFSET 0) v
          ORDER BY b.lsn, b.id, v.chunk`,
        [collection, lastLsn, lastId, batchBlocks],
      ),
    );
    // A page whose blocks all lack vectors yields no rows without being the end: look up the
    // page's last block to step past it.
    const { rows: tail } =
      rows.length > 0
        ? { rows: [{ id: rows[rows.length - 1].id, lsn: rows[rows.length - 1].lsn }] }
        : await mapDbErrors(() =>
            db.query<{ id: string; lsn: string }>(
              `SELECT id, lsn FROM (SELECT id, lsn FROM hs_blocks
                                     WHERE collection = $1 AND (lsn, id) > ($2, $3)
                                     ORDER BY lsn, id LIMIT $4) page
                ORDER BY lsn DESC, id DESC LIMIT 1`,
              [collection, lastLsn, lastId, batchBlocks],
            ),
          );
    if (tail.length === 0) return;
    const page: VectorBatchPage = {
      ids: rows.map((r) => r.id),
      chunks: rows.map((r) => Number(r.chunk)),
      versions: rows.map((r) => Number(r.version)),
      lsns: rows.map((r) => Number(r.lsn)),
      vectors: new Float32Array(rows.length * c.dim),
      metadata: [],
    };
    let metadata: Record<string, unknown> = {};
    rows.forEach((r, i) => {
      page.vectors.set(vectorFromBinary(r.vector), i * c.dim);
      if (r.metadata !== null) {
        metadata = typeof r.metadata === 'string' ? (JSON.parse(r.metadata) as Record<string, unknown>) : r.metadata;
      }
      page.metadata.push(metadata);
    });
    if (rows.length > 0) yield page;
    lastLsn = Number(tail[0].lsn);
    lastId = tail[0].id;
  }
}
