import { mapDbErrors } from '../db-errors.js';
import type { NvmCollection } from '../nvm-store.js';
import type { SqlDriver } from '../sql-driver.js';
import { vectorsTable } from './catalogue.js';

/** A digest of the collection's blocks (ids, versions, vectors), the same whatever the order of rows. */
export async function digest(db: SqlDriver, c: NvmCollection): Promise<{ blocks: number; digest: string }> {
  // Per block: md5 over id, version and each chunk's binary vector in chunk order; its first
  // 60 bits as an integer; summed as numeric, so the order of rows does not matter.
  const { rows } = await mapDbErrors(() =>
    db.query<{ blocks: string; digest: string | null }>(
      `SELECT count(*) AS blocks, coalesce(sum(h), 0)::text AS digest FROM (
         SELECT ('x' || substr(md5(convert_to(b.id || ':' || b.version || ':', 'UTF8')
                   || coalesce(string_agg(vector_send(v.embedding), ''::bytea ORDER BY v.chunk), ''::bytea)), 1, 15))::bit(60)::bigint::numeric AS h
           FROM hs_blocks b LEFT JOIN ${vectorsTable(c.id)} v ON v.block_id = b.id
          WHERE b.collection = $1
          GROUP BY b.id, b.version) per_block`,
      [c.name],
    ),
  );
  return { blocks: Number(rows[0].blocks), digest: rows[0].digest ?? '0' };
}
