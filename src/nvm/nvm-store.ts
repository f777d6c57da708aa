import type { Metric } from '../../kernels/types.js';

/** A collection as the NVM records it. */
export interface NvmCollection {
  /** Internal number naming the collection's vectors table (`hs_vec_<id>`). */
  id: number;
  name: string;
  dim: number;
  metric: Metric;
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

/** A block as stored. */
export interface StoredBlock {
  id: string;
  name: string | null;
  content: string | null;
  metadata: Record<string, unknown>;
  version: number;
  vectors: Float32Array[];
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
  writeBlocks(collection: string, blocks: readonly BlockInput[]): Promise<{ lsn: number; versions: Map<string, number> }>;
  /** The blocks that exist among `ids`, in one round trip. */
  getBlocks(collection: string, ids: readonly string[]): Promise<Map<string, StoredBlock>>;
  /** Deletes blocks with their vectors and logs each; returns how many existed and the last `lsn`. */
  deleteBlocks(collection: string, ids: readonly string[]): Promise<{ deleted: number; lsn: number }>;
  /** Change-log rows after `lsn`, in `lsn` order (all collections unless one is named). */
  changesAfter(lsn: number, limit?: number, collection?: string): Promise<Change[]>;
  /** Blocks and vectors stored for the collection. */
  counts(collection: string): Promise<{ blocks: number; vectors: number }>;
  readonly backend: 'postgres' | 'pglite';
  /** Creates the collection and its `vector(dim)` table; {@link CollectionExistsError} if taken. */
  createCollection(name: string, spec: { dim: number; metric: Metric }): Promise<NvmCollection>;
  /** The collection, or {@link CollectionNotFoundError}. */
  getCollection(name: string): Promise<NvmCollection>;
  listCollections(): Promise<NvmCollection[]>;
  /** Drops the collection with its blocks, vectors and change-log rows. */
  dropCollection(name: string): Promise<void>;
  /** Closes the connection pool or the embedded database; safe to call twice. */
  close(): Promise<void>;
}
