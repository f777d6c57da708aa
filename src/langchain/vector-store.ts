import type { Callbacks } from '@langchain/core/callbacks/manager';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import { maximalMarginalRelevance } from '@langchain/core/utils/math';
import { VectorStore, type MaxMarginalRelevanceSearchOptions } from '@langchain/core/vectorstores';
import { createClient, type HyperSyncClient, type Schema } from '../client/index.js';
import { float32Base64 } from './float32-base64.js';
import { HyperSyncApiError, unwrap } from './hyper-sync-api-error.js';
import type { HyperSyncFilter, HyperSyncSearchPart, HyperSyncVectorStoreConfig } from './vector-store-config.js';

/** Most items one store or delete request carries (the config's `batchSize` may lower it). */
export const MAX_BATCH_SIZE = 1000;

const SEARCH_PARTS: readonly HyperSyncSearchPart[] = ['content', 'metadata'];

type Hit = Schema<'Hit'>;
type QueryPart = NonNullable<Schema<'QueryRequest'>['include']>[number];

/** Options of {@link HyperSyncVectorStore.addVectors} and {@link HyperSyncVectorStore.addDocuments}. */
export interface HyperSyncAddOptions {
  /** One id per document: an item with an id already stored is replaced (upsert). Default: each `Document.id`, else one the service makes. */
  ids?: string[];
}

/** What {@link HyperSyncVectorStore.delete} removes: the items with these ids, or those matching a filter. */
export type HyperSyncDeleteParams = { ids: string[]; filter?: undefined } | { filter: HyperSyncFilter; ids?: undefined };

/**
 * A LangChain.js vector store over a collection of a running hypersync service, through its HTTP
 * API (`hypersync/client`) only: it imports nothing of the server.
 *
 * - Filters (`FilterType`) are hypersync's grammar, passed through as they are (see
 *   {@link HyperSyncFilter}); they are exact: a search returns the k best among the matching items.
 * - Scores are the service's: cosine similarity or inner product (higher is better), or L2
 *   distance (lower is better) on `l2` collections.
 * - Writes create the collection when it is missing (the config's `dim`, else the vectors'
 *   length; `metric` default `cosine`) and upsert by id. Searches after a write pass its log
 *   position as `minLsn`, so they see it (read your writes).
 * - An error answer rejects with a {@link HyperSyncApiError} (`status`, `code`).
 *
 * @example
 * const store = await HyperSyncVectorStore.fromTexts(texts, metadatas, embeddings, { url, collection: 'docs' });
 * const docs = await store.similaritySearch('a cat on a mat', 4, { lang: { $in: ['en', 'de'] } });
 */
export class HyperSyncVectorStore extends VectorStore {
  declare FilterType: HyperSyncFilter;

  /** The typed client the store talks through (for the rest of the API: count, scroll, patch, …). */
  readonly client: HyperSyncClient;
  /** The collection the store reads and writes. */
  readonly collection: string;
  private readonly include: HyperSyncSearchPart[];
  private readonly batchSize: number;
  private readonly config: HyperSyncVectorStoreConfig;
  /** Settles once the collection is known to exist (cleared on failure, so a later write retries). */
  private collectionReady: Promise<void> | undefined;
  /** The highest log position this store wrote: later searches wait for it (`minLsn`). */
  private lastLsn: number | undefined;

  _vectorstoreType(): string {
    return 'hypersync';
  }

  override get lc_secrets(): Record<string, string> {
    return { apiKey: 'HYPERSYNC_API_KEY' };
  }

  constructor(embeddings: EmbeddingsInterface, config: HyperSyncVectorStoreConfig) {
    super(embeddings, config);
    if (typeof config.url !== 'string' || config.url === '') throw new TypeError('HyperSyncVectorStore: url is required');
    if (typeof config.collection !== 'string' || config.collection === '') {
      throw new TypeError('HyperSyncVectorStore: collection is required');
    }
    const batchSize = config.batchSize ?? MAX_BATCH_SIZE;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
      throw new RangeError(`HyperSyncVectorStore: batchSize must be an integer from 1 to ${MAX_BATCH_SIZE}, got ${batchSize}`);
    }
    if (config.dim !== undefined && (!Number.isInteger(config.dim) || config.dim < 1)) {
      throw new RangeError(`HyperSyncVectorStore: dim must be a positive integer, got ${config.dim}`);
    }
    const include = config.include ?? [...SEARCH_PARTS];
    const unknown = include.filter((p) => !SEARCH_PARTS.includes(p));
    if (unknown.length > 0)
      throw new RangeError(`HyperSyncVectorStore: include takes content and metadata, not ${unknown.join(', ')}`);
    this.config = config;
    this.collection = config.collection;
    this.include = [...new Set(include)];
    this.batchSize = batchSize;
    this.client = createClient(config.url, {
      ...(config.apiKey !== undefined ? { apiKey: config.apiKey } : {}),
      ...(config.fetch !== undefined ? { fetch: config.fetch } : {}),
    });
  }

  /**
   * Stores `vectors` with their documents (`pageContent` as the item's content, `metadata` as its
   * metadata), upserting by id, in requests of at most `batchSize` items. Resolves to the ids in
   * the order given.
   */
  async addVectors(vectors: number[][], documents: DocumentInterface[], options: HyperSyncAddOptions = {}): Promise<string[]> {
    if (vectors.length !== documents.length) {
      throw new RangeError(`addVectors: ${vectors.length} vectors for ${documents.length} documents`);
    }
    const ids = options.ids ?? documents.map((d) => d.id);
    if (ids.length !== documents.length) throw new RangeError(`addVectors: ${ids.length} ids for ${documents.length} documents`);
    if (vectors.length === 0) return [];
    await this.ensureCollection(vectors[0].length);
    const stored: string[] = [];
    for (let start = 0; start < vectors.length; start += this.batchSize) {
      const items = vectors.slice(start, start + this.batchSize).map((vector, j) => {
        const doc = documents[start + j];
        const id = ids[start + j];
        return {
          ...(id !== undefined && id !== '' ? { id } : {}),
          vector: float32Base64(vector),
          content: doc.pageContent,
          metadata: doc.metadata,
        };
      });
      const r = unwrap(await this.client.POST('/v1/collections/{c}/items', { params: this.path(), body: { items } }));
      this.noteLsn(r.lsn);
      stored.push(...r.ids);
    }
    return stored;
  }

  /** Embeds the documents' `pageContent` with the store's embeddings, then {@link addVectors}. */
  async addDocuments(documents: DocumentInterface[], options: HyperSyncAddOptions = {}): Promise<string[]> {
    const vectors = await this.embeddings.embedDocuments(documents.map((d) => d.pageContent));
    return this.addVectors(vectors, documents, options);
  }

  /**
   * The k items nearest `query` (among those matching `filter`), best first, with the service's
   * score: cosine similarity, inner product, or L2 distance (lower is better) by the collection's metric.
   */
  async similaritySearchVectorWithScore(
    query: number[],
    k: number,
    filter?: this['FilterType'],
  ): Promise<[DocumentInterface, number][]> {
    const hits = await this.search(query, k, filter, this.include);
    return hits.map((hit) => [toDocument(hit), hit.score]);
  }

  /**
   * Maximal marginal relevance: the `fetchK` nearest items (default 20, at least k) with their
   * vectors, then the k of them that balance likeness to the query against likeness to those
   * already picked (`lambda`: 1 relevance only, 0 diversity only; default 0.5), compared by cosine
   * similarity whatever the collection's metric.
   */
  override async maxMarginalRelevanceSearch(
    query: string,
    options: MaxMarginalRelevanceSearchOptions<this['FilterType']>,
    _callbacks?: Callbacks,
  ): Promise<DocumentInterface[]> {
    const { k, fetchK = 20, lambda = 0.5, filter } = options;
    const embedded = await this.embeddings.embedQuery(query);
    const hits = await this.search(embedded, Math.max(fetchK, k), filter, [...this.include, 'vector']);
    if (hits.length === 0) return [];
    const picked = maximalMarginalRelevance(
      embedded,
      hits.map((h) => h.vector ?? []),
      lambda,
      k,
    );
    return picked.map((i) => toDocument(hits[i]));
  }

  /** Deletes the items with the given ids, or every item matching a filter (exactly one of the two). */
  override async delete(params: HyperSyncDeleteParams): Promise<void> {
    const { ids, filter } = params ?? {};
    if ((ids === undefined) === (filter === undefined)) throw new TypeError('delete: give exactly one of ids and filter');
    if (filter !== undefined) {
      this.noteDeleted(
        unwrap(await this.client.POST('/v1/collections/{c}/items/delete', { params: this.path(), body: { filter } })),
      );
      return;
    }
    for (let start = 0; start < ids.length; start += this.batchSize) {
      const batch = ids.slice(start, start + this.batchSize);
      this.noteDeleted(
        unwrap(await this.client.POST('/v1/collections/{c}/items/delete', { params: this.path(), body: { ids: batch } })),
      );
    }
  }

  /**
   * A store over `config.collection` holding `texts` (embedded with `embeddings`), each with its
   * metadata (`metadatas[i]`, or one object for all). Creates the collection when it is missing.
   */
  static override async fromTexts(
    texts: string[],
    metadatas: object[] | object,
    embeddings: EmbeddingsInterface,
    config: HyperSyncVectorStoreConfig,
  ): Promise<HyperSyncVectorStore> {
    const docs = texts.map(
      (pageContent, i) =>
        new Document({
          pageContent,
          metadata: (Array.isArray(metadatas) ? (metadatas[i] ?? {}) : metadatas) as Record<string, unknown>,
        }),
    );
    return HyperSyncVectorStore.fromDocuments(docs, embeddings, config);
  }

  /** A store over `config.collection` holding `docs` (embedded with `embeddings`); creates the collection when it is missing. */
  static override async fromDocuments(
    docs: DocumentInterface[],
    embeddings: EmbeddingsInterface,
    config: HyperSyncVectorStoreConfig,
  ): Promise<HyperSyncVectorStore> {
    const store = new HyperSyncVectorStore(embeddings, config);
    await store.addDocuments(docs);
    return store;
  }

  /**
   * A store over a collection that exists: rejects with a {@link HyperSyncApiError}
   * (404 `collection_not_found`) when it does not, unless `dim` or `createIfMissing` is configured;
   * then it is created with `dim`, else with the dimension of `embeddings` (one probe text is
   * embedded to learn it). A configured `dim` or `metric` that differs from an existing
   * collection's rejects with a RangeError.
   */
  static async fromExistingIndex(
    embeddings: EmbeddingsInterface,
    config: HyperSyncVectorStoreConfig,
  ): Promise<HyperSyncVectorStore> {
    const store = new HyperSyncVectorStore(embeddings, config);
    const r = await store.client.GET('/v1/collections/{c}', { params: store.path() });
    if (r.response.ok && r.data !== undefined) {
      const { dim, metric } = r.data;
      if (config.dim !== undefined && config.dim !== dim) {
        throw new RangeError(`collection ${store.collection} has dimension ${dim}, not the configured ${config.dim}`);
      }
      if (config.metric !== undefined && config.metric !== metric) {
        throw new RangeError(`collection ${store.collection} uses the ${metric} metric, not the configured ${config.metric}`);
      }
      store.collectionReady = Promise.resolve();
      return store;
    }
    const error = HyperSyncApiError.from(r.response, r.error);
    if (error.code !== 'collection_not_found' || !(config.createIfMissing ?? config.dim !== undefined)) throw error;
    await store.ensureCollection(config.dim ?? (await embeddings.embedQuery('dimension probe')).length);
    return store;
  }

  /** The collection's path parameter. */
  private path(): { path: { c: string } } {
    return { path: { c: this.collection } };
  }

  /** One query's hits, best first. */
  private async search(
    query: number[],
    k: number,
    filter: HyperSyncFilter | undefined,
    include: readonly QueryPart[],
  ): Promise<Hit[]> {
    const body: Schema<'QueryRequest'> = {
      queries: [{ vector: float32Base64(query) }],
      k,
      include: [...include],
      ...(filter !== undefined ? { filter } : {}),
      ...(this.lastLsn !== undefined ? { minLsn: this.lastLsn } : {}),
    };
    const r = unwrap(await this.client.POST('/v1/collections/{c}/query', { params: this.path(), body }));
    return r.results[0] ?? [];
  }

  /** Creates the collection once when it is missing (`dim` for a new one: the config's, else `vectorDim`). */
  private async ensureCollection(vectorDim: number): Promise<void> {
    this.collectionReady ??= this.createIfMissing(vectorDim).catch((err: unknown) => {
      this.collectionReady = undefined;
      throw err;
    });
    return this.collectionReady;
  }

  private async createIfMissing(vectorDim: number): Promise<void> {
    const found = await this.client.GET('/v1/collections/{c}', { params: this.path() });
    if (found.response.ok) return;
    const missing = HyperSyncApiError.from(found.response, found.error);
    if (missing.code !== 'collection_not_found') throw missing;
    const created = await this.client.POST('/v1/collections', {
      body: { name: this.collection, dim: this.config.dim ?? vectorDim, metric: this.config.metric ?? 'cosine' },
    });
    // A concurrent writer may have created it first.
    if (created.error?.error.code === 'collection_exists') return;
    unwrap(created);
  }

  private noteLsn(lsn: number): void {
    this.lastLsn = Math.max(this.lastLsn ?? 0, lsn);
  }

  private noteDeleted(r: Schema<'DeleteResult'>): void {
    if (r.deleted > 0) this.noteLsn(r.lsn);
  }
}

/** A hit as a LangChain document: its id, content (`''` when it has none) and metadata. */
function toDocument(hit: Hit): Document {
  return new Document({ id: hit.id, pageContent: hit.content ?? '', metadata: hit.metadata ?? {} });
}
