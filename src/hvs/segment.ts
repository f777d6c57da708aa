import type { RowMask } from '../../kernels/search-kernel.js';
import type { TopKResult } from '../../kernels/types.js';
import type { Metric } from '../core/metric.js';

/** What the HVS needs of any segment, growing or sealed. */
export interface Segment {
  readonly id: number;
  readonly dim: number;
  readonly metric: Metric;
  /** Rows written, live or tombstoned. */
  readonly rows: number;
  readonly tombstones: number;
  readonly ids: readonly string[];
  readonly versions: Float64Array;
  isLive(row: number): boolean;
  tombstone(row: number): void;
  /** A copy of row `row`'s stored vector (normalised for cosine). */
  readRow(row: number): Float32Array;
  /**
   * Top-k kernel scores over the live rows, or over the rows `rows` lets through (a filter's
   * mask, tombstones included); `queries` are normalised already for cosine.
   */
  search(queries: Float32Array, batch: number, k: number, rows?: RowMask): Promise<TopKResult>;
  /** Bytes held in RAM by this segment (vectors of the growing one, masks, versions, ids). */
  hostBytes(): number;
  /** Bytes the device index holds. */
  deviceBytes(): number;
  /** Bytes of vectors kept on disk. */
  diskBytes(): number;
}

/** Rough bytes of a JS string id and its map entry, for memory accounting. */
export function idBytes(id: string): number {
  return 2 * id.length + 56;
}
