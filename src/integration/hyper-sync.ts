import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { LIMITS } from '../core/limits.js';
import { type Metric } from '../core/metric.js';
import { ClosedError, CollectionNotFoundError, DimensionMismatchError, InvalidArgumentError } from '../core/errors.js';
import { assertId, isArray } from '../core/ids.js';
import { Hvs } from '../hvs/hvs.js';
import type { SnapshotManifest } from '../hvs/snapshot.js';
import type { SearchHit } from '../core/search-hit.js';
import { checkBatch } from '../core/vector.js';
import type { EncoderRef, NvmStore } from '../nvm/nvm-store.js';
import { SqlNvmStore } from '../nvm/sql-nvm-store.js';
import { loadCollection, type LoadResult } from './collection-loader.js';
import { CollectionState } from './collection-state.js';
import { repairInconsistencies, verifyConsistency, type VerifyOptions } from './consistency.js';
import { checkIds, encodeTexts, type EncoderSet, encoderSetOf, prepareItems } from './item-input.js';
import type { HyperSyncOptions } from './options.js';
import { planQuery, type QueryPlan } from './query-planner.js';
import { blockIdOf } from './row-keys.js';
import { installRebuild, type InstallResult, type StreamProgress } from './rebuild.js';
import { SyncManager } from './sync-manager.js';
import { type CachedBlock, TieredCache } from './tiered-cache.js';
import { Transaction, type PreparedDelete, type PreparedOp, type PreparedUpsert } from './transaction.js';
import type {
  CollectionInfo,
  CollectionStatus,
  ConsistencyReport,
  GetResult,
  Include,
  QueryHit,
  QueryOptions,
  Source,
  StoreItem,
  StoreOptions,
  StoreResult,
} from './types.js';
import { WriteAheadLog, type WalRecord, type WalUpsertItem } from './write-ahead-log.js';

/** Events of {@link HyperSync}. */
export interface HyperSyncEvents {
  /** A background failure (tailing, persisting the WAL, loading): logged and reported here. */
  error: [Error];
  /** A collection is loaded into the HVS. */
  loaded: [string, LoadResult];
}

const INCLUDES: readonly Include[] = ['content', 'metadata', 'vector'];

/** Which way {@link HyperSync.sync} moves writes. */
export const SYNC_DIRECTIONS = ['both', 'hvs-to-nvm', 'nvm-to-hvs'] as const;
export type SyncDirection = (typeof SYNC_DIRECTIONS)[number];

/**
 * One vector store over both tiers: the HVS (hot, in device memory, searched by tensor kernels)
 * and the NVM (PostgreSQL + pgvector, the source of truth), kept in step by the change log, with
 * a local write-ahead log for writes acknowledged before they reach PostgreSQL.
 */
export class HyperSync extends EventEmitter<HyperSyncEvents> {
  private readonly states = new Map<string, CollectionState>();
  private readonly cache: TieredCache;
  private readonly syncer: SyncManager;
  private loading: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  /** Aborted when close() begins: rebuilds in flight stop. */
  private readonly closed = new AbortController();
  private readonly rebuilds = new Set<Promise<unknown>>();
  private readonly opts: Required<Pick<HyperSyncOptions, 'minLsnWaitMs' | 'snapshotOnClose'>>;

  private constructor(
    readonly nvm: NvmStore,
    readonly hvs: Hvs,
    private readonly wal: WriteAheadLog,
    readonly log: Logger,
    private readonly encoders: EncoderSet,
    options: HyperSyncOptions,
  ) {
    super();
    this.opts = { minLsnWaitMs: options.minLsnWaitMs ?? 1000, snapshotOnClose: options.snapshotOnClose ?? true };
    const cacheMb = options.cacheMb ?? 1024;
    if (!Number.isFinite(cacheMb) || cacheMb < 0) throw new InvalidArgumentError(`cacheMb must be ≥ 0, got ${cacheMb}`);
    this.cache = new TieredCache({ maxBytes: cacheMb * 2 ** 20 });
    const syncOpts: ConstructorParameters<typeof SyncManager>[1] = {};
    if (options.pollIntervalMs !== undefined) syncOpts.pollIntervalMs = options.pollIntervalMs;
    if (options.walSyncIntervalMs !== undefined) syncOpts.walSyncIntervalMs = options.walSyncIntervalMs;
    this.syncer = new SyncManager(
      {
        nvm,
        wal,
        cache: this.cache,
        log,
        states: this.states,
        discover: (name) => this.discover(name),
        refreshCatalogue: () => this.refreshCatalogue(),
        rebuild: (name) => this.rebuild(name),
        onError: (err) => this.fail(err),
      },
      syncOpts,
      options.listen ?? true,
    );
  }

  /**
   * Opens both tiers and returns at once: pending write-ahead-log records are persisted first,
   * then each collection loads into the HVS in the background (snapshot, or a rebuild from the
   * NVM, then the change-log tail); until a collection is loaded, pgvector answers its queries.
   * `await hs.ready()` waits for the HVS.
   */
  static async open(options: HyperSyncOptions): Promise<HyperSync> {
    if (typeof options.dataDir !== 'string' || options.dataDir.length === 0)
      throw new InvalidArgumentError('dataDir is required');
    for (const k of ['minLsnWaitMs', 'pollIntervalMs', 'walSyncIntervalMs', 'cacheMb'] as const) {
      const v = options[k];
      if (v !== undefined && (!Number.isFinite(v) || v < 0))
        throw new InvalidArgumentError(`${k} must be a number ≥ 0, got ${v}`);
    }
    const log = options.log ?? pino({ level: 'silent' });
    const nvm = await SqlNvmStore.open(options.databaseUrl ? { databaseUrl: options.databaseUrl } : { dataDir: options.dataDir });
    const opened: { close(): Promise<void> }[] = [nvm];
    try {
      const hvsOpts: Parameters<typeof Hvs.open>[0] = { dataDir: options.dataDir, device: options.device ?? 'auto' };
      if (options.sealThreshold !== undefined) hvsOpts.sealThreshold = options.sealThreshold;
      if (options.kernelThread !== undefined) hvsOpts.kernelThread = options.kernelThread;
      const hvs = await Hvs.open(hvsOpts);
      opened.push(hvs);
      const { wal, pending, recovery } = await WriteAheadLog.open({ dir: join(options.dataDir, 'wal') });
      opened.push(wal);
      if (recovery.tornBytes > 0) log.warn({ tornBytes: recovery.tornBytes }, 'write-ahead log: torn tail dropped');
      const hs = new HyperSync(nvm, hvs, wal, log, encoderSetOf(options.encoder, options.encoders), options);
      for (const c of await nvm.listCollections()) hs.states.set(c.name, new CollectionState(c.name, c.dim, c.metric, c.encoder));
      hs.replayWal(pending);
      if (pending.length > 0) {
        const n = await hs.syncer.persistWal();
        log.info({ records: pending.length, blocks: n }, 'write-ahead log replayed into the NVM');
      }
      await hs.syncer.start();
      hs.loading = hs.loadAll([...hs.states.values()]);
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
    if (collection !== undefined) return (await this.stateOf(collection)).whenReady();
    await this.loading;
    for (const s of this.states.values()) await s.whenReady();
  }

  /** Whether every collection is served by the HVS, and each collection's state. */
  readiness(): { ready: boolean; collections: Record<string, CollectionState['status']> } {
    const collections: Record<string, CollectionState['status']> = {};
    for (const s of this.states.values()) collections[s.name] = s.status;
    return { ready: Object.values(collections).every((st) => st === 'ready'), collections };
  }

  /**
   * Creates a collection in both tiers. Naming an `encoder` (the default one's name, or one of
   * `options.encoders`) records it with its version: the collection's texts are then always
   * encoded by it, and `dim` defaults to its dimension.
   */
  async createCollection(name: string, spec: { dim?: number; metric?: Metric; encoder?: string }): Promise<CollectionInfo> {
    this.assertOpen();
    const metric = spec.metric ?? 'cosine';
    let encoder: EncoderRef | undefined;
    let dim = spec.dim;
    if (spec.encoder !== undefined) {
      const e = this.encoders.byName.get(spec.encoder);
      if (!e) {
        const known = [...this.encoders.byName.keys()];
        throw new InvalidArgumentError(
          `unknown encoder ${JSON.stringify(spec.encoder)}; this process has ${known.length > 0 ? known.join(', ') : 'none'}`,
        );
      }
      if (dim !== undefined && dim !== e.dim) throw new DimensionMismatchError(e.dim, dim, `encoder ${e.name}`);
      dim ??= e.dim;
      encoder = { name: e.name, version: e.version };
    }
    if (dim === undefined) throw new InvalidArgumentError('dim is required unless an encoder is named');
    const lsn = await this.nvm.lastLsn();
    const c = await this.nvm.createCollection(name, { dim, metric, ...(encoder ? { encoder } : {}) });
    const state = new CollectionState(c.name, c.dim, c.metric, c.encoder);
    if (this.hvs.has(name)) await this.hvs.dropCollection(name);
    const h = this.hvs.createCollection(name, { dim: c.dim, metric: c.metric });
    h.advanceLsn(lsn);
    state.attach(h);
    this.states.set(name, state);
    state.markReady();
    // Writes by others between lastLsn() and now are in the change log after `lsn`.
    this.syncer.wake();
    return info(state);
  }

  /**
   * Encodes texts with the default encoder, or the one named; one batch. For `POST /v1/encode`
   * and pipelines that want the vectors themselves.
   */
  async encode(
    texts: readonly string[],
    opts: { encoder?: string } = {},
  ): Promise<{ dim: number; vectors: Float32Array[]; encoder: EncoderRef }> {
    this.assertOpen();
    const e = opts.encoder === undefined ? this.encoders.default : this.encoders.byName.get(opts.encoder);
    if (!e) {
      throw new InvalidArgumentError(
        opts.encoder === undefined ? 'no default encoder is configured' : `unknown encoder ${JSON.stringify(opts.encoder)}`,
      );
    }
    const vectors = await e.encode(texts);
    return { dim: e.dim, vectors, encoder: { name: e.name, version: e.version } };
  }

  listCollections(): CollectionInfo[] {
    this.assertOpen();
    return [...this.states.values()].map(info);
  }

  getCollection(name: string): CollectionInfo {
    return info(this.state(name));
  }

  /** Drops the collection from both tiers, with its snapshot, cache entries and WAL-only writes. */
  async dropCollection(name: string): Promise<void> {
    const state = await this.stateOf(name);
    await state.lock.runExclusive(async () => {
      await this.nvm.dropCollection(name);
      this.states.delete(name);
      state.cancelWaiters();
      if (this.hvs.has(name)) await this.hvs.dropCollection(name);
      this.cache.invalidateCollection(name);
      const seqs = [...state.walEntries.values()].map((e) => e.seq);
      state.walEntries.clear();
      if (seqs.length > 0) await this.wal.complete(seqs);
    });
  }

  /** Counts across both tiers. */
  async stats(name: string): Promise<CollectionStatus> {
    const s = await this.stateOf(name);
    const counts = await this.nvm.counts(name);
    const h = s.hvs;
    const mem = h?.memoryUsage();
    const hvs: CollectionStatus['hvs'] = {
      count: h?.count ?? 0,
      bytes: mem ? mem.hostBytes + mem.deviceBytes : 0,
      device: this.hvs.deviceInfo.device,
      ready: s.status === 'ready',
      state: s.status,
    };
    if (s.error) hvs.error = s.error.message;
    return {
      ...info(s),
      count: counts.blocks,
      hvs,
      nvm: { count: counts.blocks, vectors: counts.vectors },
      lsn: s.lsn,
      walPending: s.walEntries.size,
    };
  }

  /**
   * Stores items (upserts: an existing id gets a new version). With `persist` (default) one
   * PostgreSQL transaction writes the blocks, their vectors and change-log rows, then the HVS
   * applies them; without, the local write-ahead log (fsync'd) and the HVS hold them until a sync.
   */
  async store(collection: string, items: readonly StoreItem[], opts: StoreOptions = {}): Promise<StoreResult> {
    this.assertOpen();
    await this.stateOf(collection);
    const { ids, op } = await this.prepareStore(collection, items);
    if (opts.persist === false) {
      await this.applyLocalWrite(op);
      return { ids, lsn: op.state.lsn, persisted: false };
    }
    const { lsn } = await this.commit([op]);
    return { ids, lsn, persisted: true };
  }

  /** Deletes blocks from both tiers (or, with `persist: false`, from the HVS and the WAL first). */
  async delete(collection: string, ids: readonly string[], opts: StoreOptions = {}): Promise<{ deleted: number; lsn: number }> {
    this.assertOpen();
    await this.stateOf(collection);
    const op = this.prepareDelete(collection, ids);
    if (opts.persist === false) {
      const deleted = await this.applyLocalWrite(op);
      return { deleted, lsn: op.state.lsn };
    }
    const { lsn, deleted } = await this.commit([op]);
    return { deleted, lsn };
  }

  /**
   * Runs `work` with a {@link Transaction}: its stores and deletes (any collections) commit in
   * one NVM transaction and then reach the HVS, or, if `work` throws, reach neither tier.
   */
  async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<{ result: T; lsn: number }> {
    this.assertOpen();
    const tx = new Transaction(this);
    let result: T;
    try {
      result = await work(tx);
    } catch (err) {
      tx.seal(); // nothing was written; later calls on tx are refused
      throw err;
    }
    const ops = tx.seal();
    const lsn = ops.length > 0 ? (await this.commit(ops)).lsn : 0;
    return { result, lsn };
  }

  /** @internal Checks and encodes a store (see {@link Transaction}). */
  async prepareStore(collection: string, items: readonly StoreItem[]): Promise<{ ids: string[]; op: PreparedUpsert }> {
    const state = this.state(collection);
    const { ids, blocks } = await prepareItems(state, items, this.encoders);
    return { ids, op: { type: 'upsert', state, blocks } };
  }

  /** @internal Checks a delete (see {@link Transaction}). */
  prepareDelete(collection: string, ids: readonly string[]): PreparedDelete {
    const state = this.state(collection);
    checkIds(ids);
    return { type: 'delete', state, ids: [...new Set(ids)] };
  }

  /**
   * Commits writes to the NVM in one transaction, then applies them to the HVS; returns the lsn
   * and how many blocks the deletes removed.
   */
  private async commit(ops: readonly PreparedOp[]): Promise<{ lsn: number; deleted: number }> {
    // An id with a WAL-only write is persisted first, so the NVM sees its writes in order.
    const walHeld = ops.some((op) =>
      (op.type === 'upsert' ? op.blocks.map((b) => b.id) : op.ids).some((id) => op.state.walEntries.has(id)),
    );
    if (walHeld) await this.syncer.persistWal();
    const versions: (Map<string, number> | undefined)[] = [];
    let deleted = 0;
    const { lsn } = await this.nvm.unitOfWork(async (uow) => {
      for (const op of ops) {
        if (op.type === 'upsert') versions.push((await uow.writeBlocks(op.state.name, op.blocks)).versions);
        else {
          deleted += (await uow.deleteBlocks(op.state.name, op.ids)).deleted;
          versions.push(undefined);
        }
      }
    });
    for (const [i, op] of ops.entries()) await this.applyCommitted(op, lsn, versions[i]);
    return { lsn, deleted };
  }

  /**
   * Applies a committed write to the HVS unless the change-log tail got there first (it then
   * applied this state or a newer one). A failure here loses nothing: the NVM has the write and
   * the tail brings the HVS to it.
   */
  private async applyCommitted(op: PreparedOp, lsn: number, versions: Map<string, number> | undefined): Promise<void> {
    const { state } = op;
    this.cache.invalidate(state.name, op.type === 'upsert' ? op.blocks.map((b) => b.id) : op.ids);
    if (!state.loadingHvs) return;
    try {
      await state.lock.runExclusive(async () => {
        if (state.lsn >= lsn) return;
        if (op.type === 'delete') state.deleteBlocks(op.ids);
        else
          await state.upsertBlocks(op.blocks.map((b) => ({ id: b.id, version: versions?.get(b.id) ?? 1, vectors: b.vectors })));
      });
    } catch (err) {
      this.fail(err as Error);
      this.syncer.wake();
    }
  }

  /** A `persist: false` write: appended to the WAL (fsync'd), then applied to the HVS. */
  private async applyLocalWrite(op: PreparedOp): Promise<number> {
    const { state } = op;
    await state.whenReady();
    return state.lock.runExclusive(async () => {
      if (op.type === 'delete') {
        const seq = await this.wal.append({ type: 'delete', collection: state.name, ids: op.ids });
        for (const id of op.ids) state.walEntries.set(id, { seq, item: null });
        this.cache.invalidate(state.name, op.ids);
        return state.deleteBlocks(op.ids);
      }
      const items: WalUpsertItem[] = op.blocks.map((b) => {
        const e = state.walEntries.get(b.id);
        const previous = e ? e.item?.version : state.versionOf(b.id);
        return { id: b.id, version: (previous ?? 0) + 1, vectors: b.vectors, content: b.content, metadata: b.metadata };
      });
      const seq = await this.wal.append({ type: 'upsert', collection: state.name, items });
      for (const item of items) state.walEntries.set(item.id, { seq, item });
      this.cache.invalidate(
        state.name,
        op.blocks.map((b) => b.id),
      );
      await state.upsertBlocks(items);
      return items.length;
    });
  }

  /**
   * The block: a WAL-only write, or the HVS's vector with the cached (or NVM-read) content, or,
   * where the HVS lacks it, the cache or the NVM; undefined if it does not exist.
   */
  async get(collection: string, id: string): Promise<GetResult | undefined> {
    this.assertOpen();
    assertId(id, 'get');
    const state = await this.stateOf(collection);
    const e = state.walEntries.get(id);
    if (e) return e.item ? getResult(id, e.item.vectors[0].slice(), e.item, 'hvs') : undefined;
    const row = state.hvs?.get(id);
    const cached = this.cache.getBlock(collection, id);
    if (row && cached && cached.version === row.version) return getResult(id, row.vector, cached, 'hvs+nvm');
    if (!row && cached) {
      // The HVS does not have it (loading, or behind): the cached vector serves with the cached block.
      const v = this.cache.getVector(collection, id);
      if (v && v.version === cached.version) return getResult(id, v.vector.slice(), cached, 'nvm');
    }
    const withVectors = !row;
    const block = (await this.nvm.getBlocks(collection, [id], { vectors: withVectors })).get(id);
    if (!block) return undefined;
    this.cache.setBlock(collection, id, { content: block.content, metadata: block.metadata, version: block.version });
    if (row && row.version === block.version) return getResult(id, row.vector, block, 'hvs+nvm');
    // The HVS holds another version (it is behind): the NVM's vector, read now.
    const full = withVectors ? block : (await this.nvm.getBlocks(collection, [id])).get(id);
    if (!full || full.vectors.length === 0) return undefined;
    this.cache.setVector(collection, id, { vector: full.vectors[0], version: full.version });
    return getResult(id, full.vectors[0].slice(), full, 'nvm');
  }

  /** The plan {@link query} would run now, and why. */
  explain(collection: string, opts: QueryOptions & { k?: number } = {}): QueryPlan {
    this.assertOpen();
    const state = this.state(collection);
    return this.plan(state, opts.k ?? 10, checkInclude(opts.include), opts.minLsn, false);
  }

  private plan(
    state: CollectionState,
    k: number,
    include: readonly Include[],
    minLsn: number | undefined,
    timedOut: boolean,
  ): QueryPlan {
    const input: Parameters<typeof planQuery>[0] = {
      collection: state.name,
      status: state.status,
      appliedLsn: state.lsn,
      k,
      include,
      minLsnWaitMs: this.opts.minLsnWaitMs,
      extraChunkRows: state.extraChunkRows,
      device: this.hvs.deviceInfo.device,
      lsnTimedOut: timedOut,
    };
    if (minLsn !== undefined) input.minLsn = minLsn;
    return planQuery(input);
  }

  /**
   * k nearest blocks per query (vectors, or texts the encoder turns into vectors), best first,
   * each tagged with the tiers that answered.
   */
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
    const state = await this.stateOf(collection);
    if (!Number.isInteger(k) || k < 1 || k > LIMITS.k)
      throw new InvalidArgumentError(`k must be an integer between 1 and ${LIMITS.k}, got ${String(k)}`);
    if (!isArray(queries) || queries.length === 0) throw new InvalidArgumentError('queries must be a non-empty array');
    if (queries.length > LIMITS.queriesPerCall) {
      throw new InvalidArgumentError(`at most ${LIMITS.queriesPerCall} queries per call, got ${queries.length}`);
    }
    const include = checkInclude(opts.include);
    if (opts.minLsn !== undefined && (!Number.isSafeInteger(opts.minLsn) || opts.minLsn < 0)) {
      throw new InvalidArgumentError(`minLsn must be a non-negative integer, got ${String(opts.minLsn)}`);
    }
    const vectors = await this.queryVectors(state, queries);
    let plan = this.plan(state, k, include, opts.minLsn, false);
    const wait = plan.steps[0];
    if (wait?.step === 'wait-lsn' && !(await state.waitForLsn(wait.minLsn, wait.timeoutMs))) {
      plan = this.plan(state, k, include, opts.minLsn, true);
    }
    let hits: SearchHit[][];
    const h = state.hvs;
    if (plan.path === 'hvs' && h) {
      const search = plan.steps.find((s) => s.step === 'hvs-search');
      const raw = await h.search(vectors, search?.step === 'hvs-search' ? search.k : k);
      hits = state.extraChunkRows > 0 ? raw.map((list) => bestPerBlock(list, k)) : raw;
    } else {
      if (plan.path === 'hvs') plan = this.plan(state, k, include, opts.minLsn, true);
      hits = await this.nvm.search(collection, vectors, k, { mode: 'hnsw' });
    }
    const source: Source = plan.path === 'nvm' ? 'nvm' : include.length > 0 ? 'hvs+nvm' : 'hvs';
    return { results: await this.enrich(state, hits, include, source), plan };
  }

  private async queryVectors(state: CollectionState, queries: readonly (Float32Array | string)[]): Promise<Float32Array[]> {
    const texts: { i: number; text: string }[] = [];
    const out: Float32Array[] = [];
    queries.forEach((q, i) => {
      if (typeof q === 'string') texts.push({ i, text: q });
      else if (q instanceof Float32Array) out[i] = q;
      else throw new InvalidArgumentError(`queries[${i}] must be a Float32Array or a text`);
    });
    const encoded = await encodeTexts(
      state,
      texts.map((t) => t.text),
      this.encoders,
    );
    texts.forEach((t, j) => (out[t.i] = encoded[j]));
    checkBatch(out, state.dim, state.metric, 'queries');
    return out;
  }

  /**
   * Adds what the caller asked for to the hits: content and metadata from WAL-only writes, the
   * cache, or one batched NVM read (which also fills the cache); vectors from the HVS or the NVM.
   * A hit whose block the NVM no longer has (deleted since the HVS indexed it) is dropped.
   */
  private async enrich(
    state: CollectionState,
    hits: SearchHit[][],
    include: readonly Include[],
    source: Source,
  ): Promise<QueryHit[][]> {
    if (include.length === 0)
      return hits.map((list) => list.map((x) => ({ id: x.id, score: x.score, version: x.version, source })));
    const wantVector = include.includes('vector');
    const h = state.hvs;
    const blocks = new Map<string, CachedBlock & { vector?: Float32Array; wal?: boolean }>();
    const misses = new Set<string>();
    for (const list of hits) {
      for (const x of list) {
        if (blocks.has(x.id) || misses.has(x.id)) continue;
        const e = state.walEntries.get(x.id);
        if (e?.item) {
          blocks.set(x.id, {
            content: e.item.content,
            metadata: e.item.metadata,
            version: e.item.version,
            vector: e.item.vectors[0],
            wal: true,
          });
          continue;
        }
        const c = this.cache.getBlock(state.name, x.id);
        if (c) blocks.set(x.id, c);
        else misses.add(x.id);
      }
    }
    const vectorsFromNvm = wantVector && !h;
    if (misses.size > 0 || vectorsFromNvm) {
      const need = vectorsFromNvm ? [...new Set(hits.flat().map((x) => x.id))] : [...misses];
      const got = await this.nvm.getBlocks(state.name, need, { vectors: vectorsFromNvm });
      for (const [id, b] of got) {
        const cached = { content: b.content, metadata: b.metadata, version: b.version };
        this.cache.setBlock(state.name, id, cached);
        blocks.set(id, vectorsFromNvm ? { ...cached, vector: b.vectors[0] } : cached);
      }
    }
    return hits.map((list) => {
      const out: QueryHit[] = [];
      for (const x of list) {
        const b = blocks.get(x.id);
        if (!b) continue;
        const hit: QueryHit = { id: x.id, score: x.score, version: x.version, source: b.wal ? 'hvs' : source };
        if (include.includes('content')) hit.content = b.content;
        if (include.includes('metadata')) hit.metadata = b.metadata;
        if (wantVector) {
          const v = b.vector ?? h?.get(x.id)?.vector;
          if (v) hit.vector = v.slice();
        }
        out.push(hit);
      }
      return out;
    });
  }

  /**
   * Brings the tiers in step now: WAL-only writes are persisted to the NVM (`hvs-to-nvm`), then
   * the change log is applied to the HVS up to its newest lsn (`nvm-to-hvs`); default both.
   */
  async sync(opts: { direction?: SyncDirection } = {}): Promise<{ persisted: number; lsn: number }> {
    this.assertOpen();
    const direction = opts.direction ?? 'both';
    if (!SYNC_DIRECTIONS.includes(direction))
      throw new InvalidArgumentError(`direction must be one of ${SYNC_DIRECTIONS.join(', ')}, got ${JSON.stringify(direction)}`);
    const persisted = direction === 'nvm-to-hvs' ? 0 : await this.syncer.persistWal();
    if (direction !== 'hvs-to-nvm') await this.syncer.catchUp();
    return { persisted, lsn: await this.nvm.lastLsn() };
  }

  /**
   * Rebuilds a collection's HVS index off to the side and switches to it atomically: from a
   * snapshot a worker built (`snapshotDir`), or streamed from the NVM here; queries keep being
   * answered by the old index until the switch. A collection that failed to load is rebuilt too.
   */
  async rebuild(
    collection: string,
    opts: {
      snapshotDir?: string;
      signal?: AbortSignal;
      onProgress?: (p: StreamProgress & { phase: 'stream' | 'catch-up' | 'switch' }) => void | Promise<void>;
    } = {},
  ): Promise<InstallResult> {
    this.assertOpen();
    const state = await this.stateOf(collection);
    await state.whenReady().catch(() => undefined);
    const signal = opts.signal ? AbortSignal.any([opts.signal, this.closed.signal]) : this.closed.signal;
    const run = state.rebuildLock.runExclusive(async () => {
      state.rebuilding = true;
      try {
        return await installRebuild(
          {
            hvs: this.hvs,
            nvm: this.nvm,
            cache: this.cache,
            log: this.log,
            closing: () => this.closing !== undefined,
          },
          state,
          { ...opts, signal, isCurrent: () => this.states.get(state.name) === state },
        );
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

  /**
   * Compares both tiers for a collection (WAL-only writes are persisted first, and the HVS catches
   * up with the change log) and lists every difference.
   */
  async verifyConsistency(collection: string, opts: VerifyOptions = {}): Promise<ConsistencyReport> {
    this.assertOpen();
    const state = await this.stateOf(collection);
    await state.whenReady();
    await this.sync();
    return state.lock.runExclusive(() => verifyConsistency(this.nvm, state, opts));
  }

  /** Makes the HVS match the NVM for a collection; returns what was found before and what was done. */
  async repair(
    collection: string,
  ): Promise<{ before: ConsistencyReport; upserted: number; deleted: number; after: ConsistencyReport }> {
    const state = this.state(collection);
    const before = await this.verifyConsistency(collection);
    let report = before;
    let upserted = 0;
    let deleted = 0;
    // A report lists at most `limit` ids; repeat until nothing is left (or nothing changes).
    for (let round = 0; round < 100 && !report.consistent; round++) {
      const done = await repairInconsistencies(this.nvm, this.cache, state, report);
      upserted += done.upserted;
      deleted += done.deleted;
      report = await this.verifyConsistency(collection);
      if (done.upserted + done.deleted === 0) break;
    }
    return { before, upserted, deleted, after: report };
  }

  /** Writes the HVS snapshot of a collection (default: every ready collection). */
  async snapshot(collection?: string): Promise<SnapshotManifest[]> {
    this.assertOpen();
    const states = collection !== undefined ? [this.state(collection)] : [...this.states.values()];
    const out: SnapshotManifest[] = [];
    for (const s of states) {
      if (s.status !== 'ready' || s.rebuilding) continue;
      out.push(await s.lock.runExclusive(() => this.hvs.snapshot(s.name)));
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
  async compact(collection?: string): Promise<{
    collections: Record<string, { rewritten: number; dropped: number; snapshotLsn?: number }>;
    wal: { bytesBefore: number; bytesAfter: number };
    changeLogPosition?: number;
  }> {
    this.assertOpen();
    const states = collection !== undefined ? [await this.stateOf(collection)] : [...this.states.values()];
    const collections: Record<string, { rewritten: number; dropped: number; snapshotLsn?: number }> = {};
    let position = collection === undefined ? await this.nvm.lastLsn() : undefined;
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
        .runExclusive(() => this.hvs.snapshot(s.name))
        .catch((err: unknown) => {
          this.log.warn({ collection: s.name, err: (err as Error).message }, 'snapshot after compaction failed');
          return undefined;
        });
      done.snapshotLsn = manifest?.lsn;
      if (position !== undefined) position = Math.min(position, manifest?.lsn ?? 0);
      collections[s.name] = done;
    }
    const bytesBefore = this.wal.stats().bytes;
    await this.syncer.persistWal();
    if (this.wal.pendingCount === 0) await this.wal.checkpoint();
    return {
      collections,
      wal: { bytesBefore, bytesAfter: this.wal.stats().bytes },
      ...(position !== undefined ? { changeLogPosition: position } : {}),
    };
  }

  /** Cache counters (hits, misses, bytes) and WAL counters. */
  metrics(): { cache: ReturnType<TieredCache['stats']>; wal: ReturnType<WriteAheadLog['stats']> } {
    return { cache: this.cache.stats(), wal: this.wal.stats() };
  }

  /**
   * Stops syncing, persists WAL-only writes (when the NVM is reachable), writes HVS snapshots,
   * and closes the WAL, the HVS and the NVM; safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed.abort(new ClosedError('HyperSync'));
      await this.syncer.stop();
      await this.loading.catch(() => undefined);
      await Promise.allSettled(this.rebuilds);
      try {
        await this.syncer.persistWal();
        if (this.wal.pendingCount === 0) await this.wal.checkpoint();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'write-ahead log not persisted at close; it is replayed at the next open');
      }
      if (this.opts.snapshotOnClose) {
        for (const s of this.states.values()) {
          if (s.status !== 'ready' || s.rebuilding) continue;
          await this.hvs
            .snapshot(s.name)
            .catch((err: unknown) => this.log.warn({ err: (err as Error).message, collection: s.name }, 'snapshot failed'));
        }
      }
      for (const s of this.states.values()) s.cancelWaiters();
      await this.wal.close();
      await this.hvs.close();
      await this.nvm.close();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private state(name: string): CollectionState {
    this.assertOpen();
    const s = this.states.get(name);
    if (!s) throw new CollectionNotFoundError(name);
    return s;
  }

  /**
   * The collection's state; one this process does not hold yet (created by another process) is
   * looked up in the NVM and starts loading.
   */
  private async stateOf(name: string): Promise<CollectionState> {
    this.assertOpen();
    if (!this.states.has(name)) await this.discover(name);
    return this.state(name);
  }

  private assertOpen(): void {
    if (this.closing) throw new ClosedError('HyperSync');
  }

  private fail(err: Error): void {
    this.log.error({ err: err.message }, 'background failure');
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Puts pending WAL records back in memory (in seq order) so the sync persists them. */
  private replayWal(records: readonly WalRecord[]): void {
    for (const r of records) {
      const state = this.states.get(r.op.collection);
      if (!state) continue;
      if (r.op.type === 'upsert') for (const item of r.op.items) state.walEntries.set(item.id, { seq: r.seq, item });
      else for (const id of r.op.ids) state.walEntries.set(id, { seq: r.seq, item: null });
    }
  }

  private async loadAll(states: CollectionState[]): Promise<void> {
    for (const s of states) await this.load(s);
  }

  private async load(state: CollectionState): Promise<void> {
    try {
      const r = await loadCollection(
        { hvs: this.hvs, nvm: this.nvm, cache: this.cache, log: this.log, closing: () => this.closing !== undefined },
        state,
      );
      this.emit('loaded', state.name, r);
    } catch (err) {
      if (this.closing) return;
      state.markFailed(err as Error);
      this.fail(err as Error);
    }
  }

  /**
   * Takes up collections another process created and forgets those it dropped (the change log
   * says nothing of drops: a dropped collection's rows go with it).
   */
  private async refreshCatalogue(): Promise<void> {
    if (this.closing) return;
    const asOf = performance.now();
    const names = new Set((await this.nvm.listCollections()).map((c) => c.name));
    for (const name of names) if (!this.states.has(name)) await this.discover(name);
    for (const state of [...this.states.values()]) {
      // A collection taken up after the catalogue was read may simply be newer than it.
      if (names.has(state.name) || state.since >= asOf || this.closing) continue;
      await state.lock.runExclusive(async () => {
        if (this.states.get(state.name) !== state) return;
        this.states.delete(state.name);
        state.cancelWaiters();
        if (this.hvs.has(state.name)) await this.hvs.dropCollection(state.name);
        this.cache.invalidateCollection(state.name);
        const seqs = [...state.walEntries.values()].map((e) => e.seq);
        state.walEntries.clear();
        if (seqs.length > 0) await this.wal.complete(seqs);
        this.log.info({ collection: state.name }, 'collection %s was dropped elsewhere; forgotten', state.name);
      });
    }
  }

  /** A change named a collection created by another process: load it. */
  private async discover(name: string): Promise<void> {
    if (this.states.has(name) || this.closing) return;
    let c;
    try {
      c = await this.nvm.getCollection(name);
    } catch (err) {
      if (err instanceof CollectionNotFoundError) return;
      throw err;
    }
    if (this.states.has(name)) return;
    const state = new CollectionState(c.name, c.dim, c.metric, c.encoder);
    this.states.set(name, state);
    const previous = this.loading;
    this.loading = previous.then(() => this.load(state));
  }
}

function getResult(id: string, vector: Float32Array, block: CachedBlock, source: Source): GetResult {
  return { id, vector, content: block.content, metadata: block.metadata, version: block.version, source };
}

function info(s: CollectionState): CollectionInfo {
  return { name: s.name, dim: s.dim, metric: s.metric, ...(s.encoder ? { encoder: s.encoder } : {}) };
}

function checkInclude(include: readonly Include[] | undefined): Include[] {
  if (include === undefined) return [];
  if (!isArray(include)) throw new InvalidArgumentError('include must be an array');
  for (const f of include) {
    if (!INCLUDES.includes(f))
      throw new InvalidArgumentError(`include: unknown field ${JSON.stringify(f)}; one of ${INCLUDES.join(', ')}`);
  }
  return [...new Set(include)];
}

/** Per query: the best hit of each block (rows of a block's chunks share its id), k at most. */
function bestPerBlock(list: readonly SearchHit[], k: number): SearchHit[] {
  // The list is best first whatever the metric, so a block's first row is its best.
  const seen = new Set<string>();
  const out: SearchHit[] = [];
  for (const x of list) {
    const id = blockIdOf(x.id);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ ...x, id });
    if (out.length === k) break;
  }
  return out;
}
