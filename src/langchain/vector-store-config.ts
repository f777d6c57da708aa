import type { ClientOptions, Schema } from '../client/index.js';

/** How a collection compares vectors: cosine similarity, inner product or L2 distance. */
export type HyperSyncMetric = Schema<'Collection'>['metric'];

/**
 * A metadata filter in hypersync's grammar, LangChain's `FilterType` of the store: `{field: value}`
 * for equality; `$eq $ne $in $nin $gt $gte $lt $lte $exists $contains` per field; `$and $or $not`
 * to combine; nested fields by dotted path (`"source.kind"`). The service validates it and answers
 * a 400 that names a bad clause (see README, Filters).
 *
 * @example
 * { tenant: 'acme', year: { $gte: 2020 }, $or: [{ lang: 'de' }, { 'source.kind': { $in: ['web', 'pdf'] } }] }
 */
export type HyperSyncFilter = Schema<'Filter'>;

/** The parts of an item a similarity search asks for besides its id and score. */
export type HyperSyncSearchPart = 'content' | 'metadata';

/** Options of {@link HyperSyncVectorStore} (its constructor and static factories). */
export interface HyperSyncVectorStoreConfig {
  /** Base URL of the hypersync service, e.g. `http://localhost:8080`. */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>` (a key of the service's `HYPERSYNC_API_KEYS`). */
  apiKey?: string;
  /** The collection the store reads and writes. */
  collection: string;
  /** The fetch to use (default: the global `fetch`). */
  fetch?: ClientOptions['fetch'];
  /**
   * Dimension for creating the collection when it is missing (default: the length of the first
   * vector written, or of an embedded probe in `fromExistingIndex`). Giving it also makes
   * `fromExistingIndex` create a missing collection, and check an existing one's dimension.
   */
  dim?: number;
  /** Metric for creating the collection when it is missing (default `cosine`). */
  metric?: HyperSyncMetric;
  /**
   * Whether `fromExistingIndex` creates a missing collection (default: only when `dim` is given).
   * Writes (`addVectors`, `addDocuments`, `fromTexts`, `fromDocuments`) always create it.
   */
  createIfMissing?: boolean;
  /**
   * What similarity searches fetch per hit (default both): without `content` every
   * `pageContent` is `''`, without `metadata` every `metadata` is `{}`.
   */
  include?: HyperSyncSearchPart[];
  /** Items per store or delete request (1 to 1000, default 1000). */
  batchSize?: number;
}
