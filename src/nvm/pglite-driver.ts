import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { ClosedError } from '../core/errors.js';
import { DirLock } from './dir-lock.js';
import { notifySql, type QueryResult, type SqlDriver, type TransactionExecutor, type TransactionOptions } from './sql-driver.js';

/** {@link SqlDriver} on embedded PGlite (PostgreSQL in WASM) with the pgvector extension. */
export class PgliteDriver implements SqlDriver {
  readonly kind = 'pglite' as const;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly db: PGlite,
    private readonly lock: DirLock | undefined,
  ) {}

  /**
   * Opens (or creates) the database in `dataDir`, locked for this store alone
   * ({@link StoreLockedError} if another holds it); `undefined` keeps it in memory.
   */
  static async open(dataDir: string | undefined): Promise<PgliteDriver> {
    let lock: DirLock | undefined;
    if (dataDir) {
      await mkdir(dataDir, { recursive: true });
      lock = await DirLock.acquire(dataDir);
    }
    try {
      const db = await PGlite.create({ ...(dataDir ? { dataDir } : {}), extensions: { vector } });
      return new PgliteDriver(db, lock);
    } catch (err) {
      await lock?.release();
      throw err;
    }
  }

  async query<R = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    if (this.closing) throw new ClosedError('embedded database');
    const res = await this.db.query<R>(text, params as unknown[]);
    return { rows: res.rows };
  }

  async exec(script: string): Promise<void> {
    if (this.closing) throw new ClosedError('embedded database');
    await this.db.exec(script);
  }

  async transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    if (this.closing) throw new ClosedError('embedded database');
    return this.db.transaction(async (t) => {
      if (opts.begin) await t.exec(opts.begin);
      let notify: string | undefined;
      const out = await fn({
        query: async <R>(text: string, params: readonly unknown[] = []) => ({
          rows: (await t.query<R>(text, params as unknown[])).rows,
        }),
        exec: async (script: string) => {
          await t.exec(script);
        },
        // PGlite reads a COPY's input from the virtual file /dev/blob: ~10× faster than INSERT of
        // vectors as text (5,000 × 384: 0.4–0.9 s against 3.6–4.7 s).
        copyBinary: async (target: string, payload: Buffer) => {
          await t.query(`COPY ${target} FROM '/dev/blob' (FORMAT binary)`, [], { blob: new Blob([payload]) });
        },
        notifyOnCommit: (channel, payload) => {
          notify = notifySql(channel, payload);
        },
      });
      if (notify) await t.exec(notify);
      return out;
    });
  }

  // In-process: the subscription cannot be lost, so there is never a reconnect to report.
  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    if (this.closing) throw new ClosedError('embedded database');
    const unlisten = await this.db.listen(channel, onPayload);
    return async () => {
      if (!this.closing) await unlisten();
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.db.close();
      } finally {
        await this.lock?.release();
      }
    })();
    return this.closing;
  }
}
