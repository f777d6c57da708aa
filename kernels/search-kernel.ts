import type { DeviceInfo } from './device.js';
import type { TopKResult } from './types.js';
import type { Metric } from '../src/core/metric.js';

/**
 * A segment's vectors resident on the kernel's device (for ONNX: a session whose initializer
 * holds them). Only queries travel per search.
 */
export interface ResidentIndex {
  readonly rows: number;
  readonly dim: number;
  readonly metric: Metric;
  /** Bytes this index holds on the device (vectors plus the L2 bias). */
  readonly deviceBytes: number;
  /**
   * Settles when the index is built (a kernel may build it in the background; searches issued
   * before then wait for it) and rejects if building failed.
   */
  ready(): Promise<void>;
  /**
   * Top-k kernel scores for a batch of queries over the rows `rows` lets through.
   * @param queries `batch × dim` floats, already normalised for cosine.
   * @param k slots per query, 1 ≤ k ≤ rows.
   */
  search(queries: Float32Array, batch: number, k: number, rows: IndexMask): Promise<TopKResult>;
  /** Frees the device memory; safe to call twice. */
  release(): Promise<void>;
}

/**
 * Which rows of an index a search may return: tombstones and rows a metadata filter excludes are
 * masked, so top-k is exact over the rest and never short while k of them exist.
 */
export interface IndexMask {
  /** `rows` floats: 0 for rows that may be returned, −Infinity for the others. */
  mask: Float32Array;
  /** How many entries of `mask` are −Infinity. */
  masked: number;
}

/**
 * The rows of a segment a search may return: its {@link IndexMask}, and, when few rows match a
 * filter, the only rows to score (ascending, each unmasked, non-empty): the segment gathers their
 * vectors and scores just those ({@link SearchKernel.searchTransient}) instead of scanning all.
 */
export interface RowMask extends IndexMask {
  select?: Int32Array;
  /** The selected rows' vectors, `select.length × dim` floats, when already gathered. */
  gathered?: Float32Array;
}

/** One index of a {@link SearchKernel.searchIndexes} call with the rows it may return. */
export interface IndexSearch extends IndexMask {
  index: ResidentIndex;
}

/** Where a segment's vectors lie on disk, and the CRC-32 they must have. */
export interface IndexSource {
  path: string;
  crc32?: number;
}

/**
 * Batched similarity search behind one interface, whatever the device (CPU or CUDA through
 * onnxruntime today; a native CUDA addon later).
 */
export interface SearchKernel {
  readonly deviceInfo: DeviceInfo;
  /**
   * True when the kernel reads a segment's file itself (in another thread) given `source.path`,
   * so callers need not read the vectors into this thread first.
   */
  readonly readsFiles: boolean;
  /**
   * Copies `rows × dim` vectors onto the device and returns the index over them (possibly before
   * it is built: see {@link ResidentIndex.ready}).
   * @param source where the same bytes lie on disk, so a kernel in another thread can read them
   *   there instead of having them copied over; with `crc32`, the bytes are checked against it
   *   and a mismatch rejects with `SnapshotCorruptError`.
   */
  createIndex(vectors: Float32Array, rows: number, dim: number, metric: Metric, source?: IndexSource): Promise<ResidentIndex>;
  /**
   * Top-k over vectors passed with the call (the growing segment).
   * @param bias `rows` floats added to each score: `−‖x‖²` for L2, 0 otherwise, −Infinity for
   *   tombstones.
   */
  searchTransient(
    vectors: Float32Array,
    rows: number,
    dim: number,
    metric: Metric,
    bias: Float32Array,
    queries: Float32Array,
    batch: number,
    k: number,
  ): Promise<TopKResult>;
  /**
   * Searches several resident indexes of this kernel with the same queries, in as few round
   * trips as the kernel needs (one per worker thread for a worker kernel); results in order.
   */
  searchIndexes(items: readonly IndexSearch[], queries: Float32Array, batch: number, k: number): Promise<TopKResult[]>;
  /** Releases cached sessions; safe to call twice. */
  close(): Promise<void>;
}
