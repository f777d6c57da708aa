import type { FilterNode } from '../core/filter.js';
import type { Metric } from '../core/metric.js';
import type { SearchHit } from '../core/search-hit.js';
import type { QueryBatch } from '../core/vector.js';

/** A collection as the NVM records it. */
export interface NvmCollection {
  /** Internal number naming the collection's vectors table (`hs_vec_<id>`). */
  id: number;
  name: string;
  dim: number;
  metric: Metric;
  /** The encoder that turns the collection's texts into vectors, as recorded at creation. */
  encoder?: EncoderRef;
}

/** An encoder as a collection records it. */
export interface EncoderRef {
  name: string;
  version: string;
}

/** What {@link NvmStore.createCollection} takes. */
export interface CollectionSpecInput {
  dim: number;
  metric: Metric;
  encoder?: EncoderRef;
}

/** A block to write: content, metadata and one or more chunk vectors. */
export interface BlockInput {
  id: string;
  name?: string | null;
  content?: string | null;
  metadata?: Record<string, unknown>;
  /** Chunk vectors, chunk 0 first; each of the collection's dimension. */
  vectors: readonly Float32Array[];
  /** Explicit version; by default the stored version + 1, or 1 for a new block. */
  version?: number;
}

/** Options of {@link NvmStore.getBlocks}. */
export interface GetBlocksOptions {
  /** Read the chunk vectors too (default true); without them `vectors` is empty. */
  vectors?: boolean;
}

/** A block as stored. */
export interface StoredBlock {
  id: string;
  name: string | null;
  content: string | null;
  metadata: Record<string, unknown>;
  version: number;
  vectors: Float32Array[];
}

/** What a block write did: its last lsn, and each block's new version and lsn. */
export interface WriteOutcome {
  lsn: number;
  versions: Map<string, number>;
  lsns: Map<string, number>;
}

/** The writes of one {@link NvmStore.unitOfWork}: all committed together, or none. */
export interface UnitOfWork {
  writeBlocks(collection: string, blocks: readonly BlockInput[]): Promise<WriteOutcome>;
  deleteBlocks(collection: string, ids: readonly string[]): Promise<{ deleted: number; lsn: number }>;
  /** {@link NvmStore.patchBlock} inside the unit of work. */
  patchBlock(collection: string, id: string, patch: BlockPatch): Promise<{ version: number; lsn: number } | undefined>;
}

/** One page of {@link NvmStore.streamVectors}: one entry per chunk vector. */
export interface VectorBatchPage {
  ids: string[];
  chunks: number[];
  versions: number[];
  /** The lsn of each block's last change. */
  lsns: number[];
  /** `entries × dim` floats. */
  vectors: Float32Array;
  /** Each entry's block metadata (the chunks of one block share one object). */
  metadata: Record<string, unknown>[];
}

/** Options of {@link NvmStore.search}. */
export interface NvmSearchOptions {
  /** `exact` (default) or `hnsw`. */
  mode?: 'exact' | 'hnsw';
  /** HNSW candidate list size (pgvector's `hnsw.ef_search`, default 100). */
  efSearch?: number;
  /**
   * Only blocks whose metadata match: one filter for every query, or one per query (queries with
   * equal filters run as one statement).
   */
  filter?: FilterNode | readonly FilterNode[];
  /**
   * In `hnsw` mode, rerun exactly each query that came back with fewer than `k` distinct blocks
   * while more blocks match (default true), so results are never short. `false` returns what the
   * index found, as raw pgvector would (benchmarks).
   */
  fallback?: boolean;
  /** Counters this call adds its own to (see {@link NvmSearchStats}). */
  stats?: NvmSearchStats;
}

/** What {@link NvmStore.search} counts into {@link NvmSearchOptions.stats}. */
export interface NvmSearchStats {
  /** Queries searched. */
  queries: number;
  /**
   * `hnsw` queries the index answered with fewer than min(k, matching blocks) distinct blocks
   * (counted before any fallback; 0 in `exact` mode).
   */
  short: number;
  /** Short queries rerun by an exact scan. */
  reruns: number;
}

/** What {@link NvmStore.patchBlock} changes; fields left undefined stay as they are. */
export interface BlockPatch {
  /** The new metadata, replacing the old as a whole (checked like an item's metadata). */
  metadata?: Record<string, unknown>;
  /** The new content; null clears it. */
  content?: string | null;
}

/** Options of {@link NvmStore.scroll}. */
export interface NvmScrollOptions {
  /** Only blocks whose metadata match. */
  filter?: FilterNode;
  /** Blocks per page, 1..10,000. */
  limit: number;
  /** The cursor of the page before (its `next`); the first page without. */
  after?: string;
  /** Read the chunk vectors too (default false). */
  vectors?: boolean;
}

/** One page of {@link NvmStore.scroll}. */
export interface NvmScrollPage {
  blocks: StoredBlock[];
  /** The cursor of the next page, or null after the last. */
  next: string | null;
}

/** Build parameters of {@link NvmStore.createHnswIndex} (pgvector's `m` and `ef_construction`). */
export interface HnswIndexParams {
  /** Links per node, 2..100 (default 16). */
  m?: number;
  /** Candidate list size while building, 4..1000 (default 64). */
  efConstruction?: number;
}

/**
 * One progress report of {@link NvmStore.createHnswIndex}. On PostgreSQL, `phase` and the counters
 * are those of `pg_stat_progress_create_index` (e.g. `building index: loading tuples`,
 * `index validation: scanning table`), and `percent` is the share of the current phase done:
 * tuples when the phase is `building index…` and their total is known, else heap blocks, else 0.
 * A build always ends with one report of phase `done` at 100 (on PGlite, the only one).
 */
export interface HnswBuildProgress {
  phase: string;
  blocksDone: number;
  blocksTotal: number;
  tuplesDone: number;
  tuplesTotal: number;
  /** 0..100. */
  percent: number;
}

/** Options of {@link NvmStore.createHnswIndex}. */
export interface CreateHnswIndexOptions {
  /**
   * Called with the build's progress, about every 500 ms on PostgreSQL while the index builds,
   * and once at the end. An exception it throws is ignored.
   */
  onProgress?: (p: HnswBuildProgress) => void;
  /**
   * Aborts the build: before it starts, the call throws the signal's reason and changes nothing;
   * while `CREATE INDEX CONCURRENTLY` runs on PostgreSQL, the building backend is cancelled
   * (`pg_cancel_backend`), the half-built index dropped, and the reason thrown; the existing index
   * stays. On PGlite the build itself cannot be interrupted: the signal is checked before and after
   * it. Once the new index is built and being swapped in, an abort is no longer heeded.
   */
  signal?: AbortSignal;
}

/** What {@link NvmStore.createHnswIndex} reports of a finished build. */
export interface HnswIndexBuild {
  /** Wall time of the whole operation (cleanup, build, swap), in milliseconds. */
  ms: number;
  m: number;
  efConstruction: number;
}

/**
 * One consistent, read-only view of the whole store (see {@link NvmStore.readSnapshot}): every
 * read through it sees the same committed state, whatever is written meanwhile.
 */
export interface NvmSnapshot {
  /** The newest lsn visible in the snapshot: every change up to it is in, none after it. */
  readonly lsn: number;
  /** Every collection, by name. */
  readonly collections: readonly NvmCollection[];
  /** Blocks of the collection in the snapshot. */
  count(collection: string): Promise<number>;
  /**
   * The collection's blocks with their chunk vectors, a page of up to `pageBlocks` (default 1,000)
   * at a time, in code-point order of ids; memory stays bounded by the page.
   */
  blocks(collection: string, pageBlocks?: number): AsyncGenerator<StoredBlock[]>;
}

/** One change-log row. */
export interface Change {
  lsn: number;
  collection: string;
  blockId: string;
  op: 'upsert' | 'delete';
  version: number | null;
}

/**
 * The durable tier: PostgreSQL + pgvector, or embedded PGlite. So far: opening (migrations), the
 * collection catalogue, block writes with their change-log rows, reads and deletes. Streaming,
 * LISTEN/NOTIFY, the digest and the pgvector fallback index come next (issue 3).
 */
export interface NvmStore {
  /**
   * Writes blocks (an id given twice keeps the last) in one transaction with their change-log
   * rows; returns each block's new version and the last `lsn` written.
   */
  writeBlocks(collection: string, blocks: readonly BlockInput[]): Promise<WriteOutcome>;
  /**
   * Runs `work` in one transaction: its writes and deletes (any collections), with their
   * change-log rows, commit together when it resolves and not at all when it throws; one NOTIFY
   * after the commit. Resolves to `work`'s result and the last lsn written (0 if none).
   */
  unitOfWork<T>(work: (uow: UnitOfWork) => Promise<T>): Promise<{ result: T; lsn: number }>;
  /** The blocks that exist among `ids`, in one round trip. */
  getBlocks(collection: string, ids: readonly string[], opts?: GetBlocksOptions): Promise<Map<string, StoredBlock>>;
  /** The version of each block that exists among `ids` (no content, no vectors), in one round trip. */
  versions(collection: string, ids: readonly string[]): Promise<Map<string, number>>;
  /** Deletes blocks with their vectors and logs each; returns how many existed and the last `lsn`. */
  deleteBlocks(collection: string, ids: readonly string[]): Promise<{ deleted: number; lsn: number }>;
  /**
   * Change-log rows after `lsn`, in `lsn` order (all collections unless one is named). Throws
   * `ChangeLogGapError` when `lsn` is below {@link changesPrunedThrough}: rows after it are
   * gone, and the reader must rebuild from the tables instead.
   */
  changesAfter(lsn: number, limit?: number, collection?: string): Promise<Change[]>;
  /**
   * Removes change-log rows up to `throughLsn` (at most the newest lsn) and records that lsn as
   * the log's horizon, which never moves back. Only safe once every HVS holds a snapshot at or
   * after it; a reader behind it gets `ChangeLogGapError` and rebuilds. Resolves to the
   * rows removed and the horizon.
   */
  pruneChanges(throughLsn: number): Promise<{ deleted: number; prunedThrough: number }>;
  /** The highest lsn pruned from the change log (0 when never pruned). */
  changesPrunedThrough(): Promise<number>;
  /**
   * Every vector of the collection in `lsn` order (of each block's last change), a page of
   * `batchBlocks` blocks at a time (default 10,000); memory stays bounded by the page. A rebuild reads
   * {@link lastLsn} first, streams, then replays {@link changesAfter} that lsn.
   */
  streamVectors(collection: string, batchBlocks?: number): AsyncGenerator<VectorBatchPage>;
  /** The newest lsn in the change log, pruned rows included (0 when nothing was ever written). */
  lastLsn(): Promise<number>;
  /**
   * Runs `read` on one consistent snapshot of every collection (PostgreSQL: a `REPEATABLE READ,
   * READ ONLY` transaction; PGlite: one transaction, which holds writes off until it ends), for a
   * point-in-time copy while writes go on. Resolves to what `read` resolves to.
   */
  readSnapshot<T>(read: (snap: NvmSnapshot) => Promise<T>): Promise<T>;
  /**
   * Calls `listener` with the last lsn of every committed change (LISTEN/NOTIFY), from this or
   * any other process; resolves to an unsubscribe function. If the server drops the listening
   * connection, it is re-established by itself and `listener` gets the newest lsn then.
   */
  onChange(listener: (lsn: number) => void): Promise<() => Promise<void>>;
  /** Blocks whose metadata match `filter` (all blocks without one). */
  count(collection: string, filter?: FilterNode): Promise<number>;
  /**
   * The collection's blocks that match, a page at a time in code-point order of their ids (the
   * cursor is the last id of a page, so pages stay stable while blocks are written or deleted).
   */
  scroll(collection: string, opts: NvmScrollOptions): Promise<NvmScrollPage>;
  /**
   * Deletes the blocks whose metadata match `filter`, with their vectors, in one transaction,
   * logging each like {@link deleteBlocks}; resolves to how many, their ids and the last lsn.
   */
  deleteWhere(collection: string, filter: FilterNode): Promise<{ deleted: number; lsn: number; ids: string[] }>;
  /**
   * Changes a block's metadata and/or content without touching its vectors: bumps its version
   * and logs an `upsert` like {@link writeBlocks}. `undefined` when the block does not exist.
   */
  patchBlock(collection: string, id: string, patch: BlockPatch): Promise<{ version: number; lsn: number } | undefined>;
  /** Blocks and vectors stored for the collection. */
  counts(collection: string): Promise<{ blocks: number; vectors: number }>;
  /**
   * Order-independent digest of the collection: blocks, and the sum over blocks of a 60-bit
   * hash of (id, version, chunk vectors' bytes), as a decimal string. Equal digests mean equal
   * contents whatever the order rows were written in.
   */
  digest(collection: string): Promise<{ blocks: number; digest: string }>;
  /**
   * The fallback index: k nearest blocks per query by pgvector (a block scores by its best
   * chunk), best first, in the HVS's hit shape; only blocks matching the query's filter. `exact`
   * scans every vector and returns min(k, matching blocks) hits; `hnsw` uses the collection's
   * HNSW index when it has one, with `efSearch` and iterative scans, and reruns a query exactly
   * when the index came back short (see {@link NvmSearchOptions.fallback}). A
   * {@link QueryBatch} of the collection's dimension was checked where it entered and is not
   * checked again.
   */
  search(
    collection: string,
    queries: readonly Float32Array[] | QueryBatch,
    k: number,
    opts?: NvmSearchOptions,
  ): Promise<SearchHit[][]>;
  /**
   * Builds (or rebuilds) the collection's HNSW index online: the new index is built under a
   * temporary name (`CREATE INDEX CONCURRENTLY` on PostgreSQL, so writes go on), then the old one
   * is dropped and the new one renamed into its place, so searches have an index throughout. A
   * temporary index left behind by a build that failed or was killed is dropped first; a build that
   * fails is dropped and its error rethrown, leaving the old index as it was. Calls for one
   * collection in this store run one at a time (two processes reindexing the same collection at
   * once are not supported). Resolves to the build's duration and parameters;
   * {@link InvalidArgumentError} for parameters out of range. See {@link CreateHnswIndexOptions}
   * for progress reports and aborting.
   */
  createHnswIndex(collection: string, params?: HnswIndexParams, opts?: CreateHnswIndexOptions): Promise<HnswIndexBuild>;
  /** Drops the collection's HNSW index if it has one (and a temporary one a failed build left). */
  dropHnswIndex(collection: string): Promise<void>;
  readonly backend: 'postgres' | 'pglite';
  /** Creates the collection and its `vector(dim)` table; {@link CollectionExistsError} if taken. */
  createCollection(name: string, spec: CollectionSpecInput): Promise<NvmCollection>;
  /** The collection, or {@link CollectionNotFoundError}. */
  getCollection(name: string): Promise<NvmCollection>;
  listCollections(): Promise<NvmCollection[]>;
  /** Drops the collection with its blocks, vectors and change-log rows. */
  dropCollection(name: string): Promise<void>;
  /** Closes the connection pool or the embedded database; safe to call twice. */
  close(): Promise<void>;
}
