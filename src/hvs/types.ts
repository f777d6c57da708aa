import type { SearchKernel } from '../../kernels/search-kernel.js';
import type { Metric } from '../core/metric.js';
import type { Segment } from './segment.js';

/** The shape of a collection. */
export interface CollectionSpec {
  dim: number;
  metric: Metric;
}

/** Bytes a collection holds. */
export interface MemoryUsage {
  /** Host memory: the growing segment's vectors, masks, versions, the id map. */
  hostBytes: number;
  /** Memory held by the kernel sessions on the device (on CPU this is RAM, owned by onnxruntime). */
  deviceBytes: number;
  /** Sealed segments' vectors on disk (the host's copy, read for gets by id and compaction). */
  diskBytes: number;
}

/** Counters of a collection. */
export interface CollectionStats extends MemoryUsage {
  name: string;
  dim: number;
  metric: Metric;
  /** Live vectors. */
  count: number;
  /** Deleted rows still present in segments until compaction. */
  tombstones: number;
  sealedSegments: number;
  /** Full segments whose device index is being built (still searched as they were). */
  sealingSegments: number;
  growingRows: number;
  /** Last change-log position applied (0 when none). */
  lsn: number;
}

/**
 * What a collection shares with the modules that rebuild its segments (sealing, compaction,
 * restoring a snapshot): its shape and files, the kernel, and the live maps they update.
 */
export interface CollectionParts {
  readonly dim: number;
  readonly metric: Metric;
  /** Directory of the collection's files. */
  readonly dir: string;
  readonly kernel: SearchKernel;
  /** Segments by id, growing and sealed. */
  readonly segments: Map<number, Segment>;
  /** Live id → row location (see `row-location.ts`). */
  readonly locations: Map<string, number>;
  /** A segment id not used before in this collection. */
  newSegmentId(): number;
  isClosed(): boolean;
}
