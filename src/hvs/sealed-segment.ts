import type { IndexMask, IndexSearch, ResidentIndex, RowMask, SearchKernel } from '../../kernels/search-kernel.js';
import { negSquaredNorms } from '../../kernels/graphs.js';
import type { TopKResult } from '../../kernels/types.js';
import type { Metric } from '../core/metric.js';
import { idBytes, type Segment } from './segment.js';
import { type FileRef, VectorsFile } from './segment-file.js';

/** What {@link SealedSegment.create} builds a segment from. */
export interface SealedSegmentSource {
  id: number;
  dim: number;
  metric: Metric;
  /** At least `ids.length × dim` floats (normalised for cosine). */
  vectors: Float32Array;
  ids: readonly string[];
  versions: Float64Array;
  /** Rows to mark as tombstones from the start. */
  dead?: Iterable<number>;
  /** Directory of the collection's files. */
  dir: string;
  /** The vectors' file when it exists already (a loaded snapshot); otherwise one is written. */
  file?: FileRef;
  /** Have the kernel check the file's bytes against `file.crc32` (its vectors were not read here). */
  verifyFile?: boolean;
}

/**
 * An immutable run of rows whose vectors are resident on the device in a kernel index, with the
 * host's copy on disk (a {@link VectorsFile}) rather than in RAM. Deletes only flip the row's
 * mask entry to −Infinity; compaction rewrites the segment without them.
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
    readonly file: VectorsFile,
    readonly ids: readonly string[],
    readonly versions: Float64Array,
    private readonly index: ResidentIndex,
    private readonly kernel: SearchKernel,
  ) {
    this.mask = new Float32Array(ids.length);
    let b = 0;
    for (const s of ids) b += idBytes(s);
    this.idBytesTotal = b;
  }

  /**
   * Writes the vectors file, then starts the device index (built in the background by a worker
   * kernel: await {@link ready}); the caller may drop `vectors` afterwards.
   */
  static async create(src: SealedSegmentSource, kernel: SearchKernel): Promise<SealedSegment> {
    const rows = src.ids.length;
    const file = src.file
      ? VectorsFile.adopt(src.dir, src.file, src.dim)
      : await VectorsFile.create(src.dir, src.vectors, rows, src.dim);
    let index: ResidentIndex;
    try {
      const source = src.verifyFile && src.file ? { path: file.path, crc32: src.file.crc32 } : { path: file.path };
      index = await kernel.createIndex(src.vectors, rows, src.dim, src.metric, source);
    } catch (err) {
      file.close();
      throw err;
    }
    const seg = new SealedSegment(src.id, src.dim, src.metric, file, src.ids, src.versions.subarray(0, rows), index, kernel);
    for (const r of src.dead ?? []) seg.tombstone(r);
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

  /** Settles when the device index is built; rejects if building failed. */
  ready(): Promise<void> {
    return this.index.ready();
  }

  readRow(row: number): Float32Array {
    return this.file.readRow(row);
  }

  search(queries: Float32Array, batch: number, k: number, rows?: RowMask): Promise<TopKResult> {
    if (rows?.select) return this.searchSelected(queries, batch, k, rows.select, rows.gathered);
    return this.index.search(queries, batch, k, rows ?? { mask: this.mask, masked: this._tombstones });
  }

  /**
   * Scores only the rows in `select` (few rows match a filter): their vectors are read from the
   * segment's file (the host's copy) and scored as a transient batch, so the device index keeps
   * one pre-packed copy of the segment and no second one for gathers.
   */
  private async searchSelected(
    queries: Float32Array,
    batch: number,
    k: number,
    select: Int32Array,
    gathered?: Float32Array,
  ): Promise<TopKResult> {
    const m = select.length;
    const vectors = gathered ?? this.file.readRows(select);
    const bias = this.metric === 'l2' ? negSquaredNorms(vectors, m, this.dim) : new Float32Array(m);
    const out = await this.kernel.searchTransient(vectors, m, this.dim, this.metric, bias, queries, batch, k);
    for (let i = 0; i < out.rows.length; i++) if (out.rows[i] >= 0) out.rows[i] = select[out.rows[i]];
    return out;
  }

  /**
   * This segment as one item of a batched {@link SearchKernel.searchIndexes} call: its live rows,
   * or those `rows` lets through (a selection is searched by {@link search} instead).
   */
  searchItem(rows?: IndexMask): IndexSearch {
    return { index: this.index, ...(rows ?? { mask: this.mask, masked: this._tombstones }) };
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

  /**
   * Frees the device index once no search uses it any more and closes the vectors file (which
   * stays on disk until a snapshot no longer names it).
   */
  async retire(): Promise<void> {
    if (this.retired) return;
    this.retired = true;
    this.file.close();
    if (this.refs === 0) await this.index.release();
  }

  hostBytes(): number {
    return this.versions.byteLength + this.mask.byteLength + this.idBytesTotal;
  }

  deviceBytes(): number {
    return this.retired ? 0 : this.index.deviceBytes;
  }

  diskBytes(): number {
    return this.file.ref.bytes;
  }
}
