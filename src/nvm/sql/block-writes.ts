import { InvalidArgumentError } from '../../core/errors.js';
import type { FilterNode } from '../../core/filter.js';
import { assertCollectionName } from '../../core/collection-name.js';
import { assertId, isArray } from '../../core/ids.js';
import { encodeVectorRows } from '../copy-binary.js';
import { mapDbErrors } from '../db-errors.js';
import type { BlockInput, BlockPatch, UnitOfWork, WriteOutcome } from '../nvm-store.js';
import type { SqlDriver, SqlExecutor, TransactionExecutor } from '../sql-driver.js';
import { checkChunkVectors, vectorToText } from '../vector-codec.js';
import { toCollection, vectorsTable } from './catalogue.js';
import { patchInTx, preparePatch } from './block-patch.js';
import { filterToSql } from './filter-sql.js';
import { lockCollection, underWriteLock } from './write-lock.js';

/** A write checked in full, ready for {@link writeInTx}. */
interface PreparedWrite {
  collection: string;
  list: BlockInput[];
  ids: string[];
  chunkIds: string[];
  chunkNos: number[];
  chunkVectors: Float32Array[];
}

/** Chunk vectors from which a write uses binary COPY. */
const COPY_THRESHOLD = 16;

/** Checks a write in full before any of it reaches the database. */
function prepareWrite(collection: string, blocks: readonly BlockInput[]): PreparedWrite {
  assertCollectionName(collection);
  if (!isArray(blocks) || blocks.length === 0) throw new InvalidArgumentError('writeBlocks: blocks must be a non-empty array');
  // Last write of an id wins; checked in full before anything is written.
  const byId = new Map<string, BlockInput>();
  blocks.forEach((b, i) => {
    assertId(b?.id, `blocks[${i}].id`);
    if (b.version !== undefined && (!Number.isSafeInteger(b.version) || b.version < 1)) {
      throw new InvalidArgumentError(`blocks[${i}].version must be a positive integer, got ${String(b.version)}`);
    }
    if (!isArray(b.vectors)) throw new InvalidArgumentError(`blocks[${i}].vectors must be an array`);
    byId.delete(b.id);
    byId.set(b.id, b);
  });
  const list = [...byId.values()];
  const ids = list.map((b) => b.id);
  const chunkIds: string[] = [];
  const chunkNos: number[] = [];
  const chunkVectors: Float32Array[] = [];
  for (const b of list) {
    b.vectors.forEach((v, n) => {
      chunkIds.push(b.id);
      chunkNos.push(n);
      chunkVectors.push(v);
    });
  }
  return { collection, list, ids, chunkIds, chunkNos, chunkVectors };
}

/** Writes `blocks` in one transaction under the write lock, logs them and announces the lsn. */
export async function writeBlocks(db: SqlDriver, collection: string, blocks: readonly BlockInput[]): Promise<WriteOutcome> {
  const prepared = prepareWrite(collection, blocks);
  return mapDbErrors(() =>
    underWriteLock(
      db,
      (tx) => writeInTx(tx, prepared),
      (out) => out.lsn,
    ),
  );
}

/** The SQL of a write, inside a transaction that holds the write lock. */
async function writeInTx(tx: TransactionExecutor, w: PreparedWrite): Promise<WriteOutcome> {
  const { collection, list, ids, chunkIds, chunkNos, chunkVectors } = w;
  const c = toCollection(await lockCollection(tx, collection));
  list.forEach((b) => checkChunkVectors(b.vectors, c.dim, `blocks[id=${b.id}]`));
  const table = vectorsTable(c.id);
  // One statement writes the blocks, gives each its version (explicit, or the stored one + 1,
  // or 1 for a new block: we hold the write lock, so the versions read here cannot change) and
  // its lsn, and logs the changes: each block row is written once, with its final values.
  const { rows } = await tx.query<{ id: string; version: string; lsn: string }>(
    `WITH u AS (
       SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bigint[]) AS u(id, name, content, metadata, version)),
     existing AS (
       SELECT id, version FROM hs_blocks WHERE collection = $1 AND id = ANY($2::text[])),
     up AS (
       INSERT INTO hs_blocks AS b (collection, id, name, content, metadata, version, lsn)
       SELECT $1, u.id, u.name, u.content, u.metadata,
              CASE WHEN u.version >= 0 THEN u.version ELSE coalesce(e.version, 0) + 1 END,
              nextval('hs_changes_lsn_seq')
         FROM u LEFT JOIN existing e ON e.id = u.id
       ON CONFLICT (collection, id) DO UPDATE SET
         name = EXCLUDED.name, content = EXCLUDED.content, metadata = EXCLUDED.metadata,
         version = EXCLUDED.version, lsn = EXCLUDED.lsn
       RETURNING id, version, lsn),
     logged AS (
       INSERT INTO hs_changes (lsn, collection, block_id, op, version)
       SELECT lsn, $1, id, 'upsert', version FROM up),
     -- Only blocks that existed can have old vectors (the new ones are written after this statement).
     replaced AS (
       DELETE FROM ${table} v USING existing e WHERE v.block_id = e.id)
     SELECT up.id, up.version, up.lsn FROM up`,
    [
      collection,
      ids,
      list.map((b) => b.name ?? null),
      list.map((b) => b.content ?? null),
      list.map((b) => JSON.stringify(b.metadata ?? {})),
      list.map((b) => b.version ?? -1),
    ],
  );
  if (chunkIds.length >= COPY_THRESHOLD) {
    // Large batches: binary COPY, no float formatting or parsing.
    await tx.copyBinary(`${table} (block_id, chunk, embedding)`, encodeVectorRows(chunkIds, chunkNos, chunkVectors));
  } else if (chunkIds.length > 0) {
    await tx.query(
      // The vectors travel as text[] and are cast row by row: both drivers quote text arrays.
      `INSERT INTO ${table} (block_id, chunk, embedding)
           SELECT u.b, u.c, u.e::vector FROM unnest($1::text[], $2::int[], $3::text[]) AS u(b, c, e)`,
      [chunkIds, chunkNos, chunkVectors.map(vectorToText)],
    );
  }
  const versions = new Map(rows.map((r) => [r.id, Number(r.version)]));
  const lsns = new Map(rows.map((r) => [r.id, Number(r.lsn)]));
  let lsn = 0;
  for (const l of lsns.values()) lsn = Math.max(lsn, l);
  return { lsn, versions, lsns };
}

/** Deletes the blocks of `ids` in one transaction under the write lock, logs them and announces the lsn. */
export async function deleteBlocks(
  db: SqlDriver,
  collection: string,
  ids: readonly string[],
): Promise<{ deleted: number; lsn: number }> {
  assertCollectionName(collection);
  checkIds(ids);
  return mapDbErrors(() =>
    underWriteLock(
      db,
      async (tx) => {
        const { deleted, lsn } = await deleteInTx(tx, collection, { ids });
        return { deleted, lsn };
      },
      (out) => out.lsn,
    ),
  );
}

/** Deletes the blocks whose metadata match `filter`, like {@link deleteBlocks}; also says which. */
export async function deleteWhere(
  db: SqlDriver,
  collection: string,
  filter: FilterNode,
): Promise<{ deleted: number; lsn: number; ids: string[] }> {
  assertCollectionName(collection);
  // Compiled before the transaction: a bad filter is refused without touching the database.
  const params: unknown[] = [collection];
  const where = filterToSql(filter, 'metadata', params);
  return mapDbErrors(() =>
    underWriteLock(
      db,
      (tx) => deleteInTx(tx, collection, { sql: where, params }),
      (out) => out.lsn,
    ),
  );
}

/**
 * The SQL of a delete, inside a transaction that holds the write lock: the blocks of `ids`, or
 * those that match a compiled filter (over `metadata`, with its parameters after the collection's).
 */
async function deleteInTx(
  tx: SqlExecutor,
  collection: string,
  which: { ids: readonly string[] } | { sql: string; params: unknown[] },
): Promise<{ deleted: number; lsn: number; ids: string[] }> {
  const c = await lockCollection(tx, collection);
  const { rows } =
    'ids' in which
      ? await tx.query<{ id: string }>('DELETE FROM hs_blocks WHERE collection = $1 AND id = ANY($2) RETURNING id', [
          collection,
          [...which.ids],
        ])
      : await tx.query<{ id: string }>(`DELETE FROM hs_blocks WHERE collection = $1 AND ${which.sql} RETURNING id`, which.params);
  const gone = rows.map((r) => r.id);
  if (gone.length === 0) return { deleted: 0, lsn: 0, ids: [] };
  await tx.query(`DELETE FROM ${vectorsTable(c.id)} WHERE block_id = ANY($1)`, [gone]);
  const logged = await tx.query<{ lsn: string }>(
    `INSERT INTO hs_changes (collection, block_id, op) SELECT $1, id, 'delete' FROM unnest($2::text[]) AS id RETURNING lsn`,
    [collection, gone],
  );
  let lsn = 0;
  for (const r of logged.rows) lsn = Math.max(lsn, Number(r.lsn));
  return { deleted: gone.length, lsn, ids: gone };
}

/** Patches a block in one transaction under the write lock, logs it and announces the lsn. */
export async function patchBlock(
  db: SqlDriver,
  collection: string,
  id: string,
  patch: BlockPatch,
): Promise<{ version: number; lsn: number } | undefined> {
  const checked = preparePatch(collection, id, patch);
  return mapDbErrors(() =>
    underWriteLock(
      db,
      async (tx) => {
        await lockCollection(tx, collection);
        return patchInTx(tx, checked);
      },
      (out) => out?.lsn ?? 0,
    ),
  );
}

/** Runs `work`'s writes and deletes in one transaction under the write lock; announces its last lsn. */
export async function unitOfWork<T>(db: SqlDriver, work: (uow: UnitOfWork) => Promise<T>): Promise<{ result: T; lsn: number }> {
  return mapDbErrors(() =>
    underWriteLock(
      db,
      async (tx) => {
        let lsn = 0;
        const uow: UnitOfWork = {
          writeBlocks: async (collection, blocks) => {
            const out = await writeInTx(tx, prepareWrite(collection, blocks));
            lsn = Math.max(lsn, out.lsn);
            return out;
          },
          deleteBlocks: async (collection, ids) => {
            assertCollectionName(collection);
            checkIds(ids);
            const { deleted, lsn: last } = await deleteInTx(tx, collection, { ids });
            lsn = Math.max(lsn, last);
            return { deleted, lsn: last };
          },
          patchBlock: async (collection, id, patch) => {
            const checked = preparePatch(collection, id, patch);
            await lockCollection(tx, collection);
            const out = await patchInTx(tx, checked);
            if (out) lsn = Math.max(lsn, out.lsn);
            return out;
          },
        };
        const result = await work(uow);
        return { result, lsn };
      },
      (out) => out.lsn,
    ),
  );
}

function checkIds(ids: readonly string[]): void {
  if (!isArray(ids)) throw new InvalidArgumentError('ids must be an array');
  ids.forEach((id, i) => assertId(id, `ids[${i}]`));
}
