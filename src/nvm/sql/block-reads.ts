import { InvalidArgumentError } from '../../core/errors.js';
import { isArray } from '../../core/ids.js';
import { mapDbErrors } from '../db-errors.js';
import type { NvmCollection, StoredBlock } from '../nvm-store.js';
import type { SqlDriver } from '../sql-driver.js';
import { vectorFromBinary } from '../vector-codec.js';
import { vectorsTable } from './catalogue.js';

/** A block row as the reads select it (vectors as pgvector's binary form, chunk order). */
export type BlockRow = {
  id: string;
  name: string | null;
  content: string | null;
  metadata: Record<string, unknown> | string;
  version: string | number;
  vectors: Uint8Array[] | null;
};

/** The stored blocks of `ids` that exist (with their chunk vectors unless `withVectors` is false). */
export async function getBlocks(
  db: SqlDriver,
  c: NvmCollection,
  ids: readonly string[],
  withVectors = true,
): Promise<Map<string, StoredBlock>> {
  const collection = c.name;
  if (!isArray(ids)) throw new InvalidArgumentError('getBlocks: ids must be an array');
  const out = new Map<string, StoredBlock>();
  if (ids.length === 0) return out;
  const { rows } = await mapDbErrors(() =>
    db.query<BlockRow>(
      withVectors
        ? `SELECT b.id, b.name, b.content, b.metadata, b.version,
              array_agg(vector_send(v.embedding) ORDER BY v.chunk) FILTER (WHERE v.chunk IS NOT NULL) AS vectors
         FROM hs_blocks b LEFT JOIN ${vectorsTable(c.id)} v ON v.block_id = b.id
        WHERE b.collection = $1 AND b.id = ANY($2)
        GROUP BY b.id, b.name, b.content, b.metadata, b.version`
        : `SELECT b.id, b.name, b.content, b.metadata, b.version, NULL AS vectors
         FROM hs_blocks b WHERE b.collection = $1 AND b.id = ANY($2)`,
      [collection, [...ids]],
    ),
  );
  for (const r of rows) out.set(r.id, storedBlockOf(r));
  return out;
}

/** A selected row as a {@link StoredBlock} (metadata parsed where the driver gave text). */
export function storedBlockOf(r: BlockRow): StoredBlock {
  return {
    id: r.id,
    name: r.name,
    content: r.content,
    metadata: typeof r.metadata === 'string' ? (JSON.parse(r.metadata) as Record<string, unknown>) : r.metadata,
    version: Number(r.version),
    vectors: (r.vectors ?? []).map(vectorFromBinary),
  };
}

/** The stored versions of `ids` that exist. */
export async function versions(db: SqlDriver, c: NvmCollection, ids: readonly string[]): Promise<Map<string, number>> {
  if (!isArray(ids)) throw new InvalidArgumentError('versions: ids must be an array');
  const out = new Map<string, number>();
  if (ids.length === 0) return out;
  const { rows } = await mapDbErrors(() =>
    db.query<{ id: string; version: string | number }>(
      'SELECT id, version FROM hs_blocks WHERE collection = $1 AND id = ANY($2)',
      [c.name, [...ids]],
    ),
  );
  for (const r of rows) out.set(r.id, Number(r.version));
  return out;
}

/** How many blocks and chunk vectors the collection holds. */
export async function counts(db: SqlDriver, c: NvmCollection): Promise<{ blocks: number; vectors: number }> {
  const collection = c.name;
  const { rows } = await mapDbErrors(() =>
    db.query<{ blocks: string; vectors: string }>(
      `SELECT (SELECT count(*) FROM hs_blocks WHERE collection = $1) AS blocks, (SELECT count(*) FROM ${vectorsTable(c.id)}) AS vectors`,
      [collection],
    ),
  );
  return { blocks: Number(rows[0].blocks), vectors: Number(rows[0].vectors) };
}
