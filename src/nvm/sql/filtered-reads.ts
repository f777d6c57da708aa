import { InvalidArgumentError } from '../../core/errors.js';
import type { FilterNode } from '../../core/filter.js';
import { assertId } from '../../core/ids.js';
import { mapDbErrors } from '../db-errors.js';
import type { NvmCollection, NvmScrollOptions, NvmScrollPage } from '../nvm-store.js';
import type { SqlDriver } from '../sql-driver.js';
import { type BlockRow, storedBlockOf } from './block-reads.js';
import { vectorsTable } from './catalogue.js';
import { filterToSql } from './filter-sql.js';

/** Most blocks one scroll page holds. */
export const SCROLL_LIMIT = 10_000;

/** How many of the collection's blocks match `filter`. */
export async function count(db: SqlDriver, c: NvmCollection, filter: FilterNode = { op: 'all' }): Promise<number> {
  const params: unknown[] = [c.name];
  const where = filterToSql(filter, 'b.metadata', params);
  const { rows } = await mapDbErrors(() =>
    db.query<{ n: string }>(`SELECT count(*) AS n FROM hs_blocks b WHERE b.collection = $1 AND ${where}`, params),
  );
  return Number(rows[0].n);
}

/** Checks scroll options (all but the collection). */
export function checkScroll(opts: NvmScrollOptions): void {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('scroll: options must be an object');
  const { limit, after } = opts;
  if (!Number.isInteger(limit) || limit < 1 || limit > SCROLL_LIMIT) {
    throw new InvalidArgumentError(`limit must be an integer between 1 and ${SCROLL_LIMIT}, got ${String(limit)}`);
  }
  if (after !== undefined) assertId(after, 'after');
}

/** One page of the blocks that match, in code-point order of ids after the cursor. */
export async function scroll(db: SqlDriver, c: NvmCollection, opts: NvmScrollOptions): Promise<NvmScrollPage> {
  checkScroll(opts);
  // One row past the page says whether another follows.
  const params: unknown[] = [c.name, opts.limit + 1];
  // Keyset on (collection, id COLLATE "C"), which migration 005 indexes.
  const after = opts.after === undefined ? '' : `AND b.id COLLATE "C" > $${params.push(opts.after)}::text`;
  const where = filterToSql(opts.filter ?? { op: 'all' }, 'b.metadata', params);
  const page = `SELECT b.id, b.name, b.content, b.metadata, b.version FROM hs_blocks b
                 WHERE b.collection = $1 ${after} AND ${where}
                 ORDER BY b.id COLLATE "C" LIMIT $2`;
  const { rows } = await mapDbErrors(() =>
    db.query<BlockRow>(
      opts.vectors
        ? `SELECT p.*, (SELECT array_agg(vector_send(v.embedding) ORDER BY v.chunk)
                          FROM ${vectorsTable(c.id)} v WHERE v.block_id = p.id) AS vectors
             FROM (${page}) p ORDER BY p.id COLLATE "C"`
        : `SELECT p.*, NULL AS vectors FROM (${page}) p ORDER BY p.id COLLATE "C"`,
      params,
    ),
  );
  const blocks = rows.slice(0, opts.limit).map(storedBlockOf);
  const next = rows.length > opts.limit ? blocks[blocks.length - 1].id : null;
  return { blocks, next };
}
