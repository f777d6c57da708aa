import type { Filter } from '../core/filter.js';
import type {
  CollectionInfo,
  CollectionStatus,
  ConsistencyReport,
  Include,
  ItemPatch,
  ListedItem,
  QueryHit,
  QueryOptions,
  ScrollOptions,
  StoreItem,
  StoreResult,
} from '../integration/types.js';
import type { Metric } from '../core/metric.js';

/** A value as the CLI prints it: its vector, if any, as a JSON array. */
export type WithArrayVector<T extends { vector?: Float32Array }> = Omit<T, 'vector'> & { vector?: number[] };

/** A query hit as printed. */
export type HitJson = WithArrayVector<QueryHit>;
/** An item of `get` or `scroll` as printed. */
export type ItemJson = WithArrayVector<ListedItem>;

/** What `verify --repair` reports. */
export interface RepairReport {
  before: ConsistencyReport;
  upserted: number;
  deleted: number;
  after: ConsistencyReport;
}

/**
 * What the CLI's data commands need of a store: HyperSync opened in this process
 * ({@link LocalStore}), or a running `hypersync serve` over HTTP ({@link RemoteStore}). Both answer
 * the same JSON, so a command prints the same whichever runs it.
 */
export interface CliStore {
  /** Whether the calls go over HTTP. */
  readonly remote: boolean;
  /** Where the calls run, for messages: `in process` or the server's URL and how it was found. */
  readonly where: string;
  listCollections(): Promise<CollectionInfo[]>;
  /** The collection, or `CollectionNotFoundError` (over HTTP, the service's 404). */
  findCollection(name: string): Promise<CollectionInfo>;
  createCollection(name: string, spec: { dim?: number; metric?: Metric; encoder?: string }): Promise<CollectionInfo>;
  dropCollection(name: string): Promise<void>;
  stats(name: string): Promise<CollectionStatus>;
  /** Resolves once the collection (default: every one) has loaded into the HVS. */
  ready(collection?: string): Promise<void>;
  /** Which of `ids` the collection stores already (a resumed import skips them). */
  storedIds(collection: string, ids: readonly string[]): Promise<Set<string>>;
  store(collection: string, items: readonly StoreItem[]): Promise<StoreResult>;
  query(collection: string, query: Float32Array | string, k: number, opts: QueryOptions): Promise<HitJson[]>;
  verify(collection: string): Promise<ConsistencyReport>;
  repair(collection: string): Promise<RepairReport>;
  getMany(collection: string, ids: readonly string[], include?: readonly Include[]): Promise<ItemJson[]>;
  delete(collection: string, ids: readonly string[]): Promise<{ deleted: number; lsn: number }>;
  deleteWhere(collection: string, filter: Filter): Promise<{ deleted: number; lsn: number }>;
  count(collection: string, filter?: Filter): Promise<number>;
  scroll(collection: string, opts: ScrollOptions): Promise<{ items: ItemJson[]; nextCursor: string | null }>;
  patch(collection: string, id: string, patch: ItemPatch): Promise<{ id: string; version: number; lsn: number }>;
}
