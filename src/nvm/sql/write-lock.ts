import { CollectionNotFoundError } from '../../core/errors.js';
import type { SqlExecutor } from '../sql-driver.js';
import { COLLECTION_COLUMNS, type CollectionRow } from './catalogue.js';

// Every write takes this lock for its transaction, so change-log rows commit in `lsn` order and a
// reader that has seen lsn N never later finds a smaller one appear.
const WRITE_LOCK = 7_316_247_802;

/** Takes the write lock for the transaction of `tx`. */
export async function takeWriteLock(tx: SqlExecutor): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK]);
}

/**
 * The catalogue row of `collection`, locked against a concurrent drop for the transaction (the
 * authority on its dimension: a cached row could be stale); {@link CollectionNotFoundError} if none.
 */
export async function lockCollection(tx: SqlExecutor, collection: string): Promise<CollectionRow> {
  const found = await tx.query<CollectionRow>(`SELECT ${COLLECTION_COLUMNS} FROM hs_collections WHERE name = $1 FOR SHARE`, [
    collection,
  ]);
  if (found.rows.length === 0) throw new CollectionNotFoundError(collection);
  return found.rows[0];
}
