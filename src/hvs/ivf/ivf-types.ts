import type { IvfProgress } from './ivf-index.js';
import type { IvfSummary } from './ivf-segment.js';

/** How a query asks to be searched; every field is optional. */
export interface AnnOptions {
  /** Scan every row exactly, whatever index the collection has. */
  exact?: boolean;
  /** Lists the IVF search scans per query (1 … nlist). */
  nprobe?: number;
  /** The recall@10 wanted: the smallest calibrated `nprobe` that reached it (1: exact). */
  targetRecall?: number;
}

/** What a search ran over: every row exactly, or the IVF index with these settings. */
export type AnnPlan =
  | { index: 'flat'; reason: string }
  | { index: 'ivf'; nprobe: number; nlist: number; candidates: number; expectedRecall: number; deltaRows: number };

/** The index state a collection reports. */
export interface IndexStats {
  /** `flat` (exact only), `training`, or `ivf`. */
  state: 'flat' | 'training' | 'ivf';
  /** Why there is no IVF index (native kernel missing, below `minRows`, a failed training). */
  reason?: string;
  /** Rows at which an IVF index is trained by itself (0: only when asked). */
  minRows: number;
  progress?: IvfProgress;
  /** Rows outside the index (growing and sealed segments), searched exactly beside it. */
  deltaRows: number;
  ivf?: IvfSummary;
}
