import { Mutex } from 'async-mutex';
import type { Metric } from '../core/metric.js';
import { UnavailableError } from '../core/errors.js';
import type { HvsCollection } from '../hvs/hvs-collection.js';
import type { EncoderRef } from '../nvm/nvm-store.js';
import { rowKey } from './row-keys.js';
import type { WalUpsertItem } from './wal-format.js';

/** A block's vectors and version as the HVS indexes them. */
export interface IndexedBlock {
  id: string;
  version: number;
  vectors: readonly Float32Array[];
  /** The block's metadata, which every chunk row carries for filters. */
  metadata: Record<string, unknown>;
}

/** A write held by the local write-ahead log only: the upserted item, or `null` for a delete. */
export interface WalEntry {
  seq: number;
  item: WalUpsertItem | null;
}

/**
 * One collection as this HyperSync process holds it: its HVS index (once loaded), the lock that
 * orders every change applied to it, the change-log position applied, and the writes that only
 * the local write-ahead log holds so far.
 */
export class CollectionState {
  status: 'loading' | 'ready' | 'failed' = 'loading';
  error: Error | undefined;
  private _hvs: HvsCollection | undefined;
  /** Orders changes applied to the HVS: the change-log tail, local writes, repairs. */
  readonly lock = new Mutex();
  /** WAL-only writes by block id (the last one per id). */
  readonly walEntries = new Map<string, WalEntry>();
  /** One rebuild at a time; while one runs, the old index is not snapshotted (they share a directory). */
  readonly rebuildLock = new Mutex();
  rebuilding = false;
  /** HVS rows of chunks after the first (blocks with several vectors); search over-fetches when > 0. */
  extraChunkRows = 0;
  private waiters: { lsn: number; resolve: (ok: boolean) => void }[] = [];
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  /** When this process took the collection up (`performance.now()`). */
  readonly since = performance.now();

  constructor(
    readonly name: string,
    readonly dim: number,
    readonly metric: Metric,
    /** The encoder the collection named at creation, if any. */
    readonly encoder?: EncoderRef,
  ) {}

  get hvs(): HvsCollection | undefined {
    return this.status === 'ready' ? this._hvs : undefined;
  }

  /** The HVS collection whatever the status (loading code fills it before it is ready). */
  get loadingHvs(): HvsCollection | undefined {
    return this._hvs;
  }

  /** The change-log position applied (0 while loading). */
  get lsn(): number {
    return this._hvs?.lsn ?? 0;
  }

  /** Installs a loaded HVS collection (not yet ready: the change-log tail is replayed first). */
  attach(hvs: HvsCollection): void {
    this._hvs = hvs;
    this.extraChunkRows = 0;
    for (const key of hvs.ids()) if (key.includes('\u0000')) this.extraChunkRows++;
  }

  markReady(): void {
    this.status = 'ready';
    this.error = undefined;
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    this.notify();
  }

  markFailed(err: Error): void {
    this.status = 'failed';
    this.error = err;
    for (const w of this.readyWaiters.splice(0)) w.reject(err);
  }

  /** Resolves when the HVS serves this collection; rejects if loading failed. */
  whenReady(): Promise<void> {
    if (this.status === 'ready') return Promise.resolve();
    if (this.status === 'failed')
      return Promise.reject(this.error ?? new UnavailableError(`collection ${this.name} failed to load`));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Records that the change log is applied up to `lsn` and wakes `minLsn` waiters. */
  advance(lsn: number): void {
    const h = this._hvs;
    if (!h || lsn <= h.lsn) return;
    h.advanceLsn(lsn);
    this.notify();
  }

  /** Resolves true once `lsn` is applied, false after `timeoutMs`. */
  waitForLsn(lsn: number, timeoutMs: number): Promise<boolean> {
    if (this.status === 'ready' && this.lsn >= lsn) return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const w: { lsn: number; resolve: (ok: boolean) => void } = { lsn, resolve: () => undefined };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(false);
      }, timeoutMs);
      w.resolve = (ok: boolean) => {
        clearTimeout(timer);
        resolve(ok);
      };
      this.waiters.push(w);
    });
  }

  private notify(): void {
    if (this.status !== 'ready') return;
    const lsn = this.lsn;
    const due = this.waiters.filter((w) => w.lsn <= lsn);
    if (due.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.lsn > lsn);
    for (const w of due) w.resolve(true);
  }

  /** Wakes every `minLsn` waiter with false (closing). */
  cancelWaiters(): void {
    for (const w of this.waiters.splice(0)) w.resolve(false);
    for (const w of this.readyWaiters.splice(0)) w.reject(new UnavailableError(`collection ${this.name} is closing`));
  }

  /** The HVS version of a block (its chunk 0 row). */
  versionOf(id: string): number | undefined {
    return this._hvs?.versionOf(id);
  }

  /**
   * Writes blocks into the HVS: one row per chunk (all rows of a block carry its version); rows
   * of chunks a block no longer has are deleted. Vectors are normalised already for cosine.
   */
  async upsertBlocks(blocks: readonly IndexedBlock[]): Promise<void> {
    const h = this._hvs;
    if (!h || blocks.length === 0) return;
    const keys: string[] = [];
    const vectors: Float32Array[] = [];
    const versions: number[] = [];
    const metadata: Record<string, unknown>[] = [];
    const stale: string[] = [];
    for (const b of blocks) {
      b.vectors.forEach((v, c) => {
        keys.push(rowKey(b.id, c));
        vectors.push(v);
        versions.push(b.version);
        metadata.push(b.metadata);
        if (c > 0 && !h.has(rowKey(b.id, c))) this.extraChunkRows++;
      });
      for (let c = Math.max(1, b.vectors.length); h.has(rowKey(b.id, c)); c++) stale.push(rowKey(b.id, c));
      if (b.vectors.length === 0 && h.has(b.id)) stale.push(b.id);
    }
    if (stale.length > 0) this.removeRows(stale);
    if (keys.length > 0) await h.upsert(keys, vectors, versions, metadata);
  }

  /** Deletes blocks (every chunk row) from the HVS; returns how many were there. */
  deleteBlocks(ids: Iterable<string>): number {
    const h = this._hvs;
    if (!h) return 0;
    let n = 0;
    for (const id of ids) {
      if (h.has(id)) n++;
      const keys = [id];
      for (let c = 1; h.has(rowKey(id, c)); c++) keys.push(rowKey(id, c));
      this.removeRows(keys);
    }
    return n;
  }

  private removeRows(keys: string[]): void {
    const h = this._hvs;
    if (!h) return;
    for (const k of keys) if (k.includes('\u0000') && h.has(k)) this.extraChunkRows--;
    h.delete(keys);
  }
}
