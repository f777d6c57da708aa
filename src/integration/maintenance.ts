import type { SnapshotManifest } from '../hvs/snapshot.js';
import type { CollectionRegistry } from './collection-registry.js';
import type { CollectionState } from './collection-state.js';
import { repairInconsistencies, verifyConsistency, type VerifyOptions } from './consistency.js';
import { installRebuild, type InstallResult, type StreamProgress } from './rebuild.js';
import type { Tiers } from './tiers.js';
import type { ConsistencyReport } from './types.js';

/** Options of {@link Maintenance.rebuild}. */
export interface RebuildOptions {
  snapshotDir?: string;
  signal?: AbortSignal;
  onProgress?: (p: StreamProgress & { phase: 'stream' | 'catch-up' | 'switch' }) => void | Promise<void>;
}

/** What {@link Maintenance.compact} did. */
export interface CompactResult {
  collections: Record<string, { rewritten: number; dropped: number; snapshotLsn?: number }>;
  wal: { bytesBefore: number; bytesAfter: number };
  changeLogPosition?: number;
}

/**
 * The operator's work on the HVS: rebuilds switched in atomically, consistency checks and
 * repairs against the NVM, snapshots, and compaction (segments, the write-ahead log, and the
 * position below which the change log may be pruned).
 */
export class Maintenance {
  private readonly rebuilds = new Set<Promise<unknown>>();

  constructor(
    private readonly tiers: Tiers,
    private readonly registry: CollectionRegistry,
    /** Brings both tiers in step (WAL-only writes persisted, the change log applied). */
    private readonly sync: () => Promise<unknown>,
    /** Persists WAL-only writes to the NVM. */
    private readonly persistWal: () => Promise<number>,
    /** Aborted when close() begins: rebuilds in flight stop. */
    private readonly closed: AbortSignal,
  ) {}

  /**
   * Rebuilds a collection's HVS index off to the side and switches to it atomically: from a
   * snapshot a worker built (`snapshotDir`), or streamed from the NVM here; queries keep being
   * answered by the old index until the switch. A collection that failed to load is rebuilt too.
   */
  async rebuild(state: CollectionState, opts: RebuildOptions = {}): Promise<InstallResult> {
    const { hvs, nvm, cache, log } = this.tiers;
    await state.whenReady().catch(() => undefined);
    const signal = opts.signal ? AbortSignal.any([opts.signal, this.closed]) : this.closed;
    const run = state.rebuildLock.runExclusive(async () => {
      state.rebuilding = true;
      try {
        return await installRebuild({ hvs, nvm, cache, log, closing: () => this.tiers.closing() }, state, {
          ...opts,
          signal,
          isCurrent: () => this.registry.all.get(state.name) === state,
        });
      } finally {
        state.rebuilding = false;
      }
    });
    this.rebuilds.add(run);
    try {
      return await run;
    } finally {
      this.rebuilds.delete(run);
    }
  }

  /** Resolves when every rebuild in flight has ended (for close). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.rebuilds);
  }

  /**
   * Compares both tiers for a collection (WAL-only writes are persisted first, and the HVS catches
   * up with the change log) and lists every difference.
   */
  async verify(state: CollectionState, opts: VerifyOptions = {}): Promise<ConsistencyReport> {
    await state.whenReady();
    await this.sync();
    return state.lock.runExclusive(() => verifyConsistency(this.tiers.nvm, state, opts));
  }

  /** Makes the HVS match the NVM for a collection; returns what was found before and what was done. */
  async repair(
    state: CollectionState,
  ): Promise<{ before: ConsistencyReport; upserted: number; deleted: number; after: ConsistencyReport }> {
    const before = await this.verify(state);
    let report = before;
    let upserted = 0;
    let deleted = 0;
    // A report lists at most `limit` ids; repeat until nothing is left (or nothing changes).
    for (let round = 0; round < 100 && !report.consistent; round++) {
      const done = await repairInconsistencies(this.tiers.nvm, this.tiers.cache, state, report);
      upserted += done.upserted;
      deleted += done.deleted;
      report = await this.verify(state);
      if (done.upserted + done.deleted === 0) break;
    }
    return { before, upserted, deleted, after: report };
  }

  /** Writes the HVS snapshot of each ready collection given. */
  async snapshot(states: readonly CollectionState[]): Promise<SnapshotManifest[]> {
    const out: SnapshotManifest[] = [];
    for (const s of states) {
      if (s.status !== 'ready' || s.rebuilding) continue;
      out.push(await s.lock.runExclusive(() => this.tiers.hvs.snapshot(s.name)));
    }
    return out;
  }

  /**
   * Merges HVS segments and drops their tombstones (one collection, default every ready one),
   * writes their snapshots, then persists WAL-only writes and rewrites the write-ahead log without
   * what is persisted. Without a collection it also reports `changeLogPosition`: the lowest lsn
   * any collection here would restart from (its snapshot's), below which the change log may be
   * pruned as far as this process is concerned (0 while a collection is loading or rebuilding).
   */
  async compact(collection: CollectionState | undefined): Promise<CompactResult> {
    const { hvs, nvm, wal, log } = this.tiers;
    const states = collection !== undefined ? [collection] : [...this.registry.all.values()];
    const collections: CompactResult['collections'] = {};
    let position = collection === undefined ? await nvm.lastLsn() : undefined;
    for (const s of states) {
      if (collection !== undefined) await s.whenReady();
      const h = s.hvs;
      if (!h || s.status !== 'ready' || s.rebuilding) {
        position = 0;
        continue;
      }
      const done: { rewritten: number; dropped: number; snapshotLsn?: number } = await h.compact();
      // A snapshot now: a restart then replays only the change log after this point.
      const manifest = await s.lock
        .runExclusive(() => hvs.snapshot(s.name))
        .catch((err: unknown) => {
          log.warn({ collection: s.name, err: (err as Error).message }, 'snapshot after compaction failed');
          return undefined;
        });
      done.snapshotLsn = manifest?.lsn;
      if (position !== undefined) position = Math.min(position, manifest?.lsn ?? 0);
      collections[s.name] = done;
    }
    const bytesBefore = wal.stats().bytes;
    await this.persistWal();
    if (wal.pendingCount === 0) await wal.checkpoint();
    return {
      collections,
      wal: { bytesBefore, bytesAfter: wal.stats().bytes },
      ...(position !== undefined ? { changeLogPosition: position } : {}),
    };
  }

  /** At close: WAL-only writes persisted (when the NVM answers), then every ready collection's snapshot. */
  async flush(snapshots: boolean): Promise<void> {
    const { wal, hvs, log } = this.tiers;
    try {
      await this.persistWal();
      if (wal.pendingCount === 0) await wal.checkpoint();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'write-ahead log not persisted at close; it is replayed at the next open');
    }
    if (!snapshots) return;
    for (const s of this.registry.all.values()) {
      if (s.status !== 'ready' || s.rebuilding) continue;
      await hvs
        .snapshot(s.name)
        .catch((err: unknown) => log.warn({ err: (err as Error).message, collection: s.name }, 'snapshot failed'));
    }
  }
}
