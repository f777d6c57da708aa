import type { ResidentIndex, SearchKernel } from '../../kernels/search-kernel.js';
import type { Metric, TopKResult } from '../../kernels/types.js';
import { idBytes, type Segment } from './segment.js';

/**
 * An immutable run of rows whose vectors are resident on the device in a kernel index. Deletes
 * only flip the row's mask entry to −Infinity; compaction rewrites the segment without them.
 * The host keeps its own copy of the vectors for reads by id, snapshots and compaction.
 */
export class SealedSegment implements Segment {
  /** 0 for live rows, −Infinity for tombstones; fed to the kernel with every search. */
  readonly mask: Float32Array;
  private _tombstones = 0;
  private refs = 0;
  private retired = false;
  private readonly idBytesTotal: number;

  private constructor(
    readonly id: number,
    readonly dim: number,
    readonly metric: Metric,
    readonly vectors: Float32Array,
    readonly ids: readonly string[],
    readonly versions: Float64Array,
    private readonly index: ResidentIndex,
  ) {
    this.mask = new Float32Array(ids.length);
    let b = 0;
    for (const s of ids) b += idBytes(s);
    this.idBytesTotal = b;
  }

  /**
   * Builds the device index over `rows` vectors and returns the sealed segment.
   * @param dead rows to mark as tombstones from the start.
   */
  static async create(
    kernel: SearchKernel,
    id: number,
    dim: number,
    metric: Metric,
    vectors: Float32Array,
    ids: readonly string[],
    versions: Float64Array,
    dead: Iterable<number> = [],
  ): Promise<SealedSegment> {
    const rows = ids.length;
    const index = await kernel.createIndex(vectors, rows, dim, metric);
    const seg = new SealedSegment(id, dim, metric, vectors.subarray(0, rows * dim), ids, versions.subarray(0, rows), index);
    for (const r of dead) seg.tombstone(r);
    return seg;
  }

  get rows(): number {
    return this.ids.length;
  }

  get tombstones(): number {
    return this._tombstones;
  }

  isLive(row: number): boolean {
    return row < this.ids.length && this.mask[row] === 0;
  }

  tombstone(row: number): void {
    if (!this.isLive(row)) return;
    this.mask[row] = -Infinity;
    this._tombstones++;
  }

  search(queries: Float32Array, batch: number, k: number): Promise<TopKResult> {
    return this.index.search(queries, batch, k, this.mask, this._tombstones);
  }

  /** Marks a search in flight: the index outlives a compaction that retires it meanwhile. */
  acquire(): void {
    this.refs++;
  }

  /** Ends what {@link acquire} began. */
  async releaseRef(): Promise<void> {
    this.refs--;
    if (this.retired && this.refs === 0) await this.index.release();
  }

  /** Frees the device index once no search uses it any more. */
  async retire(): Promise<void> {
    this.retired = true;
    if (this.refs === 0) await this.index.release();
  }

  hostBytes(): number {
    return this.vectors.byteLength + this.versions.byteLength + this.mask.byteLength + this.idBytesTotal;
  }

  deviceBytes(): number {
    return this.retired ? 0 : this.index.deviceBytes;
  }
}
