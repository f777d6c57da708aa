import { join } from 'node:path';
import { METRICS, type Metric } from '../../kernels/types.js';
import { CollectionNotFoundError, InvalidArgumentError } from '../errors.js';
import { assertCollectionName } from '../hvs/collection-name.js';
import { MAX_DIM } from '../hvs/vector-input.js';
import { mapDbError } from './db-errors.js';
import { loadMigrations, migrate } from './migrations.js';
import type { NvmCollection, NvmStore } from './nvm-store.js';
import { PgDriver } from './pg-driver.js';
import { PgliteDriver } from './pglite-driver.js';
import type { SqlDriver } from './sql-driver.js';

/** Options of {@link SqlNvmStore.open}. */
export interface NvmStoreOptions {
  /** PostgreSQL with pgvector; when unset, embedded PGlite under `<dataDir>/nvm`. */
  databaseUrl?: string;
  /** Data directory of the embedded database (required without `databaseUrl`). */
  dataDir?: string;
}

type CollectionRow = { id: number; name: string; dim: number; metric: string };

/** The vectors table of a collection: named by its number, so no identifier ever comes from input. */
const vectorsTable = (id: number): string => `hs_vec_${Math.trunc(id)}`;

/** {@link NvmStore} written once in SQL over either driver. */
export class SqlNvmStore implements NvmStore {
  private constructor(private readonly db: SqlDriver) {}

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
    } catch (err) {
      await db.close();
      throw mapDbError(err);
    }
    return new SqlNvmStore(db);
  }

  get backend(): 'postgres' | 'pglite' {
    return this.db.kind;
  }

  async createCollection(name: string, spec: { dim: number; metric: Metric }): Promise<NvmCollection> {
    assertCollectionName(name);
    if (!Number.isInteger(spec.dim) || spec.dim < 1 || spec.dim > MAX_DIM) {
      throw new InvalidArgumentError(`dim must be an integer between 1 and ${MAX_DIM}, got ${String(spec.dim)}`);
    }
    if (!METRICS.includes(spec.metric)) {
      throw new InvalidArgumentError(`metric must be one of ${METRICS.join(', ')}, got ${JSON.stringify(spec.metric)}`);
    }
    try {
      return await this.db.transaction(async (tx) => {
        const { rows } = await tx.query<CollectionRow>(
          'INSERT INTO hs_collections (name, dim, metric) VALUES ($1, $2, $3) RETURNING id, name, dim, metric',
          [name, spec.dim, spec.metric],
        );
        const c = toCollection(rows[0]);
        // dim is a checked integer and the table name a number: nothing here comes from input text.
        await tx.query(
          `CREATE TABLE ${vectorsTable(c.id)} (
             block_id  text NOT NULL,
             chunk     integer NOT NULL,
             embedding vector(${c.dim}) NOT NULL,
             PRIMARY KEY (block_id, chunk)
           )`,
        );
        return c;
      });
    } catch (err) {
      throw mapDbError(err, { collection: name });
    }
  }

  async getCollection(name: string): Promise<NvmCollection> {
    assertCollectionName(name);
    const { rows } = await this.run(() =>
      this.db.query<CollectionRow>('SELECT id, name, dim, metric FROM hs_collections WHERE name = $1', [name]),
    );
    if (rows.length === 0) throw new CollectionNotFoundError(name);
    return toCollection(rows[0]);
  }

  async listCollections(): Promise<NvmCollection[]> {
    const { rows } = await this.run(() =>
      this.db.query<CollectionRow>('SELECT id, name, dim, metric FROM hs_collections ORDER BY name'),
    );
    return rows.map(toCollection);
  }

  async dropCollection(name: string): Promise<void> {
    assertCollectionName(name);
    await this.run(() =>
      this.db.transaction(async (tx) => {
        const { rows } = await tx.query<{ id: number }>('DELETE FROM hs_collections WHERE name = $1 RETURNING id', [name]);
        if (rows.length === 0) throw new CollectionNotFoundError(name);
        await tx.query(`DROP TABLE IF EXISTS ${vectorsTable(rows[0].id)}`);
        await tx.query('DELETE FROM hs_changes WHERE collection = $1', [name]);
      }),
    );
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** @internal The driver, for tests and the parts of the store still to come. */
  get driver(): SqlDriver {
    return this.db;
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw mapDbError(err);
    }
  }
}

function toCollection(r: CollectionRow): NvmCollection {
  return { id: Number(r.id), name: r.name, dim: Number(r.dim), metric: r.metric as Metric };
}
