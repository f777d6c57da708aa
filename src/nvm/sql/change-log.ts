import { ChangeLogGapError, InvalidArgumentError } from '../../core/errors.js';
import { assertCollectionName } from '../../core/collection-name.js';
import { mapDbErrors } from '../db-errors.js';
import type { Change } from '../nvm-store.js';
import type { SqlDriver, SqlExecutor } from '../sql-driver.js';

/** The channel every committed change is announced on (payload: the transaction's last lsn). */
export const CHANGES_CHANNEL = 'hs_changes';

/** The changes after `lsn`, oldest first; a {@link ChangeLogGapError} when `lsn` is below the pruned horizon. */
export async function changesAfter(db: SqlDriver, lsn: number, limit = 10_000, collection?: string): Promise<Change[]> {
  if (!Number.isSafeInteger(lsn) || lsn < 0) throw new InvalidArgumentError(`lsn must be a non-negative integer, got ${lsn}`);
  if (!Number.isInteger(limit) || limit < 1) throw new InvalidArgumentError(`limit must be a positive integer, got ${limit}`);
  if (collection !== undefined) assertCollectionName(collection);
  // The horizon and the rows in one statement, so one snapshot: a prune cannot fall between them.
  const { rows } = await mapDbErrors(() =>
    db.query<{
      horizon: string;
      lsn: string | null;
      collection: string;
      block_id: string;
      op: 'upsert' | 'delete';
      version: string | null;
    }>(
      `WITH h AS (SELECT coalesce(max(pruned_through), 0) AS horizon FROM hs_change_horizon)
       SELECT h.horizon, c.lsn, c.collection, c.block_id, c.op, c.version
         FROM h LEFT JOIN LATERAL (
           SELECT lsn, collection, block_id, op, version FROM hs_changes
            WHERE lsn > $1 AND ($3::text IS NULL OR collection = $3) ORDER BY lsn LIMIT $2
         ) c ON true
        ORDER BY c.lsn`,
      [lsn, limit, collection ?? null],
    ),
  );
  const horizon = Number(rows[0]?.horizon ?? 0);
  if (lsn < horizon) throw new ChangeLogGapError(lsn, horizon);
  return rows
    .filter((r) => r.lsn !== null)
    .map((r) => ({
      lsn: Number(r.lsn),
      collection: r.collection,
      blockId: r.block_id,
      op: r.op,
      version: r.version === null ? null : Number(r.version),
    }));
}

/** Deletes the changes through `throughLsn` (never past the newest) and moves the horizon up. */
export async function pruneChanges(db: SqlDriver, throughLsn: number): Promise<{ deleted: number; prunedThrough: number }> {
  if (!Number.isSafeInteger(throughLsn) || throughLsn < 0) {
    throw new InvalidArgumentError(`throughLsn must be a non-negative integer, got ${throughLsn}`);
  }
  return mapDbErrors(() =>
    db.transaction(async (tx) => {
      const { rows } = await tx.query<{ newest: string; horizon: string }>(
        `SELECT coalesce((SELECT max(lsn) FROM hs_changes), 0) AS newest,
                coalesce((SELECT pruned_through FROM hs_change_horizon FOR UPDATE), 0) AS horizon`,
      );
      const horizon = Number(rows[0].horizon);
      // Never past the newest row (lastLsn stays put), never back.
      const through = Math.max(horizon, Math.min(throughLsn, Math.max(Number(rows[0].newest), horizon)));
      if (through === horizon) return { deleted: 0, prunedThrough: horizon };
      const del = await tx.query<{ n: string }>(
        'WITH d AS (DELETE FROM hs_changes WHERE lsn <= $1 RETURNING 1) SELECT count(*) AS n FROM d',
        [through],
      );
      await tx.query(
        `INSERT INTO hs_change_horizon (singleton, pruned_through) VALUES (true, $1)
         ON CONFLICT (singleton) DO UPDATE SET pruned_through = greatest(hs_change_horizon.pruned_through, $1)`,
        [through],
      );
      return { deleted: Number(del.rows[0].n), prunedThrough: through };
    }),
  );
}

/** The lsn the log is pruned through (0 when never pruned). */
export async function changesPrunedThrough(db: SqlDriver): Promise<number> {
  const { rows } = await mapDbErrors(() =>
    db.query<{ horizon: string }>('SELECT coalesce(max(pruned_through), 0) AS horizon FROM hs_change_horizon'),
  );
  return Number(rows[0].horizon);
}

/** The newest lsn logged, pruned or not. */
export async function lastLsn(db: SqlExecutor): Promise<number> {
  // Pruned rows and dropped collections' rows still count: the log's newest lsn never moves back.
  const { rows } = await mapDbErrors(() =>
    db.query<{ lsn: string }>(
      `SELECT greatest(coalesce((SELECT max(lsn) FROM hs_changes), 0),
                       coalesce((SELECT max(pruned_through) FROM hs_change_horizon), 0),
                       coalesce((SELECT max(lsn) FROM hs_lsn_floor), 0)) AS lsn`,
    ),
  );
  return Number(rows[0].lsn);
}

/** Calls `listener` with the last lsn of each committed write; resolves to the unsubscribe function. */
export function onChange(db: SqlDriver, listener: (lsn: number) => void): Promise<() => Promise<void>> {
  return mapDbErrors(() =>
    db.listen(
      CHANGES_CHANNEL,
      (payload) => listener(Number(payload)),
      // After a lost connection: report the newest lsn, so the listener catches up on what it missed.
      () => {
        lastLsn(db).then(listener, () => undefined);
      },
    ),
  );
}
