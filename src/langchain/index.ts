/**
 * `hypersync/langchain`: a LangChain.js `VectorStore` over a running hypersync service, through
 * its HTTP API (`hypersync/client`). Needs `@langchain/core` (an optional peer dependency).
 */
export { HyperSyncApiError } from './hyper-sync-api-error.js';
export { HyperSyncVectorStore, MAX_BATCH_SIZE, type HyperSyncAddOptions, type HyperSyncDeleteParams } from './vector-store.js';
export type { HyperSyncFilter, HyperSyncMetric, HyperSyncSearchPart, HyperSyncVectorStoreConfig } from './vector-store-config.js';
