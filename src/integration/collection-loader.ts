import type { Logger } from 'pino';
import { ChangeLogGapError, ClosedError, SnapshotCorruptError } from '../core/errors.js';
import type { Hvs } from '../hvs/hvs.js';
import type { HvsCollection } from '../hvs/hvs-collection.js';
import type { NvmStore } from '../nvm/nvm-store.js';
import type { CollectionState } from './collection-state.js';
import { streamInto } from './rebuild.js';
import { applyChanges } from './sync-manager.js';
import type { TieredCache } from './tiered-cache.js';

/** What loading a collection needs. */
export interface LoadContext {
  hvs: Hvs;
  nvm: NvmStore;
  cache: TieredCache;
  log: Logger;
  /** Loading stops (with an error) once this returns true. */
  closing(): boolean;
}

/** How a collection was loaded. */
export interface LoadResult {
  from: 'snapshot' | 'nvm';
  rows: number;
  ms: number;
}

const CATCH_UP_BATCH = 10_000;

/**
 * Recovery of one collection: its HVS snapshot when present and valid (and not ahead of the
 * NVM), else a rebuild streamed out of the NVM; then the change log after that position is
 * replayed; then the collection is ready and queries leave the pgvector fallback.
 */
export async function loadCollection(ctx: LoadContext, state: CollectionState): Promise<LoadResult> {
  const t0 = performance.now();
  let c: HvsCollection | undefined;
  let from: LoadResult['from'] = 'nvm';
  if (await ctx.hvs.hasSnapshot(state.name)) {
    try {
      const newest = await ctx.nvm.lastLsn();
      c = await ctx.hvs.loadSnapshot(state.name);
      if (c.dim !== state.dim || c.metric !== state.metric || c.lsn > newest) {
        ctx.log.warn(
          { collection: state.name, snapshotLsn: c.lsn, nvmLsn: newest },
          'snapshot does not match the NVM; rebuilding from the NVM',
        );
        await ctx.hvs.dropCollection(state.name, { removeSnapshot: false });
        c = undefined;
      } else from = 'snapshot';
    } catch (err) {
      if (!(err instanceof SnapshotCorruptError)) throw err;
      ctx.log.warn({ collection: state.name, err: err.message }, 'snapshot is corrupt; rebuilding from the NVM');
    }
  }
  c ??= await rebuildFromNvm(ctx, state);
  state.attach(c);
  for (let attempt = 1; ; attempt++) {
    try {
      for (;;) {
        const changes = await ctx.nvm.changesAfter(state.lsn, CATCH_UP_BATCH, state.name);
        if (changes.length > 0) await applyChanges(ctx, state, changes);
        if (changes.length < CATCH_UP_BATCH) break;
      }
      break;
    } catch (err) {
      // The change log was pruned past the snapshot (this process was down while a compact job
      // ran): what it is missing can only be read from the tables.
      if (!(err instanceof ChangeLogGapError) || attempt >= 3) throw err;
      ctx.log.warn(
        { collection: state.name, snapshotLsn: err.from, prunedThrough: err.prunedThrough },
        'the change log is pruned past the snapshot; rebuilding from the NVM',
      );
      from = 'nvm';
      c = await rebuildFromNvm(ctx, state);
      state.attach(c);
    }
  }
  state.markReady();
  const ms = performance.now() - t0;
  ctx.log.info({ collection: state.name, from, rows: c.count, ms: Math.round(ms) }, 'collection %s ready in the HVS', state.name);
  if (from === 'nvm') await ctx.hvs.snapshot(state.name);
  return { from, rows: c.count, ms };
}

/**
 * Streams the collection out of the NVM into a new HVS collection (see {@link streamInto}).
 */
export async function rebuildFromNvm(ctx: LoadContext, state: CollectionState): Promise<HvsCollection> {
  if (ctx.hvs.has(state.name)) await ctx.hvs.dropCollection(state.name, { removeSnapshot: false });
  const c = ctx.hvs.createCollection(state.name, { dim: state.dim, metric: state.metric });
  try {
    const closing = new AbortController();
    await streamInto(ctx, state.name, c, {
      signal: closing.signal,
      onProgress: () => {
        if (ctx.closing()) closing.abort(new ClosedError('HyperSync'));
      },
    });
    return c;
  } catch (err) {
    await ctx.hvs.dropCollection(state.name, { removeSnapshot: false }).catch(() => undefined);
    throw err;
  }
}
