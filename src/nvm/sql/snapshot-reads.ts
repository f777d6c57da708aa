import { assertCollectionName } from '../../core/collection-name.js';
import { CollectionNotFoundError, InvalidArgumentError } from '../../core/errors.js';
import { mapDbErrors } from '../db-errors.js';
import type { NvmCollection, NvmSnapshot, StoredBlock } from '../nvm-store.js';
import type { SqlDriver, SqlExecutor } from '../sql-driver.js';
import { type BlockRow, storedBlockOf } from './block-reads.js';
import { COLLECTION_COLUMNS, type CollectionRow, toCollection, vectorsTable } from './catalogue.js';
import { lastLsn } from './change-log.js';

/**
 * Runs `read` inside one read-only transaction whose snapshot every read shares. On PostgreSQL
 * `REPEATABLE READ` takes the snapshot at the first query and keeps it to the end: writes
 * committed later stay invisible, writes committed before are wholly in (one transaction each,
 * under the write lock, so the lsns visible are a prefix of the log).
 */
export async function readSnapshot<T>(db: SqlDriver, read: (snap: NvmSnapshot) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    // Before any other statement of the transaction: that is where PostgreSQL allows it.
    await mapDbErrors(() => tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY'));
    const lsn = await lastLsn(tx);
    const { rows } = await mapDbErrors(() =>
      tx.query<CollectionRow>(`SELECT ${COLLECTION_COLUMNS} FROM hs_collections ORDER BY name COLLATE "C"`),
    );
    const collections = rows.map(toCollection);
    const byName = new Map(collections.map((c) => [c.name, c]));
    const find = (name: string): NvmCollection => {
      assertCollectionName(name);
      const c = byName.get(name);
      if (!c) throw new CollectionNotFoundError(name);
      return c;
    };
    return read({
      lsn,
      collections,
      count: async (name) => {
        const c = find(name);
        const r = await mapDbErrors(() =>
          tx.query<{ n: string }>('SELECT count(*) AS n FROM hs_blocks WHERE collection = $1', [c.name]),
        );
        return Number(r.rows[0].n);
      },
      blocks: (name, pageBlocks = 1000) => pagesOf(tx, find(name), pageBlocks),
    });
  });
}

/** The collection's blocks with their vectors, by keyset pages in code-point order of ids. */
async function* pagesOf(tx: SqlExecutor, c: NvmCollection, pageBlocks: number): AsyncGenerator<StoredBlock[]> {
  if (!Number.isInteger(pageBlocks) || pageBlocks < 1)
    throw new InvalidArgumentError(`pageBlocks must be a positive integer, got ${pageBlocks}`);
  let after = '';
  for (;;) {
    // Each block's vectors by a lookup on the vectors table's primary key (block_id, chunk).
    const { rows } = await mapDbErrors(() =>
      tx.query<BlockRow>(
        `SELECT b.id, b.name, b.content, b.metadata, b.version,
                (SELECT array_agg(vector_send(v.embedding) ORDER BY v.chunk)
                   FROM ${vectorsTable(c.id)} v WHERE v.block_id = b.id) AS vectors
           FROM hs_blocks b
          WHERE b.collection = $1 AND b.id COLLATE "C" > $2
          ORDER BY b.id COLLATE "C" LIMIT $3`,
        [c.name, after, pageBlocks],
      ),
    );
    if (rows.length === 0) return;
    yield rows.map(storedBlockOf);
    if (rows.length < pageBlocks) return;
    after = rows[rows.length - 1].id;
  }
}
