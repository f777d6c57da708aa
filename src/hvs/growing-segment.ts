import { negSquaredNorms } from '../../kernels/graphs.js';
import type { RowMask, SearchKernel } from '../../kernels/search-kernel.js';
import type { TopKResult } from '../../kernels/types.js';
import type { Metric } from '../core/metric.js';
import { idBytes, type Segment } from './segment.js';
import { type CheckedBatch, copyRows } from '../core/vector.js';

const INITIAL_ROWS = 1024;

/**
 * The segment that takes writes: a fixed-capacity buffer searched by the kernel with its vectors
 * passed per call. When full it is sealed into a {@link SealedSegment}.
 */
export class GrowingSegment implements Segment {
  vectors: Float32Array;
  versions: Float64Array;
  readonly ids: string[] = [];
  /** Added to each score: `−‖x‖²` for L2, 0 otherwise, −Infinity for tombstones. */
  bias: Float32Array;
  private allocated: number;
  private _rows = 0;
  private _tombstones = 0;
  private idBytesTotal = 0;

  /**
   * @param initialRows rows allocated at first; buffers grow ×4 up to `capacity`, so an idle
   *   collection costs little and a busy one copies little.
   */
  constructor(
    readonly id: number,
    readonly dim: number,
    readonly metric: Metric,
    readonly capacity: number,
    private readonly kernel: SearchKernel,
    initialRows = INITIAL_ROWS,
    /** A full-capacity vectors buffer to reuse (its old contents are overwritten before use). */
    recycled?: Float32Array,
  ) {
    this.allocated = recycled ? capacity : Math.min(capacity, initialRows);
    this.vectors = recycled ?? new Float32Array(this.allocated * dim);
    this.versions = new Float64Array(this.allocated);
    this.bias = new Float32Array(this.allocated);
  }

  get rows(): number {
    return this._rows;
  }

  get tombstones(): number {
    return this._tombstones;
  }

  get full(): boolean {
    return this._rows === this.capacity;
  }

  /** Rows that still fit. */
  get free(): number {
    return this.capacity - this._rows;
  }

  private grow(needed: number): void {
    this.allocated = Math.min(this.capacity, Math.max(this.allocated * 4, needed));
    const vectors = new Float32Array(this.allocated * this.dim);
    vectors.set(this.vectors.subarray(0, this._rows * this.dim));
    const versions = new Float64Array(this.allocated);
    versions.set(this.versions.subarray(0, this._rows));
    const bias = new Float32Array(this.allocated);
    bias.set(this.bias.subarray(0, this._rows));
    this.vectors = vectors;
    this.versions = versions;
    this.bias = bias;
  }

  /**
   * Appends `count` rows of a checked batch starting at row `from`, copied (and normalised for
   * cosine) once into the segment; returns the first new row.
   */
  appendRun(ids: readonly string[], batch: CheckedBatch, from: number, count: number, versions: ArrayLike<number>): number {
    if (count > this.free) throw new Error('growing segment overflow');
    const first = this._rows;
    if (first + count > this.allocated) this.grow(first + count);
    const dim = this.dim;
    copyRows(batch, dim, from, count, this.vectors, first * dim);
    for (let t = 0; t < count; t++) {
      const id = ids[from + t];
      this.ids.push(id);
      this.idBytesTotal += idBytes(id);
      this.versions[first + t] = versions[t];
    }
    if (this.metric === 'l2') this.bias.set(negSquaredNorms(this.vectors.subarray(first * dim), count, dim), first);
    this._rows += count;
    return first;
  }

  readRow(row: number): Float32Array {
    return this.vectors.slice(row * this.dim, (row + 1) * this.dim);
  }

  isLive(row: number): boolean {
    return row < this._rows && this.bias[row] !== -Infinity;
  }

  tombstone(row: number): void {
    if (!this.isLive(row)) return;
    this.bias[row] = -Infinity;
    this._tombstones++;
  }

  /** Searches in flight: the buffers must not be reused for another segment until they end. */
  private refs = 0;

  async search(queries: Float32Array, batch: number, k: number, rows?: RowMask): Promise<TopKResult> {
    this.refs++;
    try {
      if (!rows) return await this.searchNow(queries, batch, k);
      return rows.select
        ? await this.searchSelected(queries, batch, k, rows.select)
        : await this.searchMasked(queries, batch, k, rows.mask);
    } finally {
      this.refs--;
    }
  }

  /** Scores only the rows in `select`: they are gathered into a buffer of their own. */
  private async searchSelected(queries: Float32Array, batch: number, k: number, select: Int32Array): Promise<TopKResult> {
    const dim = this.dim;
    const m = select.length;
    const vectors = new Float32Array(m * dim);
    const bias = new Float32Array(m);
    for (let i = 0; i < m; i++) {
      const r = select[i];
      vectors.set(this.vectors.subarray(r * dim, (r + 1) * dim), i * dim);
      bias[i] = this.bias[r];
    }
    const out = await this.kernel.searchTransient(vectors, m, dim, this.metric, bias, queries, batch, k);
    for (let i = 0; i < out.rows.length; i++) if (out.rows[i] >= 0) out.rows[i] = select[out.rows[i]];
    return out;
  }

  /** Scores every row with `mask` (which masks the tombstones too) added to the bias. */
  private searchMasked(queries: Float32Array, batch: number, k: number, mask: Float32Array): Promise<TopKResult> {
    const rows = this._rows;
    const bias = this.bias.slice(0, rows);
    for (let r = 0; r < rows; r++) bias[r] += mask[r];
    return this.kernel.searchTransient(this.vectors, rows, this.dim, this.metric, bias, queries, batch, k);
  }

  /**
   * The vectors buffer for a new growing segment, once this one is sealed: reusing it spares
   * touching a fresh segment's worth of memory (page faults are most of the cost of a write).
   * Undefined while a search still reads it or when it is not full-size.
   */
  takeBuffer(): Float32Array | undefined {
    if (this.refs > 0 || this.vectors.length !== this.capacity * this.dim) return undefined;
    return this.vectors;
  }

  private searchNow(queries: Float32Array, batch: number, k: number): Promise<TopKResult> {
    return this.kernel.searchTransient(this.vectors, this._rows, this.dim, this.metric, this.bias, queries, batch, k);
  }

  hostBytes(): number {
    return this.vectors.byteLength + this.versions.byteLength + this.bias.byteLength + this.idBytesTotal;
  }

  deviceBytes(): number {
    return 0;
  }

  diskBytes(): number {
    return 0;
  }
}
