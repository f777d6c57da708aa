import type { Logger } from 'pino';
import { ChangeLogGapError, ClosedError, CollectionNotFoundError, InvalidArgumentError } from '../core/errors.js';
import type { Hvs } from '../hvs/hvs.js';
import type { HvsCollection } from '../hvs/hvs-collection.js';
import type { CollectionSpec } from '../hvs/types.js';
import type { NvmStore } from '../nvm/nvm-store.js';
import { CollectionState } from './collection-state.js';
import { rowKey } from './row-keys.js';
import { applyChanges } from './sync-manager.js';
import type { TieredCache } from './tiered-cache.js';

/** Progress of a rebuild's streaming phase. */
export interface StreamProgress {
  rows: number;
  /** Rows the NVM held when the rebuild began (an estimate while writes go on). */
  total: number;
}

/** What a rebuild needs. */
export interface RebuildContext {
  hvs: Hvs;
  nvm: NvmStore;
  log: Logger;
}

const CATCH_UP_BATCH = 10_000;

/**
 * Streams a collection out of the NVM into `target` (a collection nobody searches yet): the
 * newest lsn is read first, so replaying the change log after it afterwards misses nothing
 * written meanwhile. PostgreSQL reads the next page while this one goes into the HVS.
 */
export async function streamInto(
  ctx: RebuildContext,
  collection: string,
  target: HvsCollection,
  opts: { signal?: AbortSignal; onProgress?: (p: StreamProgress) => void | Promise<void> } = {},
): Promise<void> {
  const lsn = await ctx.nvm.lastLsn();
  const total = opts.onProgress ? (await ctx.nvm.counts(collection)).vectors : 0;
  const pages = ctx.nvm.streamVectors(collection);
  let next = pages.next();
  let rows = 0;
  try {
    for (;;) {
      const r = await next;
      if (r.done) break;
      next = pages.next();
      opts.signal?.throwIfAborted();
      const page = r.value;
      if (page.ids.length === 0) continue;
      await target.upsert(
        page.ids.map((id, i) => rowKey(id, page.chunks[i])),
        page.vectors,
        page.versions,
        page.metadata,
      );
      rows += page.ids.length;
      await opts.onProgress?.({ rows, total: Math.max(total, rows) });
    }
  } catch (err) {
    // Let the read in flight finish before the generator is closed.
    await next.catch(() => undefined);
    await pages.return(undefined);
    throw err;
  }
  await target.flush();
  target.advanceLsn(lsn);
}

/**
 * Builds a collection's index from the NVM into `dir` as a snapshot, off to the side: nothing
 * served changes. A worker runs this; HVS processes then {@link installRebuild} the result.
 */
export async function buildSnapshot(
  ctx: RebuildContext,
  collection: string,
  dir: string,
  opts: { signal?: AbortSignal; onProgress?: (p: StreamProgress) => void | Promise<void> } = {},
): Promise<{ dir: string; lsn: number; rows: number }> {
  const c = await ctx.nvm.getCollection(collection);
  const target = ctx.hvs.createDetached(collection, { dim: c.dim, metric: c.metric }, dir);
  try {
    await streamInto(ctx, collection, target, opts);
    const manifest = await target.snapshot();
    return { dir, lsn: manifest.lsn, rows: target.count };
  } finally {
    await target.close();
  }
}

/** How {@link installRebuild} got its new index. */
export interface InstallResult {
  from: 'snapshot' | 'nvm';
  rows: number;
  lsn: number;
  ms: number;
}

/**
 * Replaces a served collection's HVS index by a new one built off to the side: from a worker's
 * snapshot when `snapshotDir` is given and readable (else streamed from the NVM here), brought up
 * to date with the change log while the old index keeps answering, then switched under the
 * collection's lock (with this process's WAL-only writes applied), so no query sees a
 * half-built index. The new index is snapshotted.
 */
export async function installRebuild(
  ctx: RebuildContext & { cache: TieredCache; closing(): boolean },
  state: CollectionState,
  opts: {
    snapshotDir?: string;
    signal?: AbortSignal;
    onProgress?: (p: StreamProgress & { phase: 'stream' | 'catch-up' | 'switch' }) => void | Promise<void>;
    /** False once the collection was dropped meanwhile (checked under its lock, before the switch). */
    isCurrent?: () => boolean;
  } = {},
): Promise<InstallResult> {
  const t0 = performance.now();
  const spec: CollectionSpec = { dim: state.dim, metric: state.metric };
  let c: HvsCollection | undefined;
  let from: InstallResult['from'] = 'nvm';
  if (opts.snapshotDir !== undefined) {
    try {
      c = await ctx.hvs.restoreDetached(state.name, opts.snapshotDir);
      if (c.dim !== spec.dim || c.metric !== spec.metric) {
        await c.close();
        throw new InvalidArgumentError(`snapshot at ${opts.snapshotDir} is of another collection shape`);
      }
      from = 'snapshot';
    } catch (err) {
      c = undefined;
      ctx.log.warn(
        { collection: state.name, dir: opts.snapshotDir, err: (err as Error).message },
        'rebuilt snapshot unreadable here; streaming from the NVM instead',
      );
    }
  }
  const streamHere = async (): Promise<HvsCollection> => {
    const fresh = ctx.hvs.createDetached(state.name, spec);
    try {
      await streamInto(ctx, state.name, fresh, {
        ...(opts.signal ? { signal: opts.signal } : {}),
        onProgress: (p) => opts.onProgress?.({ ...p, phase: 'stream' }),
      });
      return fresh;
    } catch (err) {
      await fresh.close();
      throw err;
    }
  };
  c ??= await streamHere();
  let target = c;
  try {
    const shadow = new CollectionState(state.name, state.dim, state.metric, state.encoder);
    shadow.attach(target);
    shadow.markReady();
    const catchUp = async (): Promise<void> => {
      for (;;) {
        if (ctx.closing()) throw new ClosedError('HyperSync');
        const changes = await ctx.nvm.changesAfter(shadow.lsn, CATCH_UP_BATCH, state.name);
        if (changes.length > 0) await applyChanges(ctx, shadow, changes);
        if (changes.length < CATCH_UP_BATCH) return;
      }
    };
    await opts.onProgress?.({ phase: 'catch-up', rows: target.count, total: target.count });
    try {
      await catchUp();
    } catch (err) {
      // A compact job pruned the change log past the worker's snapshot: stream here instead.
      if (!(err instanceof ChangeLogGapError) || from !== 'snapshot') throw err;
      ctx.log.warn(
        { collection: state.name, snapshotLsn: err.from, prunedThrough: err.prunedThrough },
        'the change log is pruned past the rebuilt snapshot; streaming from the NVM instead',
      );
      await target.close();
      from = 'nvm';
      target = await streamHere();
      shadow.attach(target);
      await catchUp();
    }
    opts.signal?.throwIfAborted();
    await opts.onProgress?.({ phase: 'switch', rows: target.count, total: target.count });
    await state.lock.runExclusive(async () => {
      if (opts.isCurrent && !opts.isCurrent()) throw new CollectionNotFoundError(state.name);
      await catchUp();
      // The newest lsn is applied: every change up to it is committed (see SyncManager.tailOnce).
      shadow.advance(await ctx.nvm.lastLsn());
      // Writes only this process's WAL holds are newer than anything in the NVM for their ids.
      for (const [id, e] of state.walEntries) {
        if (e.item) {
          const { version, vectors, metadata } = e.item;
          await shadow.upsertBlocks([{ id, version, vectors, metadata }]);
        } else shadow.deleteBlocks([id]);
      }
      // Queries take the state's index: point it at the new one before the old one closes.
      state.attach(target);
      state.markReady();
      await ctx.hvs.install(state.name, target);
    });
  } catch (err) {
    if (!ctx.hvs.has(state.name) || state.loadingHvs !== target) await target.close();
    throw err;
  }
  ctx.cache.invalidateCollection(state.name);
  await ctx.hvs.snapshot(state.name);
  const ms = performance.now() - t0;
  ctx.log.info({ collection: state.name, from, rows: target.count, ms: Math.round(ms) }, 'collection %s rebuilt', state.name);
  return { from, rows: target.count, lsn: target.lsn, ms };
}
