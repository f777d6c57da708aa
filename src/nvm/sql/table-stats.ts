import type { SqlDriver } from '../sql-driver.js';

/** Rows a collection writes before its vectors table is first analyzed. */
const FIRST_ANALYZE_ROWS = 1000;

/**
 * Keeps the planner's statistics of each collection's vectors table in step with its growth.
 * PostgreSQL analyzes a new table only when autovacuum comes round (a minute or more); until
 * then it takes any `block_id = …` to match 0.5% of the rows, so a write's lookup of the vectors
 * it replaces runs as a scan of the whole table (24 ms of a 32 ms write of 85 items at 130k rows,
 * and growing with them). Once a collection has written {@link FIRST_ANALYZE_ROWS} rows, and
 * each time the rows written since its last ANALYZE reach the rows written before it, its table
 * is analyzed: in the background, one at a time, never waiting more than a second for a lock.
 */
export class TableStats {
  private readonly written = new Map<string, { since: number; before: number }>();
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly db: SqlDriver,
    /** The collection's vectors table (a generated name, never input), or undefined when gone. */
    private readonly tableOf: (collection: string) => Promise<string | undefined>,
  ) {}

  /** Records `rows` written to `collection` (committed); may start an ANALYZE. */
  wrote(collection: string, rows: number): void {
    let w = this.written.get(collection);
    if (!w) this.written.set(collection, (w = { since: 0, before: 0 }));
    w.since += rows;
    if (this.running || this.closed || w.since < Math.max(FIRST_ANALYZE_ROWS, w.before)) return;
    w.before += w.since;
    w.since = 0;
    this.running = this.analyze(collection).finally(() => {
      this.running = undefined;
    });
  }

  /** Forgets a dropped collection. */
  forget(collection: string): void {
    this.written.delete(collection);
  }

  /** Waits for an ANALYZE in flight; starts no more. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
  }

  private async analyze(collection: string): Promise<void> {
    try {
      const table = await this.tableOf(collection);
      if (table === undefined) return;
      await this.db.transaction(async (tx) => {
        // An index build holds a lock ANALYZE waits for: give up rather than queue behind it.
        await tx.query("SET LOCAL lock_timeout = '1s'");
        await tx.query(`ANALYZE ${table}`);
      });
    } catch {
      // Statistics are an optimisation: a dropped collection, a lock timeout or a lost
      // connection leaves the plans as they were, and the next growth tries again.
    }
  }
}
