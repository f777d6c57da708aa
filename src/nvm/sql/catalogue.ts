import { LIMITS } from '../../core/limits.js';
import { METRICS, type Metric } from '../../core/metric.js';
import { CollectionNotFoundError, InvalidArgumentError } from '../../core/errors.js';
import { assertCollectionName } from '../../core/collection-name.js';
import { mapDbError, mapDbErrors } from '../db-errors.js';
import type { CollectionSpecInput, NvmCollection } from '../nvm-store.js';
import type { SqlDriver } from '../sql-driver.js';

export type CollectionRow = {
  id: number;
  name: string;
  dim: number;
  metric: string;
  encoder: string | null;
  encoder_version: string | null;
};

export const COLLECTION_COLUMNS = 'id, name, dim, metric, encoder, encoder_version';

/** The vectors table of a collection: named by its number, so no identifier ever comes from input. */
export const vectorsTable = (id: number): string => `hs_vec_${Math.trunc(id)}`;

/** A catalogue row as the store hands it out. */
export function toCollection(r: CollectionRow): NvmCollection {
  const c: NvmCollection = { id: Number(r.id), name: r.name, dim: Number(r.dim), metric: r.metric as Metric };
  if (r.encoder !== null) c.encoder = { name: r.encoder, version: r.encoder_version ?? '' };
  return c;
}

/** The collection catalogue (`hs_collections`, one vectors table per collection), with a cache of its rows. */
export class Catalogue {
  /** Catalogue rows by name, so a data call costs one round trip; dropped on drop or a stale hit. */
  private readonly known = new Map<string, NvmCollection>();

  constructor(private readonly db: SqlDriver) {}

  /** Records the collection and creates its vectors table, in one transaction. */
  async createCollection(name: string, spec: CollectionSpecInput): Promise<NvmCollection> {
    assertCollectionName(name);
    if (!Number.isInteger(spec.dim) || spec.dim < 1 || spec.dim > LIMITS.dim) {
      throw new InvalidArgumentError(`dim must be an integer between 1 and ${LIMITS.dim}, got ${String(spec.dim)}`);
    }
    if (!METRICS.includes(spec.metric)) {
      throw new InvalidArgumentError(`metric must be one of ${METRICS.join(', ')}, got ${JSON.stringify(spec.metric)}`);
    }
    const enc = spec.encoder;
    if (enc !== undefined && (typeof enc.name !== 'string' || enc.name.length === 0 || typeof enc.version !== 'string')) {
      throw new InvalidArgumentError('encoder must have a non-empty name and a version');
    }
    try {
      return await this.db.transaction(async (tx) => {
        const { rows } = await tx.query<CollectionRow>(
          `INSERT INTO hs_collections (name, dim, metric, encoder, encoder_version) VALUES ($1, $2, $3, $4, $5)
           RETURNING ${COLLECTION_COLUMNS}`,
          [name, spec.dim, spec.metric, enc?.name ?? null, enc?.version ?? null],
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

  /** The catalogue row of `name`, read from the database (not the cache). */
  async getCollection(name: string): Promise<NvmCollection> {
    assertCollectionName(name);
    const { rows } = await mapDbErrors(() =>
      this.db.query<CollectionRow>(`SELECT ${COLLECTION_COLUMNS} FROM hs_collections WHERE name = $1`, [name]),
    );
    if (rows.length === 0) throw new CollectionNotFoundError(name);
    return toCollection(rows[0]);
  }

  /** Every collection, by name. */
  async listCollections(): Promise<NvmCollection[]> {
    const { rows } = await mapDbErrors(() =>
      this.db.query<CollectionRow>(`SELECT ${COLLECTION_COLUMNS} FROM hs_collections ORDER BY name`),
    );
    return rows.map(toCollection);
  }

  /**
   * Drops the collection, its vectors table and its change-log rows, in one transaction; the
   * newest lsn among those rows is kept as the log's floor, so the newest lsn never moves back.
   */
  async dropCollection(name: string): Promise<void> {
    assertCollectionName(name);
    this.known.delete(name);
    await mapDbErrors(() =>
      this.db.transaction(async (tx) => {
        const { rows } = await tx.query<{ id: number }>('DELETE FROM hs_collections WHERE name = $1 RETURNING id', [name]);
        if (rows.length === 0) throw new CollectionNotFoundError(name);
        await tx.query(`DROP TABLE IF EXISTS ${vectorsTable(rows[0].id)}`);
        await tx.query(
          `INSERT INTO hs_lsn_floor (singleton, lsn)
             SELECT true, max(lsn) FROM hs_changes WHERE collection = $1 HAVING max(lsn) IS NOT NULL
           ON CONFLICT (singleton) DO UPDATE SET lsn = greatest(hs_lsn_floor.lsn, excluded.lsn)`,
          [name],
        );
        await tx.query('DELETE FROM hs_changes WHERE collection = $1', [name]);
      }),
    );
  }

  /**
   * Runs `fn` with the collection's catalogue row, from the cache when it has one. If the
   * collection was dropped meanwhile (its vectors table is gone) — by another process, or by a
   * drop here that ran while `fn` was under way — the row is read again: a dropped collection is
   * a {@link CollectionNotFoundError}, a re-created one runs `fn` again (a few times at most: one
   * dropped and re-created under every try counts as dropped).
   */
  async withCollection<T>(name: string, fn: (c: NvmCollection) => Promise<T>): Promise<T> {
    assertCollectionName(name);
    let c = this.known.get(name) ?? (await this.getCollection(name));
    this.known.set(name, c);
    for (let tries = 1; ; tries++) {
      try {
        return await fn(c);
      } catch (err) {
        if ((err as { code?: unknown } | null)?.code !== '42P01') throw err;
        this.known.delete(name);
        const fresh = await this.getCollection(name);
        if (fresh.id === c.id) throw err;
        if (tries === 3) throw new CollectionNotFoundError(name, { cause: err });
        this.known.set(name, fresh);
        c = fresh;
      }
    }
  }
}
