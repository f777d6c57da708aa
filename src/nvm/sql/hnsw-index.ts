import type { Metric } from '../../core/metric.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { mapDbErrors } from '../db-errors.js';
import type { CreateHnswIndexOptions, HnswBuildProgress, HnswIndexBuild, HnswIndexParams, NvmCollection } from '../nvm-store.js';
import type { SqlDriver } from '../sql-driver.js';
import { type Catalogue, vectorsTable } from './catalogue.js';

/** pgvector's HNSW operator class per metric. */
const OPCLASS: Record<Metric, string> = { cosine: 'vector_cosine_ops', ip: 'vector_ip_ops', l2: 'vector_l2_ops' };

const hnswIndex = (id: number): string => `hs_vec_${Math.trunc(id)}_hnsw`;

/** The name a new HNSW index is built under before it replaces {@link hnswIndex}. */
const tempHnswIndex = (id: number): string => `hs_vec_${Math.trunc(id)}_hnsw_new`;

/** How often a PostgreSQL index build's progress is read. */
const PROGRESS_POLL_MS = 500;

type ProgressRow = {
  pid: number;
  phase: string;
  blocks_done: string | number;
  blocks_total: string | number;
  tuples_done: string | number;
  tuples_total: string | number;
};

/** A progress report from a `pg_stat_progress_create_index` row (see {@link HnswBuildProgress}). */
function toProgress(r: ProgressRow): HnswBuildProgress {
  const p = {
    phase: String(r.phase),
    blocksDone: Number(r.blocks_done) || 0,
    blocksTotal: Number(r.blocks_total) || 0,
    tuplesDone: Number(r.tuples_done) || 0,
    tuplesTotal: Number(r.tuples_total) || 0,
  };
  const ratio =
    p.phase.startsWith('building index') && p.tuplesTotal > 0
      ? p.tuplesDone / p.tuplesTotal
      : p.blocksTotal > 0
        ? p.blocksDone / p.blocksTotal
        : 0;
  return { ...p, percent: Math.min(100, Math.max(0, ratio * 100)) };
}

/** The HNSW index of each collection's vectors table: built (and rebuilt) under a temporary name, or dropped. */
export class HnswIndexes {
  /** The last HNSW build or drop queued per collection name, so they run one at a time. */
  private readonly indexWork = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: SqlDriver,
    private readonly catalogue: Catalogue,
  ) {}

  /** Builds the collection's HNSW index (replacing one it has), after the index work queued before it. */
  async createHnswIndex(
    collection: string,
    params: HnswIndexParams = {},
    opts: CreateHnswIndexOptions = {},
  ): Promise<HnswIndexBuild> {
    const m = params.m ?? 16;
    const efConstruction = params.efConstruction ?? 64;
    if (!Number.isInteger(m) || m < 2 || m > 100)
      throw new InvalidArgumentError(`m must be an integer between 2 and 100, got ${String(m)}`);
    if (!Number.isInteger(efConstruction) || efConstruction < 4 || efConstruction > 1000) {
      throw new InvalidArgumentError(`efConstruction must be an integer between 4 and 1000, got ${String(efConstruction)}`);
    }
    opts.signal?.throwIfAborted();
    return this.oneIndexJobAtATime(collection, () =>
      this.catalogue.withCollection(collection, (c) => this.buildHnswIndex(c, m, efConstruction, opts)),
    );
  }

  /** Drops the collection's HNSW index and any leftover temporary one, after the index work queued before it. */
  async dropHnswIndex(collection: string): Promise<void> {
    await this.oneIndexJobAtATime(collection, () =>
      this.catalogue.withCollection(collection, async (c) => {
        const concurrently = this.db.kind === 'postgres' ? 'CONCURRENTLY' : '';
        await mapDbErrors(() => this.db.exec(`DROP INDEX ${concurrently} IF EXISTS ${tempHnswIndex(c.id)}`));
        await mapDbErrors(() => this.db.exec(`DROP INDEX ${concurrently} IF EXISTS ${hnswIndex(c.id)}`));
      }),
    );
  }

  /** Builds under the temporary name, then swaps the new index in for the old one. */
  private async buildHnswIndex(
    c: NvmCollection,
    m: number,
    efConstruction: number,
    { onProgress, signal }: CreateHnswIndexOptions,
  ): Promise<HnswIndexBuild> {
    const started = performance.now();
    const postgres = this.db.kind === 'postgres';
    // CONCURRENTLY keeps writes going while the index builds; PGlite has one connection anyway.
    const concurrently = postgres ? 'CONCURRENTLY' : '';
    const table = vectorsTable(c.id);
    const temp = tempHnswIndex(c.id);
    const dropTemp = (): Promise<void> => mapDbErrors(() => this.db.exec(`DROP INDEX ${concurrently} IF EXISTS ${temp}`));
    const report = (p: HnswBuildProgress): void => {
      try {
        onProgress?.(p);
      } catch {
        // A failing progress callback must not fail the build.
      }
    };

    // A concurrent build that failed or was killed leaves an INVALID index behind under this name.
    await dropTemp();
    signal?.throwIfAborted();
    const sql = `CREATE INDEX ${concurrently} ${temp} ON ${table} USING hnsw (embedding ${OPCLASS[c.metric]}) WITH (m = ${m}, ef_construction = ${efConstruction})`;
    const build = mapDbErrors(() => this.db.exec(sql));
    let last: HnswBuildProgress | undefined;
    const watching =
      postgres && (onProgress || signal)
        ? this.watchIndexBuild(build, table, sql, signal, (p) => {
            last = p;
            report(p);
          })
        : undefined;
    try {
      await build;
      signal?.throwIfAborted();
    } catch (err) {
      await watching;
      await dropTemp().catch(() => undefined);
      if (signal?.aborted) throw signal.reason;
      throw err;
    }
    await watching;

    // From here on the new index is valid: the old one goes and the new one takes its name.
    await mapDbErrors(() => this.db.exec(`DROP INDEX ${concurrently} IF EXISTS ${hnswIndex(c.id)}`));
    await mapDbErrors(() => this.db.exec(`ALTER INDEX ${temp} RENAME TO ${hnswIndex(c.id)}`));
    if (onProgress) {
      // The build recorded the table's size: the final report counts all of it.
      const { rows } = await this.db
        .query<{ pages: number; tuples: number }>(
          'SELECT relpages AS pages, reltuples AS tuples FROM pg_class WHERE oid = to_regclass($1)',
          [table],
        )
        .catch(() => ({ rows: [] as { pages: number; tuples: number }[] }));
      const blocks = Math.max(0, Number(rows[0]?.pages ?? last?.blocksTotal ?? 0));
      const tuples = Math.max(0, Number(rows[0]?.tuples ?? last?.tuplesDone ?? 0));
      report({ phase: 'done', blocksDone: blocks, blocksTotal: blocks, tuplesDone: tuples, tuplesTotal: tuples, percent: 100 });
    }
    return { ms: performance.now() - started, m, efConstruction };
  }

  /**
   * While `build` (the statement `sql` on `table`) runs on one pooled connection, reads its row of
   * `pg_stat_progress_create_index` every {@link PROGRESS_POLL_MS} on another and passes it on;
   * once `signal` aborts, cancels the backend that runs `sql` instead. Resolves once `build` has
   * settled, so nothing is polled or reported after it.
   */
  private async watchIndexBuild(
    build: Promise<unknown>,
    table: string,
    sql: string,
    signal: AbortSignal | undefined,
    onProgress: (p: HnswBuildProgress) => void,
  ): Promise<void> {
    let settled = false;
    let wake: (() => void) | undefined;
    const nudge = (): void => wake?.();
    const end = (): void => {
      settled = true;
      nudge();
    };
    build.then(end, end);
    signal?.addEventListener('abort', nudge);
    let cancelled = false;
    try {
      while (!settled) {
        if (signal?.aborted) {
          if (!cancelled) cancelled = await this.cancelStatement(sql);
        } else {
          // Only one CREATE INDEX runs on a table at a time (their locks conflict), so the row of
          // this database and table is this build's.
          const { rows } = await this.db
            .query<ProgressRow>(
              `SELECT pid, phase, blocks_done, blocks_total, tuples_done, tuples_total
                 FROM pg_stat_progress_create_index
                WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND relid = to_regclass($1)`,
              [table],
            )
            .catch(() => ({ rows: [] as ProgressRow[] }));
          if (settled) break;
          if (rows[0] && !signal?.aborted) onProgress(toProgress(rows[0]));
        }
        if (settled) break;
        // Right after an abort whose statement was not found yet (still being sent), look again soon.
        const pause = signal?.aborted && !cancelled ? 50 : PROGRESS_POLL_MS;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pause);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    } finally {
      signal?.removeEventListener('abort', nudge);
    }
  }

  /**
   * Cancels the backend of this database that is running exactly `sql` (matched in the same
   * snapshot of `pg_stat_activity` the cancel is sent from, so never the next user of its pooled
   * connection); true if one was.
   */
  private async cancelStatement(sql: string): Promise<boolean> {
    const { rows } = await this.db
      .query<{ ok: boolean }>(
        `SELECT pg_cancel_backend(pid) AS ok FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query = $1`,
        [sql],
      )
      .catch(() => ({ rows: [] as { ok: boolean }[] }));
    return rows.some((r) => r.ok);
  }

  /** Runs `fn` after the HNSW builds and drops queued before it for the same collection. */
  private async oneIndexJobAtATime<T>(collection: string, fn: () => Promise<T>): Promise<T> {
    const before = this.indexWork.get(collection) ?? Promise.resolve();
    const mine = before.then(fn);
    const tail = mine.catch(() => undefined);
    this.indexWork.set(collection, tail);
    try {
      return await mine;
    } finally {
      if (this.indexWork.get(collection) === tail) this.indexWork.delete(collection);
    }
  }
}
