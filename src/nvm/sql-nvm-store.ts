import { join } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import type { FilterNode } from '../core/filter.js';
import type { SearchHit } from '../core/search-hit.js';
import { mapDbError, mapDbErrors } from './db-errors.js';
import { loadMigrations, migrate } from './migrations.js';
import type {
  BlockInput,
  BlockPatch,
  Change,
  CollectionSpecInput,
  CreateHnswIndexOptions,
  HnswIndexBuild,
  HnswIndexParams,
  NvmCollection,
  NvmSearchOptions,
  GetBlocksOptions,
  NvmStore,
  NvmScrollOptions,
  NvmScrollPage,
  NvmSnapshot,
  StoredBlock,
  UnitOfWork,
  VectorBatchPage,
  WriteOutcome,
} from './nvm-store.js';
import { PgDriver } from './pg-driver.js';
import { PgliteDriver } from './pglite-driver.js';
import type { SqlDriver } from './sql-driver.js';
import * as reads from './sql/block-reads.js';
import * as writes from './sql/block-writes.js';
import * as changeLog from './sql/change-log.js';
import { Catalogue } from './sql/catalogue.js';
import { digest as digestOf } from './sql/digest.js';
import * as filtered from './sql/filtered-reads.js';
import { HnswIndexes } from './sql/hnsw-index.js';
import { CHUNK_OVERFETCH, checkSearch, search as searchIn } from './sql/search.js';
import { vectorsTable } from './sql/catalogue.js';
import * as stream from './sql/stream.js';
import { readSnapshot } from './sql/snapshot-reads.js';
import { TableStats } from './sql/table-stats.js';
import { QueryBatch } from '../core/vector.js';

/** Options of {@link SqlNvmStore.open}. */
export interface NvmStoreOptions {
  /** PostgreSQL with pgvector; when unset, embedded PGlite under `<dataDir>/nvm`. */
  databaseUrl?: string;
  /** Data directory of the embedded database (required without `databaseUrl`). */
  dataDir?: string;
}

/** {@link NvmStore} written once in SQL over either driver. */
export class SqlNvmStore implements NvmStore {
  private readonly catalogue: Catalogue;
  private readonly indexes: HnswIndexes;
  /** Analyzes a collection's vectors table as it grows (see {@link TableStats}). */
  private readonly tableStats: TableStats;

  private constructor(
    private readonly db: SqlDriver,
    /** pgvector ≥ 0.8 has iterative index scans. */
    private readonly iterativeScans: boolean,
  ) {
    this.catalogue = new Catalogue(db);
    this.indexes = new HnswIndexes(db, this.catalogue);
    this.tableStats = new TableStats(db, (name) =>
      this.catalogue.getCollection(name).then(
        (c) => vectorsTable(c.id),
        () => undefined,
      ),
    );
  }

  /** Connects (PostgreSQL) or opens (PGlite), then applies pending migrations. */
  static async open(opts: NvmStoreOptions): Promise<SqlNvmStore> {
    let db: SqlDriver;
    if (opts.databaseUrl) {
      db = new PgDriver({ connectionString: opts.databaseUrl });
    } else {
      if (!opts.dataDir) throw new InvalidArgumentError('the embedded NVM needs a data directory');
      db = await PgliteDriver.open(join(opts.dataDir, 'nvm'));
    }
    try {
      await migrate(db, await loadMigrations());
      const { rows } = await db.query<{ v: string }>("SELECT extversion AS v FROM pg_extension WHERE extname = 'vector'");
      const [major = 0, minor = 0] = (rows[0]?.v ?? '0.0').split('.').map(Number);
      return new SqlNvmStore(db, major > 0 || minor >= 8);
    } catch (err) {
      await db.close();
      throw mapDbError(err);
    }
  }

  get backend(): 'postgres' | 'pglite' {
    return this.db.kind;
  }

  createCollection(name: string, spec: CollectionSpecInput): Promise<NvmCollection> {
    return this.catalogue.createCollection(name, spec);
  }

  getCollection(name: string): Promise<NvmCollection> {
    return this.catalogue.getCollection(name);
  }

  listCollections(): Promise<NvmCollection[]> {
    return this.catalogue.listCollections();
  }

  dropCollection(name: string): Promise<void> {
    this.tableStats.forget(name);
    return this.catalogue.dropCollection(name);
  }

  async writeBlocks(collection: string, blocks: readonly BlockInput[]): Promise<WriteOutcome> {
    const out = await writes.writeBlocks(this.db, collection, blocks);
    this.tableStats.wrote(collection, out.versions.size);
    return out;
  }

  deleteBlocks(collection: string, ids: readonly string[]): Promise<{ deleted: number; lsn: number }> {
    return writes.deleteBlocks(this.db, collection, ids);
  }

  async deleteWhere(collection: string, filter: FilterNode): Promise<{ deleted: number; lsn: number; ids: string[] }> {
    return writes.deleteWhere(this.db, collection, filter);
  }

  async patchBlock(collection: string, id: string, patch: BlockPatch): Promise<{ version: number; lsn: number } | undefined> {
    return writes.patchBlock(this.db, collection, id, patch);
  }

  async unitOfWork<T>(work: (uow: UnitOfWork) => Promise<T>): Promise<{ result: T; lsn: number }> {
    const written = new Map<string, number>();
    const out = await writes.unitOfWork(this.db, (uow) =>
      work({
        ...uow,
        writeBlocks: async (collection, blocks) => {
          const r = await uow.writeBlocks(collection, blocks);
          written.set(collection, (written.get(collection) ?? 0) + r.versions.size);
          return r;
        },
      }),
    );
    // Counted once committed.
    for (const [collection, rows] of written) this.tableStats.wrote(collection, rows);
    return out;
  }

  getBlocks(collection: string, ids: readonly string[], opts: GetBlocksOptions = {}): Promise<Map<string, StoredBlock>> {
    return this.catalogue.withCollection(collection, (c) => reads.getBlocks(this.db, c, ids, opts.vectors ?? true));
  }

  versions(collection: string, ids: readonly string[]): Promise<Map<string, number>> {
    return this.catalogue.withCollection(collection, (c) => reads.versions(this.db, c, ids));
  }

  async count(collection: string, filter?: FilterNode): Promise<number> {
    return this.catalogue.withCollection(collection, (c) => filtered.count(this.db, c, filter));
  }

  async scroll(collection: string, opts: NvmScrollOptions): Promise<NvmScrollPage> {
    filtered.checkScroll(opts);
    return this.catalogue.withCollection(collection, (c) => filtered.scroll(this.db, c, opts));
  }

  counts(collection: string): Promise<{ blocks: number; vectors: number }> {
    return this.catalogue.withCollection(collection, (c) => reads.counts(this.db, c));
  }

  changesAfter(lsn: number, limit?: number, collection?: string): Promise<Change[]> {
    return changeLog.changesAfter(this.db, lsn, limit, collection);
  }

  pruneChanges(throughLsn: number): Promise<{ deleted: number; prunedThrough: number }> {
    return changeLog.pruneChanges(this.db, throughLsn);
  }

  changesPrunedThrough(): Promise<number> {
    return changeLog.changesPrunedThrough(this.db);
  }

  lastLsn(): Promise<number> {
    return changeLog.lastLsn(this.db);
  }

  onChange(listener: (lsn: number) => void): Promise<() => Promise<void>> {
    return changeLog.onChange(this.db, listener);
  }

  readSnapshot<T>(read: (snap: NvmSnapshot) => Promise<T>): Promise<T> {
    return readSnapshot(this.db, read);
  }

  streamVectors(collection: string, batchBlocks?: number): AsyncGenerator<VectorBatchPage> {
    return stream.streamVectors(this.db, this.catalogue, collection, batchBlocks);
  }

  digest(collection: string): Promise<{ blocks: number; digest: string }> {
    return this.catalogue.withCollection(collection, (c) => digestOf(this.db, c));
  }

  async search(
    collection: string,
    queries: readonly Float32Array[] | QueryBatch,
    k: number,
    opts: NvmSearchOptions = {},
  ): Promise<SearchHit[][]> {
    // Async, so a bad argument rejects rather than throws.
    const plan = checkSearch(queries instanceof QueryBatch ? queries.rows() : queries, k, opts);
    return this.catalogue.withCollection(collection, async (c) => {
      const overfetch = (await this.hasChunkedBlocks(c)) ? CHUNK_OVERFETCH : 1;
      return searchIn(this.db, c, queries, k, plan, this.iterativeScans, {
        overfetch,
        onShort: () => this.chunked.set(c.id, true),
      });
    });
  }

  /**
   * Whether the collection has blocks of several chunks (a search then over-fetches chunk rows):
   * read once per collection, then kept. Blocks of several chunks written later make a search come
   * back short once; it is rerun exactly (never short) and the collection counts as chunked.
   */
  private async hasChunkedBlocks(c: NvmCollection): Promise<boolean> {
    const known = this.chunked.get(c.id);
    if (known !== undefined) return known;
    const { rows } = await mapDbErrors(() =>
      this.db.query<{ chunked: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${vectorsTable(c.id)} WHERE chunk > 0) AS chunked`),
    );
    const chunked = rows[0]?.chunked === true;
    this.chunked.set(c.id, chunked);
    return chunked;
  }

  /** Per collection id: whether it has blocks of several chunks (see {@link hasChunkedBlocks}). */
  private readonly chunked = new Map<number, boolean>();

  createHnswIndex(collection: string, params?: HnswIndexParams, opts?: CreateHnswIndexOptions): Promise<HnswIndexBuild> {
    return this.indexes.createHnswIndex(collection, params, opts);
  }

  dropHnswIndex(collection: string): Promise<void> {
    return this.indexes.dropHnswIndex(collection);
  }

  async close(): Promise<void> {
    await this.tableStats.close();
    return this.db.close();
  }

  /** @internal The driver, for tests and the parts of the store still to come. */
  get driver(): SqlDriver {
    return this.db;
  }
}
