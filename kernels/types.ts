/** The compute device a kernel runs on. */
export type Device = 'cpu' | 'cuda';

/**
 * Top-k rows per query, best first, as the kernel ranks them ("kernel score": larger is better;
 * for L2 it is `2·q·x − ‖x‖²`, which the HVS turns into a distance once it knows `‖q‖²`).
 * Slots past the number of rows found hold row −1 and score −Infinity.
 */
export interface TopKResult {
  /** Queries in the batch. */
  batch: number;
  /** Slots per query. */
  k: number;
  /** `batch × k` kernel scores, row-major. */
  scores: Float32Array;
  /** `batch × k` row numbers within the searched segment, or −1. */
  rows: Int32Array;
}

/** Error name a kernel thread gives a segment file whose bytes fail their CRC-32. */
export const CHECKSUM_ERROR = 'KernelChecksumError';
