import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { ClosedError } from '../core/errors.js';
import type { Metric } from '../core/metric.js';
import { Hvs } from '../hvs/hvs.js';
import type { SnapshotManifest } from '../hvs/snapshot.js';
import type { EncoderRef, NvmStore } from '../nvm/nvm-store.js';
import { SqlNvmStore } from '../nvm/sql-nvm-store.js';
import { type CollectionRegistry, infoOf } from './collection-registry.js';
import { healthOf, hvsUsageOf } from './health.js';
import type { CollectionState } from './collection-state.js';
import type { VerifyOptions } from './consistency.js';
import { encodeWith, type EncoderSet, encoderSetOf } from './item-input.js';
import { trainCollectionIndex, type TrainIndexOptions, type TrainIndexResult } from './index-training.js';
import type { Maintenance, CompactResult, RebuildOptions } from './maintenance.js';
import { checkOptions, type HyperSyncOptions } from './options.js';
import type { QueryPlan } from './query-planner.js';
import type { QueryRouter } from './query-router.js';
import type { InstallResult } from './rebuild.js';
import type { SyncManager } from './sync-manager.js';
import type { Tiers } from './tiers.js';
import type { Transaction } from './transaction.js';
import type {
  CollectionInfo,
  CollectionStatus,
  ConsistencyReport,
  GetResult,
  HealthReport,
  HyperSyncEvents,
  Include,
  ItemPatch,
  ListedItem,
  QueryHit,
  QueryOptions,
  ScrollOptions,
  ScrollPage,
  StoreItem,
  StoreOptions,
  StoreResult,
  SyncDirection,
} from './types.js';
import { WriteAheadLog } from './write-ahead-log.js';
import type { WritePath } from './write-path.js';
import { definedOnly } from '../core/options.js';
import type { Filter } from '../core/filter.js';
import type { DataReads } from './data-reads.js';
import { type HyperSyncMetrics, metricsOf, wireParts } from './hyper-sync-parts.js';
import type { BackupOptions, BackupResult, Backups, RestoreOptions, RestoreResult } from './backups.js';

/**
 * One vector store over both tiers: the HVS (hot, in device memory, searched by tensor kernels)
 * and the NVM (PostgreSQL + pgvector, the source of truth), kept in step by the change log, with
 * a local write-ahead log for writes acknowledged before they reach PostgreSQL.
 *
 * A facade: the collection registry holds the collections, the write path writes, the query
 * router reads, the sync manager applies changes in both directions, maintenance rebuilds,
 * verifies and compacts; this class opens and closes them and checks it is open.
 */
export class HyperSync extends EventEmitter<HyperSyncEvents> {
  private readonly registry: CollectionRegistry;
  private readonly syncer: SyncManager;
  private readonly writes: WritePath;
  private readonly router: QueryRouter;
  private readonly reads: DataReads;
  private readonly maintenance: Maintenance;
  private readonly backups: Backups;
  private readonly tiers: Tiers;
  private closing: Promise<void> | undefined;
  /** Aborted when close() begins: rebuilds in flight stop. */
  private readonly closed = new AbortController();
  private readonly snapshotOnClose: boolean;

  private constructor(
    /** @internal The NVM tier (for jobs, the CLI's import and tests); HTTP goes through HyperSync. */
    readonly nvm: NvmStore,
    /** @internal The HVS tier (for jobs and tests); HTTP goes through HyperSync. */
    readonly hvs: Hvs,
    private readonly wal: WriteAheadLog,
    readonly log: Logger,
    private readonly encoders: EncoderSet,
    options: HyperSyncOptions,
  ) {
    super();
    const parts = wireParts({ nvm, hvs, wal, log, encoders }, options, {
      closing: () => this.closing !== undefined,
      fail: (err) => this.fail(err),
      loaded: (name, r) => this.emit('loaded', name, r),
      rebuild: (name) => this.rebuild(name),
      sync: () => this.sync(),
      closed: this.closed.signal,
    });
    ({
      tiers: this.tiers,
      registry: this.registry,
      syncer: this.syncer,
      writes: this.writes,
      router: this.router,
      reads: this.reads,
      maintenance: this.maintenance,
      backups: this.backups,
      snapshotOnClose: this.snapshotOnClose,
    } = parts);
  }

  /**
   * Opens both tiers and returns at once: pending write-ahead-log records are persisted first,
   * then each collection loads into the HVS in the background (snapshot, or a rebuild from the
   * NVM, then the change-log tail); until a collection is loaded, pgvector answers its queries.
   * `await hs.ready()` waits for the HVS.
   */
  static async open(options: HyperSyncOptions): Promise<HyperSync> {
    checkOptions(options);
    const log = options.log ?? pino({ level: 'silent' });
    const nvm = await SqlNvmStore.open(options.databaseUrl ? { databaseUrl: options.databaseUrl } : { dataDir: options.dataDir });
    const opened: { close(): Promise<void> }[] = [nvm];
    try {
      const { dataDir, device = 'auto', cudaTf32, sealThreshold, kernelThread, ivfMinRows } = options;
      const hvs = await Hvs.open({ dataDir, device, ...definedOnly({ cudaTf32, sealThreshold, kernelThread, ivfMinRows }) });
      opened.push(hvs);
      const { wal, pending, recovery } = await WriteAheadLog.open({ dir: join(options.dataDir, 'wal') });
      opened.push(wal);
      if (recovery.tornBytes > 0) log.warn({ tornBytes: recovery.tornBytes }, 'write-ahead log: torn tail dropped');
      const hs = new HyperSync(nvm, hvs, wal, log, encoderSetOf(options.encoder, options.encoders), options);
      await hs.registry.takeUp(pending);
      if (pending.length > 0) {
        const n = await hs.syncer.persistWal();
        log.info({ records: pending.length, blocks: n }, 'write-ahead log replayed into the NVM');
      }
      await hs.syncer.start();
      hs.registry.loadAll();
      return hs;
    } catch (err) {
      for (const r of opened.reverse()) await r.close().catch(() => undefined);
      throw err;
    }
  }

  /** The default encoder and every encoder by name (jobs that encode use them). */
  get encoderSet(): EncoderSet {
    return this.encoders;
  }

  /** Resolves when the collection (default: every collection) is served by the HVS. */
  async ready(collection?: string): Promise<void> {
    this.assertOpen();
    await this.registry.ready(collection);
  }

  /** Whether every collection is served by the HVS, and each collection's state. */
  readiness(): { ready: boolean; collections: Record<string, CollectionState['status']> } {
    return this.registry.readiness();
  }

  /** Whether the NVM answers and the HVS serves every collection, with the device and memory (`/readyz`). */
  health(): Promise<HealthReport> {
    return healthOf(this.tiers, this.registry);
  }

  /** Per collection held: the vectors and bytes (host and device) in the HVS (for metrics). */
  hvsUsage(): Record<string, { vectors: number; bytes: number }> {
    return hvsUsageOf(this.tiers, this.registry);
  }

  /**
   * Creates a collection in both tiers. Naming an `encoder` (the default one's name, or one of
   * `options.encoders`) records it with its version: the collection's texts are then always
   * encoded by it, and `dim` defaults to its dimension.
   */
  async createCollection(name: string, spec: { dim?: number; metric?: Metric; encoder?: string }): Promise<CollectionInfo> {
    this.assertOpen();
    return this.registry.create(name, spec);
  }

  /** Encodes texts with the default encoder, or the one named; one batch (`POST /v1/encode`, pipelines wanting vectors). */
  async encode(
    texts: readonly string[],
    opts: { encoder?: string } = {},
  ): Promise<{ dim: number; vectors: Float32Array[]; encoder: EncoderRef }> {
    this.assertOpen();
    return encodeWith(this.encoders, texts, opts.encoder);
  }

  listCollections(): CollectionInfo[] {
    this.assertOpen();
    return this.registry.list();
  }

  getCollection(name: string): CollectionInfo {
    this.assertOpen();
    return infoOf(this.registry.state(name));
  }

  /** The collection as the NVM's catalogue has it, held here or not yet; {@link CollectionNotFoundError} if none. */
  async findCollection(name: string): Promise<CollectionInfo> {
    this.assertOpen();
    return infoOf(await this.nvm.getCollection(name));
  }

  /** Drops the collection from both tiers, with its snapshot, cache entries and WAL-only writes. */
  async dropCollection(name: string): Promise<void> {
    this.assertOpen();
    await this.registry.drop(name);
  }

  /** Counts across both tiers. */
  async stats(name: string): Promise<CollectionStatus> {
    this.assertOpen();
    return this.registry.stats(name);
  }

  /** The stored version of each id the NVM has (ids it lacks are absent): resumable imports skip these. */
  async storedVersions(collection: string, ids: readonly string[]): Promise<Map<string, number>> {
    this.assertOpen();
    return this.nvm.versions(collection, ids);
  }

  /** See {@link WritePath.store}. */
  async store(collection: string, items: readonly StoreItem[], opts: StoreOptions = {}): Promise<StoreResult> {
    this.assertOpen();
    return this.writes.store(collection, items, opts);
  }

  /** Deletes blocks from both tiers (or, with `persist: false`, from the HVS and the WAL first). */
  async delete(collection: string, ids: readonly string[], opts: StoreOptions = {}): Promise<{ deleted: number; lsn: number }> {
    this.assertOpen();
    return this.writes.delete(collection, ids, opts);
  }

  /** See {@link WritePath.transaction}. */
  async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<{ result: T; lsn: number }> {
    this.assertOpen();
    return this.writes.transaction(work);
  }

  /** See {@link QueryRouter.get}. */
  async get(collection: string, id: string): Promise<GetResult | undefined> {
    this.assertOpen();
    return this.router.get(await this.registry.stateOf(collection), id);
  }

  /** The items that exist among `ids`, in the order asked, in one read (see {@link DataReads.getMany}). */
  async getMany(collection: string, ids: readonly string[], opts: { include?: readonly Include[] } = {}): Promise<ListedItem[]> {
    this.assertOpen();
    return this.reads.getMany(await this.registry.stateOf(collection), ids, opts);
  }

  /** How many items match `filter` (every item without one). */
  async count(collection: string, filter?: Filter): Promise<number> {
    this.assertOpen();
    return this.reads.count(await this.registry.stateOf(collection), filter);
  }

  /** A page of the items that match, in stable id order (see {@link DataReads.scroll}). */
  async scroll(collection: string, opts: ScrollOptions = {}): Promise<ScrollPage> {
    this.assertOpen();
    return this.reads.scroll(await this.registry.stateOf(collection), opts);
  }

  /** Deletes every item whose metadata match `filter`, from both tiers. */
  async deleteWhere(collection: string, filter: Filter): Promise<{ deleted: number; lsn: number }> {
    this.assertOpen();
    return this.writes.deleteWhere(collection, filter);
  }

  /** Changes an item's metadata and/or content without re-sending its vector (see {@link WritePath.patch}). */
  async patch(collection: string, id: string, patch: ItemPatch): Promise<{ id: string; version: number; lsn: number }> {
    this.assertOpen();
    return this.writes.patch(collection, id, patch);
  }

  /** The plan {@link query} would run now, and why. */
  explain(collection: string, opts: QueryOptions & { k?: number } = {}): QueryPlan {
    this.assertOpen();
    return this.router.explain(this.registry.state(collection), opts);
  }

  /** k nearest blocks per query (vectors, or texts the encoder encodes), best first, each tagged with the tiers that answered. */
  async query(
    collection: string,
    queries: readonly (Float32Array | string)[],
    k: number,
    opts: QueryOptions = {},
  ): Promise<QueryHit[][]> {
    return (await this.queryWithPlan(collection, queries, k, opts)).results;
  }

  /** {@link query}, also returning the plan that ran. */
  async queryWithPlan(
    collection: string,
    queries: readonly (Float32Array | string)[],
    k: number,
    opts: QueryOptions = {},
  ): Promise<{ results: QueryHit[][]; plan: QueryPlan }> {
    this.assertOpen();
    return this.router.query(await this.registry.stateOf(collection), queries, k, opts);
  }

  /** See {@link SyncManager.syncNow}. */
  async sync(opts: { direction?: SyncDirection } = {}): Promise<{ persisted: number; lsn: number }> {
    this.assertOpen();
    return this.syncer.syncNow(opts.direction);
  }

  /** See {@link Maintenance.rebuild}. */
  async rebuild(collection: string, opts: RebuildOptions = {}): Promise<InstallResult> {
    this.assertOpen();
    return this.maintenance.rebuild(await this.registry.stateOf(collection), opts);
  }

  /** See {@link Maintenance.verify}. */
  async verifyConsistency(collection: string, opts: VerifyOptions = {}): Promise<ConsistencyReport> {
    this.assertOpen();
    return this.maintenance.verify(await this.registry.stateOf(collection), opts);
  }

  /** Makes the HVS match the NVM for a collection; returns what was found before and what was done. */
  async repair(
    collection: string,
  ): Promise<{ before: ConsistencyReport; upserted: number; deleted: number; after: ConsistencyReport }> {
    this.assertOpen();
    return this.maintenance.repair(this.registry.state(collection));
  }

  /** Writes the HVS snapshot of a collection (default: every ready collection). */
  async snapshot(collection?: string): Promise<SnapshotManifest[]> {
    this.assertOpen();
    return this.maintenance.snapshot(
      collection !== undefined ? [this.registry.state(collection)] : [...this.registry.all.values()],
    );
  }

  /** See {@link trainCollectionIndex}: trains the collection's IVF index now, then snapshots it. */
  async trainIndex(collection: string, opts: TrainIndexOptions = {}): Promise<TrainIndexResult> {
    this.assertOpen();
    return trainCollectionIndex(await this.registry.stateOf(collection), (s) => this.maintenance.snapshot([s]), opts);
  }

  /** See {@link Maintenance.compact}. */
  async compact(collection?: string): Promise<CompactResult> {
    this.assertOpen();
    return this.maintenance.compact(collection !== undefined ? await this.registry.stateOf(collection) : undefined);
  }

  /**
   * Deletes change-log rows through `throughLsn` (a position every process has passed: see
   * `compact().changeLogPosition`); a process behind it rebuilds from the NVM.
   */
  async pruneChangeLog(throughLsn: number): Promise<{ deleted: number; prunedThrough: number }> {
    this.assertOpen();
    return this.nvm.pruneChanges(throughLsn);
  }

  /** A point-in-time copy of collections (default all) in `file`, WAL-only writes included (see {@link writeBackup}). */
  async backup(file: string, opts: BackupOptions = {}): Promise<BackupResult> {
    this.assertOpen();
    return this.backups.backup(file, opts);
  }

  /** Restores a backup into new collections of both tiers (see {@link restoreBackup}); resolves once the HVS serves them. */
  async restore(file: string, opts: RestoreOptions = {}): Promise<RestoreResult> {
    this.assertOpen();
    return this.backups.restore(file, opts);
  }

  /** Counters of the read cache and the result cache (hits, misses, bytes) and of the WAL. */
  metrics(): HyperSyncMetrics {
    return metricsOf(this.tiers);
  }

  /** Stops syncing, persists WAL-only writes (NVM reachable), writes HVS snapshots, closes WAL, HVS and NVM; safe twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed.abort(new ClosedError('HyperSync'));
      await this.syncer.stop();
      await this.registry.settled();
      await this.maintenance.settled();
      await this.maintenance.flush(this.snapshotOnClose);
      this.registry.cancelWaiters();
      await this.wal.close();
      await this.hvs.close();
      await this.nvm.close();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private assertOpen(): void {
    if (this.closing) throw new ClosedError('HyperSync');
  }

  private fail(err: Error): void {
    this.log.error({ err: err.message }, 'background failure');
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}
