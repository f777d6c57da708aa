export type { DeviceInfo } from '../kernels/device.js';
export { resolveDevice } from '../kernels/device.js';
export { OnnxSearchKernel, type OnnxSearchKernelOptions } from '../kernels/onnx-kernel.js';
export type { ResidentIndex, SearchKernel } from '../kernels/search-kernel.js';
export { WorkerSearchKernel } from '../kernels/worker-kernel.js';
export { KernelWorkerError } from './core/errors.js';
export { type Device, type TopKResult } from '../kernels/types.js';
export { LIMITS } from './core/limits.js';
export { METRICS, type Metric } from './core/metric.js';
export { loadConfig, type Config } from './config.js';
export type { DevicePreference } from './core/device-preference.js';
export * from './core/errors.js';
export { HvsCollection } from './hvs/hvs-collection.js';
export { Hvs, type HvsOptions } from './hvs/hvs.js';
export type { SnapshotManifest } from './hvs/snapshot.js';
export type { CollectionSpec, CollectionStats, HvsCollectionOptions, HvsSearchOptions, MemoryUsage } from './hvs/types.js';
export type { SearchHit } from './core/search-hit.js';
export { type VectorBatch } from './core/vector.js';
export type {
  BlockInput,
  BlockPatch,
  Change,
  CollectionSpecInput,
  EncoderRef,
  GetBlocksOptions,
  NvmCollection,
  NvmSearchOptions,
  NvmSearchStats,
  NvmStore,
  NvmScrollOptions,
  NvmScrollPage,
  NvmSnapshot,
  StoredBlock,
  UnitOfWork,
  VectorBatchPage,
} from './nvm/nvm-store.js';
export { SqlNvmStore, type NvmStoreOptions } from './nvm/sql-nvm-store.js';
export { Service } from './service.js';
export { HyperSync } from './integration/hyper-sync.js';
export { optionsFromConfig, type HyperSyncOptions } from './integration/options.js';
export { Transaction } from './integration/transaction.js';
export type { QueryPlan, PlanStep } from './integration/query-planner.js';
export type { LoadResult } from './integration/collection-loader.js';
export type { VerifyOptions } from './integration/consistency.js';
export type { BackupCollectionSummary, BackupOptions, BackupProgress, BackupResult } from './integration/backup.js';
export type { RestoreOptions, RestoreResult } from './integration/restore.js';
export type {
  CollectionInfo,
  CollectionStatus,
  ConsistencyReport,
  GetResult,
  HyperSyncEvents,
  Include,
  Inconsistency,
  ItemPatch,
  ListedItem,
  QueryHit,
  QueryOptions,
  ResultCacheCounts,
  ScrollOptions,
  ScrollPage,
  Source,
  StoreItem,
  StoreOptions,
  StoreResult,
  SyncDirection,
} from './integration/types.js';
export { SYNC_DIRECTIONS } from './integration/types.js';
export {
  compileFilter,
  matchesFilter,
  type Filter,
  type FieldOperators,
  type FilterNode,
  type FilterScalar,
} from './core/filter.js';
export { WriteAheadLog } from './integration/write-ahead-log.js';
export type { WalOp, WalRecord, WalUpsertItem } from './integration/wal-format.js';
export type { Encoder } from './encoder/encoder.js';
export {
  JOB_TYPES,
  type AddJobOptions,
  type JobCounts,
  type JobInfo,
  type JobProgress,
  type JobQueue,
  type JobState,
  type JobType,
} from './jobs/job-queue.js';
export type { HvsFleet, JobContext, JobRun, NodeOp, NodeReply, Processor } from './jobs/processor.js';
export { InlineJobQueue, type InlineJobQueueOptions } from './jobs/inline-job-queue.js';
export { BullJobQueue } from './jobs/bullmq-job-queue.js';
export { JobWorkers, type JobWorkersOptions } from './jobs/bullmq-workers.js';
export { LocalFleet } from './jobs/node-ops.js';
export { NodeListener, RedisFleet } from './jobs/redis-fleet.js';
export { serviceJobs, startWorker, type ServiceJobs, type WorkerProcess } from '../workers/from-config.js';
export { PROCESSORS, DEFAULT_CONCURRENCY } from '../workers/index.js';
export { HashingEncoder, type HashingEncoderOptions } from './encoder/hashing-encoder.js';
export { OnnxEncoder } from './encoder/onnx-encoder.js';
export type { OnnxEncoderOptions, Pooling } from './encoder/onnx-encoder-options.js';
export { checkTexts } from './encoder/input.js';
export { encodersFromConfig, type ConfiguredEncoders } from './encoder/from-config.js';
