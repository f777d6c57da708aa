/** Rows of a query. */
export interface QueryResult<R> {
  rows: R[];
}

/** Something that runs parameterised SQL (`$1`, `$2`, … placeholders; never string-built values). */
export interface SqlExecutor {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
  /** `COPY … FROM STDIN` with a prepared payload, where the driver can (PostgreSQL only). */
  copyFrom?(sql: string, payload: Buffer): Promise<void>;
}

/**
 * The database under an NVM store: PostgreSQL through a `pg` Pool, or embedded PGlite. Both
 * speak the same SQL; the store is written once against this interface.
 */
export interface SqlDriver extends SqlExecutor {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Subscribes to a NOTIFY channel; resolves to the unsubscribe function. `onReconnect` is
   * called after the subscription was lost and re-established (notifications in between are lost).
   */
  listen(channel: string, onPayload: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>;
  /** Closes the pool or the database; safe to call twice. */
  close(): Promise<void>;
}
