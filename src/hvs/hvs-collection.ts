import type { SearchKernel } from '../../kernels/search-kernel.js';
import { type TopKResult } from '../../kernels/types.js';
import { LIMITS } from '../core/limits.js';
import { type Metric } from '../core/metric.js';
import { ClosedError, InvalidArgumentError } from '../core/errors.js';
import { GrowingSegment } from './growing-segment.js';
import { assertId, isArray } from '../core/ids.js';
import { SealedSegment } from './sealed-segment.js';
import type { Segment } from './segment.js';
import { mergeTopK } from './top-k-merge.js';
import { type RestoredSegment, type SnapshotManifest, writeSnapshot } from './snapshot.js';
import type { CollectionStats, MemoryUsage } from './types.js';
import type { SearchHit } from '../core/search-hit.js';
import { checkBatch, kernelRows, type VectorBatch } from '../core/vector.js';

/** Options of an HVS collection. */
export interface HvsCollectionOptions {
  /**
   * Rows the growing segment holds before it seals into a device-resident segment (default
   * 32,768: at 384 dimensions a 48 MiB segment builds in ≈0.15 s, so the last build of a bulk
   * load is short; `compact()` merges segments later for fewer, larger ones).
   */
  sealThreshold?: number;
  /** Largest segment compaction builds by merging smaller ones (default 262,144 rows). */
  maxSegmentRows?: number;
}

/** Stands in for vectors a kernel reads from the segment's file itself. */
const NO_VECTORS = new Float32Array(0);

/** Full segments that may wait for their index while writes go on (each holds its buffer). */
const MAX_PENDING_SEALS = 3;

// A row's location packs the segment id and the row: segment * 2^24 + row (exact below 2^53).
const ROW_BITS = 2 ** 24;
const loc = (segment: number, row: number): number => segment * ROW_BITS + row;
const locSegment = (l: number): number => Math.floor(l / ROW_BITS);
const locRow = (l: number): number => l % ROW_BITS;

/**
 * A collection of the hot tier: string ids mapped to rows of segments; sealed segments resident
 * in the kernel's device memory plus one growing segment; batched search merges every segment's
 * top-k on the host.
 */
export class HvsCollection {
  readonly opts: Required<HvsCollectionOptions>;
  private readonly locations = new Map<string, number>();
  private readonly segments = new Map<number, Segment>();
  private growing: GrowingSegment;
  private nextSegmentId = 0;
  private _lsn = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  /**
   * Orders structural work (starting seals, compaction, snapshots) so it never interleaves;
   * never rejects.
   */
  private structural: Promise<unknown> = Promise.resolve();
  /** Seals whose index is still being built; their old growing segment serves until then. */
  private readonly sealsInFlight = new Set<Promise<void>>();
  /** A sealing failure, reported by the next write; the rows stay searchable in the old segment. */
  private sealError: Error | undefined;
  private pendingSeals = 0;
  /** Full segments whose seal failed: still searched in place, sealed again by flush(). */
  private readonly unsealed = new Set<GrowingSegment>();
  /** The vectors buffer of the last sealed growing segment, reused by the next one (one kept). */
  private readonly spareBuffers: Float32Array[] = [];

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
    this.opts = { sealThreshold: 32_768, maxSegmentRows: 262_144, ...opts };
    for (const [k, v] of Object.entries(this.opts)) {
      if (!Number.isInteger(v) || v < 1 || v >= ROW_BITS) {
        throw new InvalidArgumentError(`${k} must be an integer in [1, ${ROW_BITS - 1}], got ${String(v)}`);
      }
    }
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
   */
  async upsert(ids: readonly string[], vectors: VectorBatch, versions?: readonly number[]): Promise<void> {
    this.assertOpen();
    if (!isArray(ids) || ids.length === 0) throw new InvalidArgumentError('upsert: ids must be a non-empty array');
    for (let i = 0; i < ids.length; i++) assertId(ids[i], `ids[${i}]`);
    if (versions !== undefined) {
      if (versions.length !== ids.length) throw new InvalidArgumentError('upsert: versions and ids differ in length');
      for (const v of versions) {
        if (!Number.isSafeInteger(v) || v < 0)
          throw new InvalidArgumentError(`upsert: version must be a non-negative integer, got ${v}`);
      }
    }
    const batch = checkBatch(vectors, this.dim, this.metric, 'vectors', ids.length);
    for (let i = 0; i < ids.length;) {
      if (this.growing.full) this.sealGrowing();
      const g = this.growing;
      const take = Math.min(ids.length - i, g.free);
      const base = g.rows;
      const runVersions = new Float64Array(take);
      const deadInRun: number[] = [];
      for (let t = 0; t < take; t++) {
        const id = ids[i + t];
        const previous = this.locations.get(id);
        let version = versions?.[i + t];
        if (previous !== undefined) {
          const segId = locSegment(previous);
          const row = locRow(previous);
          if (segId === g.id && row >= base) {
            // The same id earlier in this run: its row is not written yet.
            version ??= runVersions[row - base] + 1;
            deadInRun.push(row);
          } else {
            const seg = this.segments.get(segId);
            if (seg) {
              version ??= seg.versions[row] + 1;
              seg.tombstone(row);
            }
          }
        }
        runVersions[t] = version ?? 1;
        this.locations.set(id, loc(g.id, base + t));
      }
      g.appendRun(ids, batch, i, take, runVersions);
      for (const row of deadInRun) g.tombstone(row);
      i += take;
    }
    if (this.growing.full) this.sealGrowing();
    // Seals run behind the writes (their indexes are built beside this thread); past
    // MAX_PENDING_SEALS, writes wait, so the memory held by segments being sealed stays bounded.
    while (this.pendingSeals > MAX_PENDING_SEALS) await Promise.race(this.sealsInFlight);
    this.rethrowSealError();
  }

  /** Waits for sealing in progress and rethrows a sealing failure once. */
  private async settle(): Promise<void> {
    await this.quiesce();
    this.rethrowSealError();
  }

  /** Waits until no structural work is queued and no seal is in flight. */
  private async quiesce(): Promise<void> {
    for (;;) {
      const tail = this.structural;
      await tail;
      await Promise.all(this.sealsInFlight);
      if (tail === this.structural && this.sealsInFlight.size === 0) return;
    }
  }

  /** Queues `work` after all structural work and in-flight seals. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.structural.then(async () => {
      await Promise.all(this.sealsInFlight);
      return work();
    });
    this.structural = run.catch(() => undefined);
    return run;
  }

  private rethrowSealError(): void {
    const err = this.sealError;
    if (err !== undefined) {
      this.sealError = undefined;
      throw err;
    }
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
      n++;
    }
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
   * Every live row, a segment at a time (a sealed segment's vectors are read from its file in one
   * go): for digests and consistency checks. Rows written or deleted meanwhile may or may not
   * be seen.
   */
  async *scan(): AsyncGenerator<{ ids: string[]; versions: number[]; vectors: Float32Array }> {
    this.assertOpen();
    for (const seg of [...this.segments.values()]) {
      const rows: number[] = [];
      for (let r = 0; r < seg.rows; r++) if (this.locations.get(seg.ids[r]) === loc(seg.id, r)) rows.push(r);
      if (rows.length === 0) continue;
      const all = seg instanceof SealedSegment ? await seg.file.readAll() : undefined;
      const vectors = new Float32Array(rows.length * this.dim);
      const ids: string[] = [];
      const versions: number[] = [];
      rows.forEach((r, i) => {
        ids.push(seg.ids[r]);
        versions.push(seg.versions[r]);
        vectors.set(all ? all.subarray(r * this.dim, (r + 1) * this.dim) : seg.readRow(r), i * this.dim);
      });
      yield { ids, versions, vectors };
    }
  }

  /**
   * Batched k-nearest-neighbour search over every segment; hits best first (highest similarity,
   * or smallest L2 distance).
   */
  async search(queries: VectorBatch, k: number): Promise<SearchHit[][]> {
    this.assertOpen();
    if (!Number.isInteger(k) || k < 1 || k > LIMITS.k) {
      throw new InvalidArgumentError(`k must be an integer between 1 and ${LIMITS.k}, got ${String(k)}`);
    }
    const checked = checkBatch(queries, this.dim, this.metric, 'queries');
    const batch = checked.count;
    const data = kernelRows(checked, this.dim);
    const segments = [...this.segments.values()].filter((s) => s.rows - s.tombstones > 0);
    // Sealed segments go to the kernel in one batched call (one round trip per worker thread)
    // while growing segments are searched here, at the same time.
    const sealed = segments.filter((s): s is SealedSegment => s instanceof SealedSegment);
    const others = segments.filter((s) => !(s instanceof SealedSegment));
    for (const s of sealed) s.acquire();
    let parts: TopKResult[];
    try {
      const [a, b] = await Promise.all([
        sealed.length > 0
          ? this.kernel.searchIndexes(
              sealed.map((s) => s.searchItem()),
              data,
              batch,
              k,
            )
          : [],
        Promise.all(others.map((seg) => seg.search(data, batch, k))),
      ]);
      parts = [...a, ...b];
    } finally {
      for (const s of sealed) await s.releaseRef();
    }
    const ordered: Segment[] = [...sealed, ...others];
    const queryNorms = this.metric === 'l2' ? squaredNorms(data, batch, this.dim) : undefined;
    const results: SearchHit[][] = [];
    for (let q = 0; q < batch; q++) {
      const hits: SearchHit[] = [];
      for (const slot of mergeTopK(parts, q, k)) {
        const seg = ordered[slot.part];
        const score = queryNorms ? Math.sqrt(Math.max(0, queryNorms[q] - slot.score)) : slot.score;
        hits.push({ id: seg.ids[slot.row], score, version: seg.versions[slot.row] });
      }
      results.push(hits);
    }
    return results;
  }

  /**
   * Waits until segments being sealed are on the device (writes return before that: a seal runs
   * beside them) and reports a sealing failure.
   */
  async idle(): Promise<void> {
    this.assertOpen();
    await this.settle();
  }

  /**
   * Seals the growing segment now, whatever its size (e.g. after a bulk load), and retries seals
   * that failed before.
   */
  async flush(): Promise<void> {
    this.assertOpen();
    for (const g of this.unsealed) {
      this.unsealed.delete(g);
      this.seal(g);
    }
    if (this.growing.rows > 0) this.sealGrowing();
    await this.settle();
    // A flush ends a bulk load: the buffers kept for the next seals would only hold memory now.
    this.spareBuffers.length = 0;
  }

  /**
   * Rewrites sealed segments without their tombstones, merging small neighbours up to
   * `maxSegmentRows`. Searches keep running against the old segments until the switch.
   */
  compact(): Promise<{ rewritten: number; dropped: number }> {
    this.assertOpen();
    return this.exclusive(() => this.compactNow());
  }

  stats(): CollectionStats {
    let tombstones = 0;
    let sealed = 0;
    for (const s of this.segments.values()) {
      tombstones += s.tombstones;
      if (s instanceof SealedSegment) sealed++;
    }
    return {
      name: this.name,
      dim: this.dim,
      metric: this.metric,
      count: this.count,
      tombstones,
      sealedSegments: sealed,
      sealingSegments: this.pendingSeals,
      growingRows: this.growing.rows,
      lsn: this._lsn,
      ...this.memoryUsage(),
    };
  }

  memoryUsage(): MemoryUsage {
    let hostBytes = 0;
    let deviceBytes = 0;
    let diskBytes = 0;
    for (const s of this.segments.values()) {
      hostBytes += s.hostBytes();
      deviceBytes += s.deviceBytes();
      diskBytes += s.diskBytes();
    }
    // The id → location map: a Map entry plus a number per id, roughly.
    hostBytes += this.locations.size * 24;
    return { hostBytes, deviceBytes, diskBytes };
  }

  /**
   * Writes a snapshot of the collection into its directory (see {@link writeSnapshot}); sealing
   * and compaction wait meanwhile, writes go on.
   */
  snapshot(): Promise<SnapshotManifest> {
    this.assertOpen();
    return this.exclusive(() =>
      writeSnapshot(
        this.dir,
        { name: this.name, dim: this.dim, metric: this.metric },
        [...this.segments.values()],
        this._lsn,
        () => this.filesInUse(),
      ),
    );
  }

  private *filesInUse(): Iterable<string> {
    for (const s of this.segments.values()) if (s instanceof SealedSegment) yield s.file.ref.file;
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
  ): Promise<HvsCollection> {
    const c = new HvsCollection(name, dim, metric, kernel, dir, opts);
    // Every segment's index starts building before any is awaited, so the kernel's worker
    // threads build them side by side.
    const building: Promise<void>[] = [];
    try {
      for (const p of parts) {
        const id = c.nextSegmentId++;
        const dead: number[] = [];
        for (let r = 0; r < p.ids.length; r++) if (!p.live[r]) dead.push(r);
        const seg = await SealedSegment.create(
          {
            id,
            dim,
            metric,
            vectors: p.vectors ?? NO_VECTORS,
            ids: p.ids,
            versions: p.versions,
            dead,
            dir,
            file: p.vectorsRef,
            verifyFile: p.vectors === undefined,
          },
          kernel,
        );
        c.segments.set(id, seg);
        building.push(seg.ready());
        for (let r = 0; r < p.ids.length; r++) {
          if (!p.live[r]) continue;
          // An id live twice (it cannot be in a snapshot this code wrote) keeps its last row.
          const earlier = c.locations.get(p.ids[r]);
          if (earlier !== undefined) c.segments.get(locSegment(earlier))?.tombstone(locRow(earlier));
          c.locations.set(p.ids[r], loc(id, r));
        }
      }
      await Promise.all(building);
      c.segments.delete(c.growing.id);
      c.growing = c.newGrowing();
      c._lsn = lsn;
      return c;
    } catch (err) {
      await Promise.allSettled(building);
      await c.close();
      throw err;
    }
  }

  /** Releases every device index; safe to call twice (a second call waits for the first). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await this.quiesce();
      for (const s of this.segments.values()) if (s instanceof SealedSegment) await s.retire();
      this.segments.clear();
      this.locations.clear();
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
      initialRows === this.opts.sealThreshold ? this.spareBuffers.pop() : undefined,
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
    this.seal(old);
  }

  /** Seals a segment that no longer takes writes; on failure it keeps serving and is retried. */
  private seal(old: GrowingSegment): void {
    this.pendingSeals++;
    // Starting a seal (writing its file, asking for its index) is ordered with other structural
    // work; the index is then built beside this thread while the next seal may already start.
    const started = this.structural.then(async () => {
      if (this.closed) return undefined;
      const rows = old.rows;
      const vectors = old.full ? old.vectors : old.vectors.slice(0, rows * this.dim);
      const versions = old.full ? old.versions : old.versions.slice(0, rows);
      return SealedSegment.create(
        { id: old.id, dim: this.dim, metric: this.metric, vectors, ids: old.ids, versions, dir: this.dir },
        this.kernel,
      );
    });
    this.structural = started.catch(() => undefined);
    const done = started
      .then(async (sealed) => {
        if (!sealed) return;
        try {
          await sealed.ready();
        } catch (err) {
          await sealed.retire();
          throw err;
        }
        if (this.closed) {
          await sealed.retire();
          return;
        }
        // Until now the old segment served searches and took deletes; carry those over and swap.
        for (let r = 0; r < sealed.rows; r++) if (!old.isLive(r)) sealed.tombstone(r);
        this.segments.set(old.id, sealed);
        const spare = old.takeBuffer();
        if (spare && this.spareBuffers.length < 1) this.spareBuffers.push(spare);
      })
      .catch((err: unknown) => {
        // The rows stay searchable where they are; the next flush() tries again.
        this.unsealed.add(old);
        this.sealError = err instanceof Error ? err : new Error(`sealing failed: ${String(err)}`);
      })
      .finally(() => {
        this.pendingSeals--;
        this.sealsInFlight.delete(done);
      });
    this.sealsInFlight.add(done);
  }

  private async compactNow(): Promise<{ rewritten: number; dropped: number }> {
    const sealed = [...this.segments.values()].filter((s): s is SealedSegment => s instanceof SealedSegment);
    const groups: SealedSegment[][] = [];
    let group: SealedSegment[] = [];
    let groupRows = 0;
    const flushGroup = (): void => {
      // A group of one clean segment gains nothing from a rewrite.
      if (group.length > 1 || (group.length === 1 && group[0].tombstones > 0)) groups.push(group);
      group = [];
      groupRows = 0;
    };
    for (const s of sealed) {
      const live = s.rows - s.tombstones;
      const small = s.rows < this.opts.maxSegmentRows / 2;
      if (s.tombstones === 0 && !small) {
        flushGroup();
        continue;
      }
      if (groupRows + live > this.opts.maxSegmentRows) flushGroup();
      group.push(s);
      groupRows += live;
    }
    flushGroup();

    let rewritten = 0;
    let dropped = 0;
    for (const g of groups) {
      if (this.closed) break;
      const sources: { seg: SealedSegment; row: number }[] = [];
      for (const s of g) for (let r = 0; r < s.rows; r++) if (s.isLive(r)) sources.push({ seg: s, row: r });
      const id = this.nextSegmentId++;
      const vectors = new Float32Array(sources.length * this.dim);
      const versions = new Float64Array(sources.length);
      const ids: string[] = new Array<string>(sources.length);
      const contents = new Map<SealedSegment, Float32Array>();
      for (const s of g) contents.set(s, await s.file.readAll());
      sources.forEach(({ seg, row }, i) => {
        vectors.set(contents.get(seg)!.subarray(row * this.dim, (row + 1) * this.dim), i * this.dim);
        versions[i] = seg.versions[row];
        ids[i] = seg.ids[row];
      });
      contents.clear();
      const merged =
        sources.length > 0
          ? await SealedSegment.create(
              { id, dim: this.dim, metric: this.metric, vectors, ids, versions, dir: this.dir },
              this.kernel,
            )
          : undefined;
      // Rows deleted or replaced while the new index was built stay dead in it.
      sources.forEach(({ seg, row }, i) => {
        if (!merged) return;
        if (seg.isLive(row)) this.locations.set(ids[i], loc(id, i));
        else merged.tombstone(i);
      });
      if (merged) this.segments.set(id, merged);
      for (const s of g) {
        dropped += s.tombstones;
        this.segments.delete(s.id);
        await s.retire();
      }
      rewritten += g.length;
    }
    return { rewritten, dropped };
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError(`collection "${this.name}"`);
  }
}

function squaredNorms(data: Float32Array, batch: number, dim: number): Float64Array {
  const out = new Float64Array(batch);
  for (let q = 0; q < batch; q++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[q * dim + j] * data[q * dim + j];
    out[q] = s;
  }
  return out;
}
