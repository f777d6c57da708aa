import type { RowMask } from '../../../kernels/search-kernel.js';
import type { TopKResult } from '../../../kernels/types.js';
import type { Metric } from '../../core/metric.js';
import { idBytes, type Segment } from '../segment.js';
import type { VectorsFile } from '../segment-file.js';
import type { Calibration } from './calibrate.js';
import type { IvfIndex } from './ivf-index.js';
import type { IvfFileContents } from './ivf-file.js';

/** How an approximate search runs over an {@link IvfSegment}. */
export interface IvfProbe {
  /** Lists scanned per query. */
  nprobe: number;
  /** Entries rescored exactly per query (≥ k). */
  candidates: number;
}

/** What an IVF segment reports of itself (stats, explain). */
export interface IvfSummary {
  nlist: number;
  /** Entries, live or deleted. */
  rows: number;
  deleted: number;
  /** Calibrated default `nprobe` and the recall it measured. */
  nprobe: number;
  expectedRecall: number;
  calibration: Calibration;
  /** Hot-tier bytes (int8 codes, centroids, list offsets) and their share of the fp32 vectors. */
  hotBytes: number;
  hotShareOfFp32: number;
  trainMs: number;
  /** Instruction set of the native kernel. */
  isa: string;
}

/**
 * A segment whose rows are held in an IVF index: int8 codes in lists (the hot tier) scanned for
 * approximate search, the fp32 vectors in host memory for exact rescoring and for exact search,
 * and the same vectors in a file (list order) for snapshots. Rows are the index's entries.
 */
export class IvfSegment implements Segment {
  private readonly idBytesTotal: number;
  private retired = false;

  constructor(
    readonly id: number,
    readonly metric: Metric,
    readonly index: IvfIndex,
    readonly file: VectorsFile,
    readonly ids: readonly string[],
    readonly versions: Float64Array,
    readonly calibration: Calibration,
    readonly trainMs: number,
    readonly isa: string,
  ) {
    let b = 0;
    for (const s of ids) b += idBytes(s);
    this.idBytesTotal = b;
  }

  get dim(): number {
    return this.index.dim;
  }

  get rows(): number {
    return this.index.rows;
  }

  get tombstones(): number {
    return this.index.deleted;
  }

  isLive(row: number): boolean {
    return this.index.isLive(row);
  }

  tombstone(row: number): void {
    this.index.delete(row);
  }

  readRow(row: number): Float32Array {
    return this.index.vector(row).slice();
  }

  /** Exact top-k over the live rows, or over those `rows` lets through. */
  search(queries: Float32Array, batch: number, k: number, rows?: RowMask): Promise<TopKResult> {
    return this.index.exact(queries, batch, k, this.maskOf(rows));
  }

  /**
   * Approximate top-k (see {@link IvfIndex.search}); scores of the rows found are exact. With a
   * filter, `nprobe` grows by the inverse of the share of rows it keeps (the nearest matching rows
   * lie as far out as the nearest `k / share` rows overall); a filter that leaves too few rows in
   * the probed lists to fill the candidates is searched exactly instead (its cost is the matching
   * rows'), and a query the probed lists leave short of k rows while more match is searched again
   * exactly: results are never short.
   */
  async searchApprox(queries: Float32Array, batch: number, k: number, probe: IvfProbe, rows?: RowMask): Promise<TopKResult> {
    const nlist = this.index.nlist;
    const all = this.rows - this.tombstones;
    const live = rows ? this.rows - rows.masked : all;
    const share = all === 0 ? 0 : live / all;
    const nprobe = share >= 1 ? probe.nprobe : Math.min(nlist, Math.ceil(probe.nprobe / Math.max(share, 1e-9)));
    // A selective filter leaves too few matching rows in the probed lists: search its rows exactly.
    if (nprobe >= nlist || (share < 1 && (live * nprobe) / nlist < 2 * probe.candidates)) {
      return this.search(queries, batch, k, rows);
    }
    const mask = this.maskOf(rows);
    const out = await this.index.search(queries, batch, k, nprobe, probe.candidates, mask);
    const want = Math.min(k, live);
    const short: number[] = [];
    for (let q = 0; q < batch; q++) if (want > 0 && out.rows[q * k + want - 1] < 0) short.push(q);
    if (short.length === 0) return out;
    const dim = this.dim;
    const again = new Float32Array(short.length * dim);
    short.forEach((q, i) => again.set(queries.subarray(q * dim, (q + 1) * dim), i * dim));
    const exact = await this.index.exact(again, short.length, k, mask);
    short.forEach((q, i) => {
      out.rows.set(exact.rows.subarray(i * k, (i + 1) * k), q * k);
      out.scores.set(exact.scores.subarray(i * k, (i + 1) * k), q * k);
    });
    return out;
  }

  /** A filter's rows as a mask over the entries (a selection becomes one). */
  private maskOf(rows: RowMask | undefined): Float32Array | undefined {
    if (!rows) return undefined;
    if (!rows.select) return rows.mask;
    const mask = new Float32Array(this.rows).fill(-Infinity);
    for (const r of rows.select) mask[r] = 0;
    return mask;
  }

  summary(): IvfSummary {
    const c = this.calibration;
    const hot = this.index.hotBytes();
    return {
      nlist: this.index.nlist,
      rows: this.rows,
      deleted: this.tombstones,
      nprobe: c.nprobe,
      expectedRecall: c.points.find((p) => p.nprobe === c.nprobe)?.recall ?? 1,
      calibration: c,
      hotBytes: hot,
      hotShareOfFp32: this.rows === 0 ? 0 : hot / (this.rows * this.dim * 4),
      trainMs: this.trainMs,
      isa: this.isa,
    };
  }

  /** What a snapshot keeps of the lists (see `ivf-file.ts`). */
  fileContents(): IvfFileContents {
    const a = this.index.arrays;
    return {
      nlist: a.nlist,
      dim: a.dim,
      score: a.score,
      calibration: this.calibration,
      trainMs: this.trainMs,
      centroids: a.centroids,
      offsets: a.offsets,
      blocks: a.blocks,
      scale: a.scale,
      offset: a.offset,
    };
  }

  hostBytes(): number {
    return this.index.hostBytes() + this.versions.byteLength + this.idBytesTotal;
  }

  /** The hot tier: codes, centroids and list offsets. */
  deviceBytes(): number {
    return this.retired ? 0 : this.index.hotBytes();
  }

  diskBytes(): number {
    return this.file.ref.bytes;
  }

  /** Closes the vectors file (it stays on disk until no snapshot names it). */
  retire(): void {
    this.retired = true;
    this.file.close();
  }
}
