import type { SearchKernel } from '../../kernels/search-kernel.js';
import type { Metric, TopKResult } from '../../kernels/types.js';
import { idBytes, type Segment } from './segment.js';

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

  constructor(
    readonly id: number,
    readonly dim: number,
    readonly metric: Metric,
    readonly capacity: number,
    private readonly kernel: SearchKernel,
  ) {
    // Buffers start small and double up to `capacity`, so an idle collection costs little.
    this.allocated = Math.min(capacity, INITIAL_ROWS);
    this.vectors = new Float32Array(this.allocated * dim);
    this.versions = new Float64Array(this.allocated);
    this.bias = new Float32Array(this.allocated);
  }

  private grow(): void {
    this.allocated = Math.min(this.capacity, this.allocated * 2);
    const vectors = new Float32Array(this.allocated * this.dim);
    vectors.set(this.vectors);
    const versions = new Float64Array(this.allocated);
    versions.set(this.versions);
    const bias = new Float32Array(this.allocated);
    bias.set(this.bias);
    this.vectors = vectors;
    this.versions = versions;
    this.bias = bias;
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

  /** Appends `vector` (already validated and normalised) and returns its row. */
  append(id: string, vector: Float32Array, version: number): number {
    if (this.full) throw new Error('growing segment is full');
    if (this._rows === this.allocated) this.grow();
    const row = this._rows++;
    this.vectors.set(vector, row * this.dim);
    this.versions[row] = version;
    this.ids.push(id);
    this.idBytesTotal += idBytes(id);
    if (this.metric === 'l2') {
      let s = 0;
      for (let j = 0; j < this.dim; j++) s += vector[j] * vector[j];
      this.bias[row] = -s;
    }
    return row;
  }

  isLive(row: number): boolean {
    return row < this._rows && this.bias[row] !== -Infinity;
  }

  tombstone(row: number): void {
    if (!this.isLive(row)) return;
    this.bias[row] = -Infinity;
    this._tombstones++;
  }

  search(queries: Float32Array, batch: number, k: number): Promise<TopKResult> {
    return this.kernel.searchTransient(this.vectors, this._rows, this.dim, this.metric, this.bias, queries, batch, k);
  }

  hostBytes(): number {
    return this.vectors.byteLength + this.versions.byteLength + this.bias.byteLength + this.idBytesTotal;
  }

  deviceBytes(): number {
    return 0;
  }
}
