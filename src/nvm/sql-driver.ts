/** Rows of a query. */
export interface QueryResult<R> {
  rows: R[];
}

/** Something that runs parameterised SQL (`$1`, `$2`, … placeholders; never string-built values). */
export interface SqlExecutor {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

/** A transaction's executor: also queues a notification sent as it commits. */
export interface TransactionExecutor extends SqlExecutor {
  /**
   * Binary `COPY` of a prepared payload (PostgreSQL's binary COPY format) into `target`, a table
   * and its column list (`t (a, b)`, never built from input): from STDIN on PostgreSQL, through
   * the `/dev/blob` file on PGlite.
   */
  copyBinary(target: string, payload: Buffer): Promise<void>;
  /**
   * Sends `NOTIFY channel, payload` with the COMMIT (in the same round trip where the driver
   * can); the last call wins. `channel` must be a plain lower-case identifier.
   */
  notifyOnCommit(channel: string, payload: string): void;
}

/** Options of {@link SqlDriver.transaction}. */
export interface TransactionOptions {
  /**
   * A fixed script (no parameters, no values from input) run first in the transaction, sent
   * with the BEGIN where the driver can: e.g. taking an advisory lock, without a round trip of its own.
   */
  begin?: string;
}

/** The SQL of a NOTIFY (identifier checked, payload quoted as a literal). */
export function notifySql(channel: string, payload: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad NOTIFY channel ${JSON.stringify(channel)}`);
  return `NOTIFY ${channel}, '${payload.replace(/'/g, "''")}'`;
}

/**
 * The database under an NVM store: PostgreSQL through a `pg` Pool, or embedded PGlite. Both
 * speak the same SQL; the store is written once against this interface.
 */
export interface SqlDriver extends SqlExecutor {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /**
   * Subscribes to a NOTIFY channel; resolves to the unsubscribe function. `onReconnect` is
   * called after the subscription was lost and re-established (notifications in between are lost).
   */
  listen(channel: string, onPayload: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>;
  /** Closes the pool or the database; safe to call twice. */
  close(): Promise<void>;
}
