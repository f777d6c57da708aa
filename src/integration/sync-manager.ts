import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ChangeLogGapError, CollectionNotFoundError, InvalidArgumentError } from '../core/errors.js';
import { withDefaults } from '../core/options.js';
import type { BlockInput, Change, NvmStore } from '../nvm/nvm-store.js';
import type { CollectionState } from './collection-state.js';
import type { TieredCache } from './tiered-cache.js';
import { SYNC_DIRECTIONS, type SyncDirection } from './sync-direction.js';
import type { WriteAheadLog } from './write-ahead-log.js';

/** Blocks per statement when the WAL is persisted (≈0.1 s on PGlite for 384-d vectors). */
const PERSIST_SLICE = 2_000;

/** Options of {@link SyncManager}. */
export interface SyncManagerOptions {
  /** How often the change log is polled besides LISTEN/NOTIFY wake-ups (ms, default 1000). */
  pollIntervalMs?: number;
  /** Change-log rows read per round (default 10,000). */
  batch?: number;
  /** How often WAL-only writes are persisted to the NVM (ms, default 1000; 0: only on demand). */
  walSyncIntervalMs?: number;
  /** Rewrite the write-ahead log once it is this large and everything in it is persisted (default 64 MiB). */
  walCheckpointBytes?: number;
}

/** What the sync manager works on (owned by HyperSync). */
export interface SyncContext {
  nvm: NvmStore;
  wal: WriteAheadLog;
  cache: TieredCache;
  log: Logger;
  states: ReadonlyMap<string, CollectionState>;
  /** A change names a collection this process does not hold: look it up and load it. */
  discover(name: string): Promise<void>;
  /** Compares the collections held with the NVM's catalogue: loads new ones, forgets dropped ones. */
  refreshCatalogue(): Promise<void>;
  /** Rebuilds a collection from the NVM off to the side and switches to it (the log was pruned past it). */
  rebuild(name: string): Promise<unknown>;
  /** A background failure nobody awaits. */
  onError(err: Error): void;
}

/**
 * Keeps the tiers in step. NVM → HVS: tails the change log from the position each collection has
 * applied, woken by LISTEN/NOTIFY and by a polling timer, and applies the current state of every
 * block a change names. HVS → NVM: persists WAL-only writes, then marks them complete in the log.
 */
export class SyncManager {
  readonly opts: Required<SyncManagerOptions>;
  private tailing: Promise<void> | undefined;
  private again = false;
  private persisting: Promise<number> | undefined;
  /** The run after the one in flight, for calls made during it (see {@link persistWal}). */
  private persistNext: Promise<number> | undefined;
  private refreshing: Promise<void> | undefined;
  private timers: NodeJS.Timeout[] = [];
  private unlisten: (() => Promise<void>) | undefined;
  private stopped = false;
  /**
   * Collections left behind by a prune of the change log (their position is before its horizon),
   * with their rebuild from the NVM: tailing skips them until it has switched them over.
   */
  private readonly lagging = new Map<string, Promise<void>>();

  constructor(
    private readonly ctx: SyncContext,
    opts: { [K in keyof SyncManagerOptions]?: SyncManagerOptions[K] | undefined } = {},
    /** Wake on LISTEN/NOTIFY besides the polling timer (default true). */
    private readonly listen = true,
  ) {
    this.opts = withDefaults(
      { pollIntervalMs: 1000, batch: 10_000, walSyncIntervalMs: 1000, walCheckpointBytes: 64 * 2 ** 20 },
      opts,
    );
    for (const [k, v] of Object.entries(this.opts)) {
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`${k} must be a non-negative integer, got ${String(v)}`);
    }
    if (this.opts.batch < 1) throw new RangeError('batch must be at least 1');
  }

  /** Subscribes to change notifications and starts the timers. */
  async start(): Promise<void> {
    if (this.listen) this.unlisten = await this.ctx.nvm.onChange(() => this.wake());
    if (this.opts.pollIntervalMs > 0) {
      this.timers.push(
        setInterval(() => {
          this.wake();
          this.refreshing ??= this.ctx
            .refreshCatalogue()
            .catch((e: unknown) => this.ctx.onError(asError(e)))
            .finally(() => (this.refreshing = undefined));
        }, this.opts.pollIntervalMs).unref(),
      );
    }
    if (this.opts.walSyncIntervalMs > 0) {
      this.timers.push(
        setInterval(() => {
          if (this.ctx.wal.pendingCount > 0) this.persistWal().catch((e: unknown) => this.ctx.onError(asError(e)));
        }, this.opts.walSyncIntervalMs).unref(),
      );
    }
  }

  /** Starts a tailing round (or queues one after the round in flight). */
  wake(): void {
    if (this.stopped) return;
    if (this.tailing) {
      this.again = true;
      return;
    }
    this.tailing = (async () => {
      try {
        do {
          this.again = false;
          while ((await this.tailOnce()) === this.opts.batch && !this.stopped);
        } while (this.again && !this.stopped);
      } catch (err) {
        this.ctx.onError(asError(err));
      } finally {
        this.tailing = undefined;
      }
    })();
  }

  /**
   * Brings the tiers in step now: WAL-only writes are persisted to the NVM (`hvs-to-nvm`), then
   * the change log is applied to the HVS up to its newest lsn (`nvm-to-hvs`); default both.
   */
  async syncNow(direction: SyncDirection = 'both'): Promise<{ persisted: number; lsn: number }> {
    if (!SYNC_DIRECTIONS.includes(direction))
      throw new InvalidArgumentError(`direction must be one of ${SYNC_DIRECTIONS.join(', ')}, got ${JSON.stringify(direction)}`);
    const persisted = direction === 'nvm-to-hvs' ? 0 : await this.persistWal();
    if (direction !== 'hvs-to-nvm') await this.catchUp();
    return { persisted, lsn: await this.ctx.nvm.lastLsn() };
  }

  /** Runs tailing rounds until the change log is applied up to the newest lsn at the call. */
  async catchUp(): Promise<void> {
    const target = await this.ctx.nvm.lastLsn();
    for (;;) {
      await this.tailing;
      await Promise.all(this.lagging.values());
      await this.tailOnce();
      const ready = [...this.ctx.states.values()].filter((s) => s.status === 'ready');
      if (ready.every((s) => s.lsn >= target)) return;
    }
  }

  /**
   * One round: the change-log rows after the smallest position any ready collection has
   * applied, applied per collection; returns how many rows were read.
   */
  private async tailOnce(): Promise<number> {
    const ready = [...this.ctx.states.values()].filter((s) => s.status === 'ready' && !this.lagging.has(s.name));
    // Read first: every change up to `newest` is committed (writes hold one lock), so once the
    // rows after `from` are applied, nothing up to `newest` is missing, even where the log has
    // gaps (a dropped collection takes its rows with it).
    const newest = await this.ctx.nvm.lastLsn();
    const from = ready.length > 0 ? Math.min(...ready.map((s) => s.lsn)) : newest;
    let changes: Change[];
    try {
      changes = from < newest ? await this.ctx.nvm.changesAfter(from, this.opts.batch) : [];
    } catch (err) {
      if (!(err instanceof ChangeLogGapError)) throw err;
      // Rows some collections still need were pruned: rebuild those, and tail the others.
      for (const s of ready) if (s.lsn < err.prunedThrough) this.rebuildLagging(s.name, err);
      return this.opts.batch;
    }
    const byCollection = new Map<string, Change[]>();
    for (const c of changes) {
      let list = byCollection.get(c.collection);
      if (!list) byCollection.set(c.collection, (list = []));
      list.push(c);
    }
    for (const [name, list] of byCollection) {
      const state = this.ctx.states.get(name);
      if (!state) {
        await this.ctx.discover(name);
        continue;
      }
      if (state.status !== 'ready' || this.lagging.has(name)) continue;
      await applyChanges(this.ctx, state, list);
    }
    const upTo =
      changes.length === this.opts.batch ? changes[changes.length - 1].lsn : Math.max(newest, changes.at(-1)?.lsn ?? 0);
    // Collections without changes in the range have applied it too.
    for (const s of ready) if (s.status === 'ready' && !this.lagging.has(s.name)) s.advance(upTo);
    return changes.length;
  }

  private rebuildLagging(name: string, gap: ChangeLogGapError): void {
    if (this.lagging.has(name) || this.stopped) return;
    this.ctx.log.warn(
      { collection: name, from: gap.from, prunedThrough: gap.prunedThrough },
      'the change log is pruned past this collection; rebuilding it from the NVM',
    );
    const done = this.ctx.rebuild(name).then(
      () => {
        this.lagging.delete(name);
        this.wake();
      },
      async (err: unknown) => {
        this.ctx.log.warn({ collection: name, err: asError(err).message }, 'rebuild after a change-log gap failed; retrying');
        // The next round finds the gap again; a pause keeps a failing rebuild from spinning.
        await new Promise((resolve) => setTimeout(resolve, 1000).unref());
        this.lagging.delete(name);
        this.wake();
      },
    );
    this.lagging.set(name, done);
  }

  /**
   * Persists every WAL-only write to the NVM in one transaction (each block with the version the
   * HVS gave it), then marks those log records complete. When it resolves, every write appended
   * before the call is persisted: a run in flight took its records when it began and may miss
   * the latest, so a call during one waits for it and joins the next run (which all such calls
   * share). Resolves to the number of blocks written or deleted by the run it joined.
   */
  persistWal(): Promise<number> {
    if (this.persisting) {
      this.persistNext ??= this.persisting
        .catch(() => undefined)
        .then(() => {
          this.persistNext = undefined;
          return this.persistWal();
        });
      return this.persistNext;
    }
    this.persisting = this.persistNow().finally(() => {
      this.persisting = undefined;
    });
    return this.persisting;
  }

  private async persistNow(): Promise<number> {
    const { wal, nvm, states } = this.ctx;
    const records = wal.pending();
    if (records.length === 0) return 0;
    const maxSeq = records[records.length - 1].seq;
    const work: { state: CollectionState; upserts: BlockInput[]; deletes: string[] }[] = [];
    for (const state of states.values()) {
      const upserts: BlockInput[] = [];
      const deletes: string[] = [];
      for (const [id, e] of state.walEntries) {
        if (e.seq > maxSeq) continue;
        if (e.item) {
          upserts.push({
            id,
            version: e.item.version,
            vectors: e.item.vectors,
            content: e.item.content,
            metadata: e.item.metadata,
          });
        } else deletes.push(id);
      }
      if (upserts.length + deletes.length > 0) work.push({ state, upserts, deletes });
    }
    let n = 0;
    if (work.length > 0) {
      await nvm.unitOfWork(async (uow) => {
        for (const w of work) {
          try {
            // In slices, yielding between them: on the embedded database each statement runs on
            // this thread, and one statement of every pending write stalled the service for seconds.
            for (let i = 0; i < w.upserts.length; i += PERSIST_SLICE) {
              if (i > 0) await setImmediatePromise();
              await uow.writeBlocks(w.state.name, w.upserts.slice(i, i + PERSIST_SLICE));
            }
            if (w.deletes.length > 0) await uow.deleteBlocks(w.state.name, w.deletes);
            n += w.upserts.length + w.deletes.length;
          } catch (err) {
            // A collection dropped meanwhile: its writes went with it.
            if (!(err instanceof CollectionNotFoundError)) throw err;
          }
        }
      });
    }
    await wal.complete(records.map((r) => r.seq));
    for (const w of work) {
      for (const [id, e] of w.state.walEntries) if (e.seq <= maxSeq) w.state.walEntries.delete(id);
    }
    if (wal.pendingCount === 0 && wal.stats().bytes > this.opts.walCheckpointBytes) await wal.checkpoint();
    this.ctx.log.debug({ blocks: n, records: records.length }, 'persisted write-ahead log to the NVM');
    return n;
  }

  /** Stops the timers and the LISTEN subscription; waits for the round in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.unlisten?.();
    await this.tailing;
    await this.refreshing;
    await this.persisting?.catch(() => undefined);
    await this.persistNext?.catch(() => undefined);
  }
}

/**
 * Applies change-log rows of one collection: every block they name is brought to its current NVM
 * state (read under the collection's lock, so nothing older overwrites what a local write put
 * there since). Blocks with a WAL-only write are left alone until it is persisted.
 */
export async function applyChanges(
  ctx: Pick<SyncContext, 'nvm' | 'cache'>,
  state: CollectionState,
  changes: readonly Change[],
): Promise<void> {
  const fresh = changes.filter((c) => c.lsn > state.lsn);
  if (fresh.length === 0) return;
  const upTo = fresh[fresh.length - 1].lsn;
  await state.lock.runExclusive(async () => {
    if (state.status !== 'ready' && !state.loadingHvs) return;
    const deletedInRange = new Set<string>();
    const last = new Map<string, Change>();
    for (const c of fresh) {
      if (state.walEntries.has(c.blockId)) continue;
      last.set(c.blockId, c);
      if (c.op === 'delete') deletedInRange.add(c.blockId);
    }
    // A block whose newest change in the range is an upsert of the version the HVS already holds
    // (this process wrote it and applied it) needs no read; the rest are read back from the NVM.
    const ids: string[] = [];
    for (const [id, c] of last) {
      if (c.op === 'upsert' && c.version !== null && !deletedInRange.has(id) && state.versionOf(id) === c.version) continue;
      ids.push(id);
    }
    if (ids.length > 0) await reconcile(ctx, state, ids, deletedInRange);
    ctx.cache.invalidate(state.name, last.keys());
    state.advance(upTo);
  });
}

/**
 * Brings blocks to their NVM state in the HVS (caller holds the lock): deleted where the NVM has
 * none, re-read where versions differ or the id was deleted and re-created meanwhile.
 */
export async function reconcile(
  ctx: Pick<SyncContext, 'nvm' | 'cache'>,
  state: CollectionState,
  ids: readonly string[],
  force: ReadonlySet<string> = new Set(),
): Promise<{ upserted: number; deleted: number }> {
  const versions = await ctx.nvm.versions(state.name, ids);
  const fetch: string[] = [];
  const gone: string[] = [];
  for (const id of ids) {
    const nv = versions.get(id);
    const hv = state.versionOf(id);
    if (nv === undefined) {
      if (hv !== undefined) gone.push(id);
    } else if (nv !== hv || force.has(id)) fetch.push(id);
  }
  const deleted = state.deleteBlocks(gone);
  let upserted = 0;
  if (fetch.length > 0) {
    const blocks = await ctx.nvm.getBlocks(state.name, fetch);
    const missing = fetch.filter((id) => !blocks.has(id));
    state.deleteBlocks(missing);
    await state.upsertBlocks(
      [...blocks.values()].map((b) => ({ id: b.id, version: b.version, vectors: b.vectors, metadata: b.metadata })),
    );
    upserted = blocks.size;
  }
  ctx.cache.invalidate(state.name, ids);
  return { upserted, deleted };
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
