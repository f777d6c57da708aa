import type { SearchKernel } from '../../kernels/search-kernel.js';
import { LIMITS } from '../core/limits.js';
import { type Metric } from '../core/metric.js';
import { ClosedError, InvalidArgumentError } from '../core/errors.js';
import { compactionDue, compactSegments } from './compaction.js';
import { GrowingSegment } from './growing-segment.js';
import { isArray } from '../core/ids.js';
import { locRow, locSegment } from './row-location.js';
import { restoreSegments } from './restore-segments.js';
import { SealScheduler } from './seal-scheduler.js';
import { SealedSegment } from './sealed-segment.js';
import type { Segment } from './segment.js';
import { estimateFilter, FilterMaskCache, type FilterRun, searchFiltered } from './filtered-search.js';
import { appendRows, checkUpsert, collectionOptions, memoryOf, scanLiveRows, segmentCounts } from './collection-rows.js';
import { MetadataColumns } from './metadata-columns.js';
import { CollectionIndex, type AnnPlan } from './ivf/collection-index.js';
import type { IvfTrainOptions } from './ivf/ivf-build.js';
import { IvfSegment, type IvfSummary } from './ivf/ivf-segment.js';
import type { FilterNode } from '../core/filter.js';
import { encodeSnapshotMetadata, type RestoredSegment, type SnapshotManifest, writeSnapshot } from './snapshot.js';
import type { CollectionParts, CollectionStats, HvsCollectionOptions, HvsSearchOptions, MemoryUsage } from './types.js';
import type { SearchHit } from '../core/search-hit.js';
import { checkBatch, QueryBatch, type VectorBatch } from '../core/vector.js';

/**
 * A collection of the hot tier: string ids mapped to rows of segments; sealed segments resident
 * in the kernel's device memory plus one growing segment; batched search merges every segment's
 * top-k on the host.
 */
export class HvsCollection {
  readonly opts: Required<HvsCollectionOptions>;
  private readonly locations = new Map<string, number>();
  private readonly segments = new Map<number, Segment>();
  /** Each live id's metadata as columns a filter scans, and the row masks of recent filters. */
  private readonly columns = new MetadataColumns();
  private readonly filterMasks = new FilterMaskCache();
  private growing: GrowingSegment;
  private nextSegmentId = 0;
  private _lsn = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** A compaction started by {@link maybeCompact}, until it ends. */
  private autoCompaction: Promise<void> | undefined;
  /** What sealing, compaction and restoring work on. */
  private readonly parts: CollectionParts;
  /** Seals full growing segments behind the writes and orders structural work. */
  private readonly seals: SealScheduler;
  /** The IVF index over the sealed rows, and the plan of each search. */
  private readonly index: CollectionIndex;

  /**
   * @param dir directory of the collection's files (sealed segments' vectors, snapshots); must exist.
   */
  constructor(
    readonly name: string,
    readonly dim: number,
    readonly metric: Metric,
    private readonly kernel: SearchKernel,
    readonly dir: string,
    opts: HvsCollectionOptions = {},
  ) {
    this.opts = collectionOptions(opts);
    this.parts = {
      dim,
      metric,
      dir,
      kernel,
      segments: this.segments,
      locations: this.locations,
      newSegmentId: () => this.nextSegmentId++,
      isClosed: () => this.closed,
    };
    this.seals = new SealScheduler(this.parts);
    this.index = new CollectionIndex(this.parts, (work) => this.seals.exclusive(work), this.opts.ivfMinRows);
    this.growing = this.newGrowing();
  }

  /** Last change-log position applied. */
  get lsn(): number {
    return this._lsn;
  }

  /** Records that changes up to `lsn` are applied (never moves backwards). */
  advanceLsn(lsn: number): void {
    if (!Number.isSafeInteger(lsn) || lsn < 0) throw new InvalidArgumentError(`lsn must be a non-negative integer, got ${lsn}`);
    if (lsn > this._lsn) this._lsn = lsn;
  }

  /** Moves whenever what a search reads may change (writes, deletes, index swaps): the result cache's stamp. */
  get changes(): number {
    return this.columns.edits + this.seals.structuralRuns;
  }

  /** Live vectors. */
  get count(): number {
    return this.locations.size;
  }

  has(id: string): boolean {
    return this.locations.has(id);
  }

  /**
   * Inserts or replaces vectors. The whole batch is validated first: on any bad id or vector
   * nothing is written. An id given twice in one batch keeps the last vector.
   * @param versions one version per id (default: the previous version + 1, or 1).
   * @param metadata one metadata object per id (checked by the caller), for filters; default `{}`.
   */
  async upsert(
    ids: readonly string[],
    vectors: VectorBatch,
    versions?: readonly number[],
    metadata?: readonly (Record<string, unknown> | undefined)[],
  ): Promise<void> {
    this.assertOpen();
    checkUpsert(ids, versions, metadata);
    const batch = checkBatch(vectors, this.dim, this.metric, 'vectors', ids.length);
    for (let i = 0; i < ids.length; i++) this.columns.set(ids[i], metadata?.[i] ?? EMPTY);
    appendRows(this.parts, { current: () => this.growing, seal: () => this.sealGrowing() }, ids, batch, versions);
    if (this.growing.full) this.sealGrowing();
    // Seals run behind the writes (their indexes are built beside this thread); past a few in
    // flight, writes wait, so the memory held by segments being sealed stays bounded.
    await this.seals.throttle();
    this.index.maybeStart();
    this.maybeCompact();
  }

  /** Deletes ids (tombstones their rows); returns how many existed. */
  delete(ids: readonly string[]): number {
    this.assertOpen();
    if (!isArray(ids)) throw new InvalidArgumentError('delete: ids must be an array');
    let n = 0;
    for (const id of ids) {
      const l = this.locations.get(id);
      if (l === undefined) continue;
      this.segments.get(locSegment(l))?.tombstone(locRow(l));
      this.locations.delete(id);
      this.columns.delete(id);
      n++;
    }
    if (n > 0) this.maybeCompact();
    return n;
  }

  /** The ids of live rows. */
  ids(): IterableIterator<string> {
    return this.locations.keys();
  }

  /** The version of `id`'s row, or undefined when it has none. */
  versionOf(id: string): number | undefined {
    const l = this.locations.get(id);
    if (l === undefined) return undefined;
    return this.segments.get(locSegment(l))?.versions[locRow(l)];
  }

  /** The stored vector of `id` (normalised for cosine) and its version, or undefined. */
  get(id: string): { vector: Float32Array; version: number } | undefined {
    this.assertOpen();
    const l = this.locations.get(id);
    if (l === undefined) return undefined;
    const seg = this.segments.get(locSegment(l));
    if (!seg) return undefined;
    const row = locRow(l);
    return { vector: seg.readRow(row), version: seg.versions[row] };
  }

  /**
   * Every live row, a segment at a time (see {@link scanLiveRows}): for digests and consistency
   * checks. Rows written or deleted meanwhile may or may not be seen.
   */
  scan(): AsyncGenerator<{ ids: string[]; versions: number[]; vectors: Float32Array }> {
    this.assertOpen();
    return scanLiveRows(this.parts);
  }

  /**
   * Batched k-nearest-neighbour search over every segment; hits best first (highest similarity,
   * or smallest L2 distance). With a filter, top-k is exact over the rows that match.
   */
  async search(queries: VectorBatch | QueryBatch, k: number, opts: HvsSearchOptions = {}): Promise<SearchHit[][]> {
    return (await this.searchWithRuns(queries, k, opts)).hits;
  }

  /** {@link search}, with how each query's filter ran (undefined without one) and the index plan. */
  async searchWithRuns(
    queries: VectorBatch | QueryBatch,
    k: number,
    opts: HvsSearchOptions = {},
  ): Promise<{ hits: SearchHit[][]; runs: (FilterRun | undefined)[]; plan: AnnPlan }> {
    this.assertOpen();
    if (!Number.isInteger(k) || k < 1 || (k > LIMITS.k && !opts.unboundedK)) {
      throw new InvalidArgumentError(`k must be an integer between 1 and ${LIMITS.k}, got ${String(k)}`);
    }
    // A QueryBatch was checked and normalised where it entered; anything else is checked here.
    const q =
      queries instanceof QueryBatch && queries.dim === this.dim && queries.metric === this.metric
        ? queries
        : QueryBatch.of(queries instanceof QueryBatch ? queries.data : queries, this.dim, this.metric, 'queries');
    const plan = this.planSearch(k, opts);
    const probe = this.index.probe(plan);
    const segments = (): Iterable<Segment> => this.segments.values();
    const r = await searchFiltered(this.kernel, segments, this.columns, this.filterMasks, q, k, opts.filter, probe);
    return { ...r, plan };
  }

  /**
   * How a search for `k` results with `opts` would run: exact, or the IVF index with its `nprobe`
   * (the calibrated default, the one asked for, or the one a target recall needs).
   */
  planSearch(k: number, opts: HvsSearchOptions = {}): AnnPlan {
    return this.index.plan(k, opts);
  }

  /**
   * Trains the IVF index over the sealed rows now (flush first to include the growing rows), or
   * with `reuse` folds new rows into the current lists. Searches stay exact until it is swapped in.
   */
  async trainIndex(opts: IvfTrainOptions = {}): Promise<IvfSummary | undefined> {
    this.assertOpen();
    return (await this.index.train(opts))?.summary();
  }

  /** Live rows `filter` matches and their share (the planner's estimate). */
  estimate(filter: FilterNode): { matching: number; live: number; selectivity: number } {
    this.assertOpen();
    return estimateFilter(this.columns, this.locations.keys(), filter);
  }

  /** `id`'s metadata rebuilt from the filter columns, or undefined. */
  metadataOf(id: string): Record<string, unknown> | undefined {
    return this.columns.get(id);
  }

  /**
   * Waits until segments being sealed are on the device and a background compaction has ended (writes
   * return before that: both run beside them) and reports a sealing failure.
   */
  async idle(): Promise<void> {
    this.assertOpen();
    await this.autoCompaction;
    await this.seals.settle();
  }

  /** Seals the growing segment now, whatever its size (after a bulk load); retries failed seals. */
  async flush(): Promise<void> {
    this.assertOpen();
    this.seals.retryFailed();
    if (this.growing.rows > 0) this.sealGrowing();
    await this.seals.settle();
    // A flush ends a bulk load: the buffers kept for the next seals would only hold memory now.
    this.seals.dropSpareBuffers();
    this.index.maybeStart();
  }

  /**
   * Rewrites sealed segments without tombstones, merging small neighbours, and folds sealed rows
   * and tombstones into the IVF index where there is one (searches go on meanwhile).
   */
  async compact(): Promise<{ rewritten: number; dropped: number; folded: number }> {
    this.assertOpen();
    const r = await this.seals.exclusive(() => compactSegments(this.parts, this.opts.maxSegmentRows));
    return { ...r, folded: await this.index.fold() };
  }

  stats(): CollectionStats {
    const { tombstones, sealed } = segmentCounts(this.segments.values());
    return {
      name: this.name,
      dim: this.dim,
      metric: this.metric,
      count: this.count,
      tombstones,
      sealedSegments: sealed,
      sealingSegments: this.seals.pending,
      growingRows: this.growing.rows,
      lsn: this._lsn,
      index: this.index.stats(),
      ...this.memoryUsage(),
    };
  }

  memoryUsage(): MemoryUsage {
    // The id → location map: a Map entry plus a number per id, roughly; the metadata columns.
    return memoryOf(this.segments.values(), this.locations.size * 24 + this.columns.bytes());
  }

  /**
   * Writes a snapshot of the collection into its directory (see {@link writeSnapshot}); sealing
   * and compaction wait meanwhile, writes go on.
   */
  snapshot(): Promise<SnapshotManifest> {
    this.assertOpen();
    return this.seals.exclusive(() =>
      writeSnapshot(
        this.dir,
        { name: this.name, dim: this.dim, metric: this.metric },
        [...this.segments.values()],
        this._lsn,
        () => this.filesInUse(),
        () => encodeSnapshotMetadata(this.columns.entries(this.locations.keys())),
      ),
    );
  }

  private *filesInUse(): Iterable<string> {
    for (const s of this.segments.values()) if (s instanceof SealedSegment || s instanceof IvfSegment) yield s.file.ref.file;
  }

  /**
   * Builds a collection from snapshot contents: sealed segments go back onto the device, the
   * growing rows into a fresh growing segment.
   */
  static async restore(
    name: string,
    dim: number,
    metric: Metric,
    kernel: SearchKernel,
    dir: string,
    opts: HvsCollectionOptions,
    parts: readonly RestoredSegment[],
    lsn: number,
    metadata: ReadonlyMap<string, Record<string, unknown>>,
  ): Promise<HvsCollection> {
    const c = new HvsCollection(name, dim, metric, kernel, dir, opts);
    try {
      await restoreSegments(c.parts, parts);
      for (const id of c.locations.keys()) c.columns.set(id, metadata.get(id) ?? EMPTY);
      c.segments.delete(c.growing.id);
      c.growing = c.newGrowing();
      c._lsn = lsn;
      return c;
    } catch (err) {
      await c.close();
      throw err;
    }
  }

  /** Releases every device index; safe to call twice (a second call waits for the first). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await this.index.close();
      await this.autoCompaction;
      await this.seals.quiesce();
      for (const s of this.segments.values()) {
        if (s instanceof SealedSegment) await s.retire();
        else if (s instanceof IvfSegment) s.retire();
      }
      this.segments.clear();
      this.locations.clear();
      this.columns.clear();
      this.filterMasks.clear();
    })();
    return this.closing;
  }

  private newGrowing(initialRows?: number): GrowingSegment {
    const g = new GrowingSegment(
      this.nextSegmentId++,
      this.dim,
      this.metric,
      this.opts.sealThreshold,
      this.kernel,
      initialRows,
      initialRows === this.opts.sealThreshold ? this.seals.takeSpareBuffer() : undefined,
    );
    this.segments.set(g.id, g);
    return g;
  }

  /**
   * Swaps in a new growing segment and seals the old one in the background of this collection's
   * structural queue; the old one stays searchable (and deletable) until its index is ready.
   */
  private sealGrowing(): void {
    const old = this.growing;
    // A collection that filled a segment is likely to fill the next: allocate it whole.
    this.growing = this.newGrowing(old.full ? this.opts.sealThreshold : undefined);
    this.seals.seal(old);
  }

  /** Starts a background compaction when tombstones are due one ({@link compactionDue}); one at a time. */
  private maybeCompact(): void {
    if (this.autoCompaction || this.closed || !compactionDue(this.segments.values(), this.opts.compactTombstonePercent)) return;
    // A failure leaves the old segments serving; the next write tries again.
    this.autoCompaction = this.compact()
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => (this.autoCompaction = undefined));
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError(`collection "${this.name}"`);
  }
}

const EMPTY: Record<string, unknown> = Object.freeze({});
