import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ClosedError, UnavailableError } from '../core/errors.js';
import { notifySql, type QueryResult, type SqlDriver, type TransactionExecutor, type TransactionOptions } from './sql-driver.js';

/**
 * The `pg` driver raises a `DatabaseError` carrying a SQLSTATE for everything the server answered;
 * anything else it raises on a query or a checkout (a refused or reset socket, a connection ended
 * mid-query, a pool checkout timeout) is the transport failing. Those become
 * {@link UnavailableError} here, at the boundary, so callers branch on types and SQLSTATE codes,
 * never on message text. Programming errors (a value the driver cannot serialise) pass through.
 */
function fromTransport(err: unknown): unknown {
  if (err instanceof pg.DatabaseError || err instanceof TypeError || err instanceof RangeError) return err;
  if (!(err instanceof Error)) return err;
  return new UnavailableError(`database unavailable: ${err.message}`, { cause: err });
}

async function onTransport<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw fromTransport(err);
  }
}

/** A SQLSTATE of class 08 (connection exception) or 57P (operator intervention: shutdown). */
function isConnectionState(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('57P') || code.startsWith('08'));
}

/** Options of {@link PgDriver}. */
export interface PgDriverOptions {
  connectionString: string;
  /** Pool size (default 10). */
  max?: number;
  /** Milliseconds to wait for a connection before failing (default 5,000). */
  connectionTimeoutMillis?: number;
}

/** {@link SqlDriver} on a real PostgreSQL through a `pg` Pool. */
export class PgDriver implements SqlDriver {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly listeners = new Set<pg.Client>();
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: PgDriverOptions) {
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.max ?? 10,
      connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 5000,
    });
    // An idle client that loses its server (a restart) must not crash the process.
    this.pool.on('error', () => undefined);
    // No vector type parser is registered: vectors travel in pgvector's binary form
    // (`vector_send`, binary COPY) or as text casts, so no column ever arrives as `vector`, and a
    // fresh connection answers its first query at once.
  }

  async query<R = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    if (this.closing) throw new ClosedError('PostgreSQL driver');
    const res = await onTransport(() => this.pool.query(text, params as unknown[]));
    return { rows: res.rows as R[] };
  }

  async exec(script: string): Promise<void> {
    if (this.closing) throw new ClosedError('PostgreSQL driver');
    await onTransport(() => this.pool.query(script));
  }

  async transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    if (this.closing) throw new ClosedError('PostgreSQL driver');
    const client = await onTransport(() => this.pool.connect());
    // A checked-out client whose server goes away emits 'error'; without a listener that would
    // be an uncaught exception. The query in flight rejects anyway and is reported from there.
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on('error', onError);
    try {
      // One round trip each for BEGIN (with the opening script) and COMMIT (with the NOTIFY):
      // under a write lock every round trip is time all other writers wait.
      await onTransport(() => client.query(opts.begin ? `BEGIN; ${opts.begin}` : 'BEGIN'));
      let notify: string | undefined;
      const tx: TransactionExecutor = {
        notifyOnCommit: (channel, payload) => {
          notify = notifySql(channel, payload);
        },
        query: async <R>(text: string, params: readonly unknown[] = []) => ({
          rows: (await onTransport(() => client.query(text, params as unknown[]))).rows as R[],
        }),
        exec: async (script: string) => {
          await onTransport(() => client.query(script));
        },
        copyBinary: async (target: string, payload: Buffer) => {
          const sql = `COPY ${target} FROM STDIN (FORMAT binary)`;
          await onTransport(() => pipeline(Readable.from([payload]), client.query(copyFrom(sql))));
        },
      };
      const out = await fn(tx);
      await onTransport(() => client.query(notify ? `${notify}; COMMIT` : 'COMMIT'));
      return out;
    } catch (err) {
      broken ??= err instanceof UnavailableError || isConnectionState(err) ? (err as Error) : undefined;
      if (!broken) await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.off('error', onError);
      // A broken connection is destroyed rather than handed to the next caller.
      client.release(broken);
    }
  }

  async listen(channel: string, onPayload: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>> {
    if (this.closing) throw new ClosedError('PostgreSQL driver');
    let stopped = false;
    let client: pg.Client | undefined;
    let delay = 100;
    // A dedicated connection holds the LISTEN (pooled clients are shared and recycled). When the
    // server drops it (a restart), it is re-established with backoff; notifications sent in
    // between are lost, so `onReconnect` lets the caller catch up from the change log.
    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.opts.connectionString });
      const lost = (): void => {
        if (stopped || client !== c) return;
        client = undefined;
        this.listeners.delete(c);
        setTimeout(() => void retry(), delay).unref();
      };
      c.on('error', lost);
      c.on('end', lost);
      c.on('notification', (msg) => {
        if (msg.channel === channel && msg.payload !== undefined) onPayload(msg.payload);
      });
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      client = c;
      this.listeners.add(c);
    };
    const retry = async (): Promise<void> => {
      if (stopped || this.closing) return;
      try {
        await connect();
        delay = 100;
        onReconnect?.();
      } catch {
        delay = Math.min(delay * 2, 5000);
        setTimeout(() => void retry(), delay).unref();
      }
    };
    await connect();
    return async () => {
      stopped = true;
      const c = client;
      client = undefined;
      if (c && this.listeners.delete(c)) await c.end().catch(() => undefined);
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.listeners) await c.end().catch(() => undefined);
      this.listeners.clear();
      await this.pool.end();
    })();
    return this.closing;
  }
}
