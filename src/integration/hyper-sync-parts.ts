import type { Logger } from 'pino';
import { InvalidArgumentError } from '../core/errors.js';
import { withDefaults } from '../core/options.js';
import type { Hvs } from '../hvs/hvs.js';
import type { NvmStore } from '../nvm/nvm-store.js';
import type { LoadResult } from './collection-loader.js';
import { Backups } from './backups.js';
import { CollectionRegistry } from './collection-registry.js';
import { DataReads } from './data-reads.js';
import type { EncoderSet } from './item-input.js';
import { Maintenance } from './maintenance.js';
import type { HyperSyncOptions } from './options.js';
import { QueryRouter } from './query-router.js';
import { ResultCache, type ResultCacheStats } from './result-cache.js';
import type { InstallResult } from './rebuild.js';
import { SyncManager } from './sync-manager.js';
import { TieredCache } from './tiered-cache.js';
import type { Tiers } from './tiers.js';
import type { WriteAheadLog } from './write-ahead-log.js';
import { WritePath } from './write-path.js';

/** The parts {@link HyperSync} is a facade over. */
export interface HyperSyncParts {
  tiers: Tiers;
  registry: CollectionRegistry;
  syncer: SyncManager;
  writes: WritePath;
  router: QueryRouter;
  reads: DataReads;
  maintenance: Maintenance;
  backups: Backups;
  snapshotOnClose: boolean;
}

/** What the parts call back into the facade for. */
export interface FacadeHooks {
  closing: () => boolean;
  fail: (err: Error) => void;
  loaded: (name: string, r: LoadResult) => void;
  rebuild: (name: string) => Promise<InstallResult>;
  sync: () => Promise<unknown>;
  /** Aborted when close() begins. */
  closed: AbortSignal;
}

/** Cache counters (the read cache's and the result cache's) and WAL counters. */
export interface HyperSyncMetrics {
  cache: ReturnType<TieredCache['stats']>;
  results: ResultCacheStats;
  wal: ReturnType<WriteAheadLog['stats']>;
}

/** The counters {@link HyperSync.metrics} answers. */
export function metricsOf(tiers: Tiers): HyperSyncMetrics {
  return { cache: tiers.cache.stats(), results: tiers.results.stats(), wal: tiers.wal.stats() };
}

/** Builds the registry, sync manager, write path, query router, data reads, maintenance and backups over the opened tiers. */
export function wireParts(
  opened: { nvm: NvmStore; hvs: Hvs; wal: WriteAheadLog; log: Logger; encoders: EncoderSet },
  options: HyperSyncOptions,
  hooks: FacadeHooks,
): HyperSyncParts {
  const { nvm, hvs, wal, log, encoders } = opened;
  const defaults = { minLsnWaitMs: 1000, snapshotOnClose: true, cacheMb: 1024, resultCacheMb: 64, listen: true };
  const opts = withDefaults(defaults, options);
  for (const k of ['cacheMb', 'resultCacheMb'] as const) {
    if (!Number.isFinite(opts[k]) || opts[k] < 0) throw new InvalidArgumentError(`${k} must be ≥ 0, got ${opts[k]}`);
  }
  const cache = new TieredCache({ maxBytes: opts.cacheMb * 2 ** 20 });
  const results = new ResultCache({ maxBytes: opts.resultCacheMb * 2 ** 20 });
  const tiers: Tiers = { nvm, hvs, wal, cache, results, encoders, log, closing: hooks.closing, fail: hooks.fail };
  const registry: CollectionRegistry = new CollectionRegistry(tiers, hooks.loaded, () => syncer.wake());
  const syncer: SyncManager = new SyncManager(
    {
      nvm,
      wal,
      cache,
      log,
      states: registry.all,
      discover: (name) => registry.discover(name),
      refreshCatalogue: () => registry.refreshCatalogue(),
      rebuild: hooks.rebuild,
      onError: hooks.fail,
    },
    { pollIntervalMs: options.pollIntervalMs, walSyncIntervalMs: options.walSyncIntervalMs },
    opts.listen,
  );
  return {
    tiers,
    registry,
    syncer,
    writes: new WritePath(tiers, registry, syncer),
    router: new QueryRouter(tiers, opts.minLsnWaitMs),
    reads: new DataReads(tiers),
    maintenance: new Maintenance(tiers, registry, hooks.sync, () => syncer.persistWal(), hooks.closed),
    backups: new Backups(tiers, registry, syncer),
    snapshotOnClose: opts.snapshotOnClose,
  };
}
