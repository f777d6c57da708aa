import { mkdir } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { ClosedError, UnavailableError } from '../core/errors.js';
import { DirLock } from './dir-lock.js';
import type { PgliteReply, PgliteRequest, SerializedDbError } from './pglite-protocol.js';
import { notifySql, type QueryResult, type SqlDriver, type TransactionExecutor, type TransactionOptions } from './sql-driver.js';

/** Distributes `Omit` over a union, so each request keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** A database error from the database thread, with the fields callers test (`code`, …). */
function dbError(e: SerializedDbError): Error {
  return Object.assign(new Error(e.message), e);
}

/**
 * {@link SqlDriver} on embedded PGlite (PostgreSQL in WASM) with the pgvector extension. The
 * database runs in a worker thread (`pglite-worker.ts`): its statements run synchronously, and
 * on the service's thread a large write held every other request until it finished.
 */
export class PgliteDriver implements SqlDriver {
  readonly kind = 'pglite' as const;
  private closing: Promise<void> | undefined;
  private broken: Error | undefined;
  private nextId = 1;
  private nextListen = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<number, (payload: string) => void>();

  private constructor(
    private readonly worker: Worker,
    private readonly lock: DirLock | undefined,
  ) {
    worker.on('message', (r: PgliteReply) => {
      if ('notify' in r) {
        this.listeners.get(r.notify.listenId)?.(r.notify.payload);
        return;
      }
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) worker.unref();
      if (r.ok) p.resolve(r.value);
      else p.reject(dbError(r.error));
    });
    const fail = (err: Error): void => {
      this.broken ??= new UnavailableError(`embedded database thread stopped: ${err.message}`, { cause: err });
      for (const p of this.pending.values()) p.reject(this.broken);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

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
    const ts = import.meta.url.endsWith('.ts');
    const entry = new URL(ts ? './pglite-worker.ts' : './pglite-worker.js', import.meta.url);
    // Run from sources (tests, benchmarks), the worker first registers the TypeScript loader.
    const worker = ts
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`, {
          eval: true,
          workerData: { dataDir },
        })
      : new Worker(entry, { workerData: { dataDir } });
    const driver = new PgliteDriver(worker, lock);
    try {
      // Request 0 is the database opening.
      await new Promise((resolve, reject) => driver.pending.set(0, { resolve, reject }));
      return driver;
    } catch (err) {
      await worker.terminate();
      await lock?.release();
      throw err;
    }
  }

  private call<T>(req: WithoutId<PgliteRequest>): Promise<T> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      // The thread keeps the process alive only while an answer is awaited, like a socket would.
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  private checkOpen(): void {
    if (this.closing) throw new ClosedError('embedded database');
  }

  async query<R = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    this.checkOpen();
    return { rows: await this.call<R[]>({ op: 'query', text, params }) };
  }

  async exec(script: string): Promise<void> {
    this.checkOpen();
    await this.call({ op: 'exec', script });
  }

  async transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    this.checkOpen();
    const tx = await this.call<number>({ op: 'begin', ...(opts.begin ? { begin: opts.begin } : {}) });
    let notify: string | undefined;
    let out: T;
    try {
      out = await fn({
        query: async <R>(text: string, params: readonly unknown[] = []) => ({
          rows: await this.call<R[]>({ op: 'query', tx, text, params }),
        }),
        exec: async (script: string) => {
          await this.call({ op: 'exec', tx, script });
        },
        copyBinary: async (target: string, payload: Buffer) => {
          await this.call({ op: 'copy', tx, target, payload });
        },
        notifyOnCommit: (channel, payload) => {
          notify = notifySql(channel, payload);
        },
      });
    } catch (err) {
      await this.call({ op: 'end', tx, commit: false }).catch(() => undefined);
      throw err;
    }
    await this.call({ op: 'end', tx, commit: true, ...(notify ? { notify } : {}) });
    return out;
  }

  // In-process: the subscription cannot be lost, so there is never a reconnect to report.
  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    this.checkOpen();
    const listenId = this.nextListen++;
    this.listeners.set(listenId, onPayload);
    await this.call({ op: 'listen', listenId, channel });
    return async () => {
      this.listeners.delete(listenId);
      if (!this.closing) await this.call({ op: 'unlisten', listenId });
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (!this.broken) await this.call({ op: 'close' });
      } finally {
        await this.worker.terminate();
        await this.lock?.release();
      }
    })();
    return this.closing;
  }
}
