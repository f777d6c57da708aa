import type { SearchKernel } from '../../kernels/search-kernel.js';
import type { FilterNode } from '../core/filter.js';
import type { Metric } from '../core/metric.js';
import type { Segment } from './segment.js';
import type { AnnOptions, IndexStats } from './ivf/ivf-types.js';

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
  /** The approximate index: none yet, training, or IVF (with its calibration). */
  index: IndexStats;
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

/** Options of an HVS collection. */
export interface HvsCollectionOptions {
  /**
   * Rows the growing segment holds before it seals into a device-resident segment (default
   * 32,768: at 384 dimensions a 48 MiB segment builds in ≈0.15 s, so the last build of a bulk
   * load is short; `compact()` merges segments later for fewer, larger ones).
   */
  sealThreshold?: number;
  /** Largest segment compaction builds by merging smaller ones (default 262,144 rows). */
  maxSegmentRows?: number;
  /**
   * Sealed rows at which the collection trains an IVF index by itself, in the background
   * (default 50,000; 0: only when asked). Below it, and until the index is ready, search is exact.
   */
  ivfMinRows?: number;
  /**
   * Share of the sealed and indexed rows, in percent, that may be tombstones (deleted or
   * overwritten) before the collection compacts itself in the background (default 20, as
   * Qdrant's vacuum and Milvus's compaction; 0: only when asked). At least 1,000 tombstones.
   */
  compactTombstonePercent?: number;
}

/** Options of {@link HvsCollection.search}: a filter, and how the index is used ({@link AnnOptions}). */
export interface HvsSearchOptions extends AnnOptions {
  /** One metadata filter for every query, or one per query (undefined: none). */
  filter?: FilterNode | readonly (FilterNode | undefined)[];
  /** @internal Lets `k` pass `LIMITS.k`: the router's over-fetch for blocks of many chunks. */
  unboundedK?: boolean;
}
