import { CollectionNotFoundError } from '../../core/errors.js';
import type { SqlDriver, SqlExecutor, TransactionExecutor } from '../sql-driver.js';
import { COLLECTION_COLUMNS, type CollectionRow } from './catalogue.js';
import { CHANGES_CHANNEL } from './change-log.js';

// Every write takes this lock for its transaction, so change-log rows commit in `lsn` order and a
// reader that has seen lsn N never later finds a smaller one appear.
const WRITE_LOCK = 7_316_247_802;

/**
 * Runs `fn` in a transaction that holds the write lock (taken with the BEGIN) and, when
 * `lsnOf(result)` is positive, announces that lsn on {@link CHANGES_CHANNEL} as it commits.
 */
export function underWriteLock<T>(
  db: SqlDriver,
  fn: (tx: TransactionExecutor) => Promise<T>,
  lsnOf: (out: T) => number,
): Promise<T> {
  return db.transaction(
    async (tx) => {
      const out = await fn(tx);
      const lsn = lsnOf(out);
      if (lsn > 0) tx.notifyOnCommit(CHANGES_CHANNEL, String(lsn));
      return out;
    },
    { begin: `SELECT pg_advisory_xact_lock(${WRITE_LOCK})` },
  );
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
