import type { Metric } from '../../kernels/types.js';

/** A collection as the NVM records it. */
export interface NvmCollection {
  /** Internal number naming the collection's vectors table (`hs_vec_<id>`). */
  id: number;
  name: string;
  dim: number;
  metric: Metric;
}

/**
 * The durable tier: PostgreSQL + pgvector, or embedded PGlite. This first part covers opening
 * (migrations) and the collection catalogue; blocks, the change log, streaming and the pgvector
 * fallback index come next (issue 3).
 */
export interface NvmStore {
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
