import type { Filter } from '../core/filter.js';
import type { HyperSync } from '../integration/hyper-sync.js';
import type {
  CollectionInfo,
  CollectionStatus,
  ConsistencyReport,
  Include,
  ItemPatch,
  QueryOptions,
  ScrollOptions,
  StoreItem,
  StoreResult,
} from '../integration/types.js';
import type { Metric } from '../core/metric.js';
import type { CliStore, HitJson, ItemJson, RepairReport, WithArrayVector } from './cli-store.js';

/** A value with its vector as a JSON array (as the HTTP API answers it). */
export function arrayVector<T extends { vector?: Float32Array }>(v: T): WithArrayVector<T> {
  return (v.vector ? { ...v, vector: Array.from(v.vector) } : v) as WithArrayVector<T>;
}

/** {@link CliStore} on a HyperSync opened in this process. */
export class LocalStore implements CliStore {
  readonly remote = false;
  readonly where = 'in process';

  constructor(private readonly hs: HyperSync) {}

  listCollections(): Promise<CollectionInfo[]> {
    return Promise.resolve(this.hs.listCollections());
  }

  findCollection(name: string): Promise<CollectionInfo> {
    return this.hs.findCollection(name);
  }

  createCollection(name: string, spec: { dim?: number; metric?: Metric; encoder?: string }): Promise<CollectionInfo> {
    return this.hs.createCollection(name, spec);
  }

  dropCollection(name: string): Promise<void> {
    return this.hs.dropCollection(name);
  }

  stats(name: string): Promise<CollectionStatus> {
    return this.hs.stats(name);
  }

  ready(collection?: string): Promise<void> {
    return this.hs.ready(collection);
  }

  async storedIds(collection: string, ids: readonly string[]): Promise<Set<string>> {
    return new Set((await this.hs.storedVersions(collection, ids)).keys());
  }

  store(collection: string, items: readonly StoreItem[]): Promise<StoreResult> {
    return this.hs.store(collection, items);
  }

  async query(collection: string, query: Float32Array | string, k: number, opts: QueryOptions): Promise<HitJson[]> {
    const [hits] = await this.hs.query(collection, [query], k, opts);
    return hits.map(arrayVector);
  }

  verify(collection: string): Promise<ConsistencyReport> {
    return this.hs.verifyConsistency(collection);
  }

  repair(collection: string): Promise<RepairReport> {
    return this.hs.repair(collection);
  }

  async getMany(collection: string, ids: readonly string[], include?: readonly Include[]): Promise<ItemJson[]> {
    return (await this.hs.getMany(collection, ids, include ? { include } : {})).map(arrayVector);
  }

  delete(collection: string, ids: readonly string[]): Promise<{ deleted: number; lsn: number }> {
    return this.hs.delete(collection, ids);
  }

  deleteWhere(collection: string, filter: Filter): Promise<{ deleted: number; lsn: number }> {
    return this.hs.deleteWhere(collection, filter);
  }

  count(collection: string, filter?: Filter): Promise<number> {
    return this.hs.count(collection, filter);
  }

  async scroll(collection: string, opts: ScrollOptions): Promise<{ items: ItemJson[]; nextCursor: string | null }> {
    const page = await this.hs.scroll(collection, opts);
    return { items: page.items.map(arrayVector), nextCursor: page.nextCursor };
  }

  patch(collection: string, id: string, patch: ItemPatch): Promise<{ id: string; version: number; lsn: number }> {
    return this.hs.patch(collection, id, patch);
  }
}
