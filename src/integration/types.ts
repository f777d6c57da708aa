import type { Filter } from '../core/filter.js';
import type { Metric } from '../core/metric.js';
import type { LoadResult } from './collection-loader.js';
import type { EncoderRef } from '../nvm/nvm-store.js';
import type { AnnOptions, IndexStats } from '../hvs/ivf/ivf-types.js';

/** Which tiers answered: the HVS searched and the NVM supplied content, the HVS alone, or the NVM alone. */
export type Source = 'hvs+nvm' | 'hvs' | 'nvm';

/** One item to store: a vector, or a text the encoder turns into one. */
export interface StoreItem {
  /** Default: a random UUID. Storing an existing id replaces it (a new version). */
  id?: string;
  vector?: Float32Array;
  /** Encoded when no vector is given; also the content unless `content` is set. */
  text?: string;
  content?: string | null;
  metadata?: Record<string, unknown>;
}

/** Options of {@link HyperSync.store}. */
export interface StoreOptions {
  /**
   * `true` (default): PostgreSQL holds the write before it is acknowledged. `false`: the local
   * write-ahead log (fsync'd) and the HVS hold it; the sync persists it later.
   */
  persist?: boolean;
}

/** What a store acknowledges. */
export interface StoreResult {
  ids: string[];
  /**
   * The change-log position of the write (pass it as `minLsn` to read it back anywhere); for
   * `persist: false`, the newest position this process had applied.
   */
  lsn: number;
  /** False when the write is held by the local write-ahead log only (so far). */
  persisted: boolean;
}

/** Parts of a hit a query may ask for besides id and score. */
export type Include = 'content' | 'metadata' | 'vector';

/**
 * Options of {@link HyperSync.query}. From {@link AnnOptions}: `exact: true` scans every row (on
 * the HVS, or pgvector's exact scan when the NVM answers); `nprobe` or `targetRecall` tune the
 * IVF index where the collection has one (default: the nprobe calibrated for recall@10 ≥ 0.95).
 */
export interface QueryOptions extends AnnOptions {
  include?: readonly Include[];
  /**
   * Read-your-writes: wait (briefly) until the HVS has applied the change log up to this lsn; if
   * it does not in time, the query is answered by the NVM.
   */
  minLsn?: number;
  /** A metadata filter for every query (see `Filter`): hits are the k best among matching items. */
  filter?: Filter;
  /** One filter per query (overrides `filter` where given; `undefined` entries take `filter`). */
  filters?: readonly (Filter | undefined)[];
  /**
   * Score threshold: hits scoring worse are dropped (a similarity below it for cosine and ip, a
   * distance above it for l2), so a query may return fewer than k.
   */
  minScore?: number;
}

/** One query result, best first in its list. */
export interface QueryHit {
  id: string;
  /** Cosine similarity, inner product, or L2 distance. */
  score: number;
  version: number;
  source: Source;
  content?: string | null;
  metadata?: Record<string, unknown>;
  vector?: Float32Array;
}

/** A stored item as {@link HyperSync.get} returns it. */
export interface GetResult {
  id: string;
  /** Chunk 0's vector (normalised for cosine collections). */
  vector: Float32Array;
  content: string | null;
  metadata: Record<string, unknown>;
  version: number;
  source: Source;
}

/** A collection as HyperSync describes it. */
export interface CollectionInfo {
  name: string;
  dim: number;
  metric: Metric;
  /** The encoder it named at creation (its texts are always encoded by it). */
  encoder?: EncoderRef;
}

/** Counters of a collection across both tiers. */
export interface CollectionStatus extends CollectionInfo {
  count: number;
  hvs: {
    count: number;
    bytes: number;
    device: string;
    ready: boolean;
    state: 'loading' | 'ready' | 'failed';
    error?: string;
    /** The HVS index: flat (exact), training, or IVF with its lists and calibrated defaults. */
    index?: IndexStats;
  };
  nvm: { count: number; vectors: number };
  /** The change-log position the HVS has applied for this collection. */
  lsn: number;
  /** Writes held by the local write-ahead log only, waiting for a sync. */
  walPending: number;
  /** This process's result cache for the collection (counters since it was taken up here). */
  resultCache: ResultCacheCounts;
}

/** Lookups of the result cache (repeated identical queries) and what it holds. */
export interface ResultCacheCounts {
  hits: number;
  misses: number;
  /** Hits over lookups (0 before the first). */
  hitRatio: number;
  entries: number;
  bytes: number;
}

/** One difference between the tiers. */
export interface Inconsistency {
  id: string;
  kind: 'missing_in_hvs' | 'missing_in_nvm' | 'version_mismatch' | 'vector_mismatch';
  hvsVersion?: number;
  nvmVersion?: number;
}

/** What {@link HyperSync.verifyConsistency} finds. */
export interface ConsistencyReport {
  collection: string;
  consistent: boolean;
  hvs: { count: number; digest: string };
  nvm: { count: number; digest: string };
  /** Every difference found (at most `limit` listed; `total` counts them all). */
  inconsistencies: Inconsistency[];
  total: number;
}

/** What `/readyz` reports: the NVM's reachability and the HVS's device, memory and collections. */
export interface HealthReport {
  ready: boolean;
  nvm: { reachable: boolean; backend: string; lsn?: number; error?: string };
  hvs: {
    device: string;
    reason: string;
    runtime: string;
    collections: Record<string, 'loading' | 'ready' | 'failed'>;
    hostBytes: number;
    deviceBytes: number;
  };
}

/** What {@link HyperSync.patch} changes; the vector stays. */
export interface ItemPatch {
  /** The new metadata, replacing the old as a whole. */
  metadata?: Record<string, unknown>;
  /** The new content; null clears it. */
  content?: string | null;
}

/** Options of {@link HyperSync.scroll}. */
export interface ScrollOptions {
  /** Only items whose metadata match. */
  filter?: Filter;
  /** Items per page, 1..10,000 (default 100). */
  limit?: number;
  /** The `nextCursor` of the page before; none for the first page. */
  cursor?: string;
  /** Parts of each item besides id and version (default content and metadata). */
  include?: readonly Include[];
}

/** An item as {@link HyperSync.scroll} and {@link HyperSync.getMany} return it. */
export interface ListedItem {
  id: string;
  version: number;
  source: Source;
  content?: string | null;
  metadata?: Record<string, unknown>;
  /** Chunk 0's vector (normalised for cosine collections). */
  vector?: Float32Array;
}

/** One page of {@link HyperSync.scroll}. */
export interface ScrollPage {
  items: ListedItem[];
  /** Pass it as `cursor` for the next page; null after the last. */
  nextCursor: string | null;
}

/** Events of {@link HyperSync}. */
export interface HyperSyncEvents {
  /** A background failure (tailing, persisting the WAL, loading): logged and reported here. */
  error: [Error];
  /** A collection is loaded into the HVS. */
  loaded: [string, LoadResult];
}

export { SYNC_DIRECTIONS, type SyncDirection } from './sync-direction.js';
