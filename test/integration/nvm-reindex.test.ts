import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import type { HnswBuildProgress, NvmCollection } from '../../src/nvm/nvm-store.js';
import type { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';
import { freshSeed, randomVectors, rng } from '../fixtures/random.js';
import { nvmBackends, type NvmBackend } from '../fixtures/nvm-backends.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL reindex tests: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const backends: NvmBackend[] = nvmBackends(pgProblem, cleanups, 'nvm-reindex-');

const DIM = 32;
const N = 3000;

interface IndexRow {
  name: string;
  valid: boolean;
  method: string;
  options: string[];
}

/** The indexes on the collection's vectors table, with their access method, validity and options. */
async function indexesOf(store: SqlNvmStore, c: NvmCollection): Promise<IndexRow[]> {
  const { rows } = await store.driver.query<{ name: string; valid: boolean; method: string; options: string[] | null }>(
    `SELECT ic.relname AS name, i.indisvalid AS valid, am.amname AS method, ic.reloptions AS options
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_am am ON am.oid = ic.relam
      WHERE i.indrelid = to_regclass($1)
      ORDER BY ic.relname`,
    [`hs_vec_${c.id}`],
  );
  return rows.map((r) => ({ ...r, options: r.options ?? [] })).filter((r) => r.method === 'hnsw');
}

describe.each(backends)('NVM online HNSW reindex ($name)', (backend) => {
  let store: SqlNvmStore;
  let c: NvmCollection;
  let seed: number;
  let flat: Float32Array;
  const vector = (i: number): Float32Array => flat.slice(i * DIM, (i + 1) * DIM);

  beforeEach(async () => {
    if (backend.skip) return;
    store = await backend.open();
    seed = freshSeed();
    flat = randomVectors(rng(seed), N, DIM);
    c = await store.createCollection('r', { dim: DIM, metric: 'cosine' });
    await store.writeBlocks(
      'r',
      Array.from({ length: N }, (_, i) => ({ id: `b${i}`, vectors: [vector(i)] })),
    );
  });
  afterEach(async () => {
    if (!backend.skip) await store.close();
  });

  it.skipIf(backend.skip)('builds the index under its canonical name with the given parameters, reporting progress', async () => {
    const progress: HnswBuildProgress[] = [];
    const built = await store.createHnswIndex('r', { m: 12, efConstruction: 40 }, { onProgress: (p) => progress.push(p) });
    expect(built).toMatchObject({ m: 12, efConstruction: 40 });
    expect(built.ms).toBeGreaterThan(0);

    const idx = await indexesOf(store, c);
    expect(idx).toEqual([{ name: `hs_vec_${c.id}_hnsw`, valid: true, method: 'hnsw', options: ['m=12', 'ef_construction=40'] }]);
    const { rows } = await store.driver.query<{ indexname: string }>('SELECT indexname FROM pg_indexes WHERE tablename = $1', [
      `hs_vec_${c.id}`,
    ]);
    expect(rows.map((r) => r.indexname)).toContain(`hs_vec_${c.id}_hnsw`);

    expect(progress.length).toBeGreaterThanOrEqual(1);
    for (const p of progress) {
      expect(p.percent).toBeGreaterThanOrEqual(0);
      expect(p.percent).toBeLessThanOrEqual(100);
      expect(typeof p.phase).toBe('string');
      for (const n of [p.blocksDone, p.blocksTotal, p.tuplesDone, p.tuplesTotal]) expect(Number.isFinite(n)).toBe(true);
    }
    expect(progress.at(-1)).toMatchObject({ phase: 'done', percent: 100, tuplesDone: N, tuplesTotal: N });
    if (backend.name === 'pglite') expect(progress).toHaveLength(1);

    // A stored vector finds itself first, by the index as exactly.
    const probes = [0, 1234, N - 1];
    const queries = probes.map(vector);
    const exact = await store.search('r', queries, 5);
    const approx = await store.search('r', queries, 5, { mode: 'hnsw', efSearch: 100 });
    probes.forEach((i, q) => {
      expect(exact[q][0].id, `seed ${seed}`).toBe(`b${i}`);
      expect(approx[q][0].id, `seed ${seed}`).toBe(exact[q][0].id);
    });
  });

  it.skipIf(backend.skip)('a second build replaces the first; searches keep an index meanwhile', async () => {
    await store.createHnswIndex('r', { m: 8, efConstruction: 32 });
    expect((await indexesOf(store, c)).map((i) => [i.name, i.options])).toEqual([
      [`hs_vec_${c.id}_hnsw`, ['m=8', 'ef_construction=32']],
    ]);

    // While the new index builds, the old one is still there under its name.
    const during: Promise<IndexRow[]>[] = [];
    const searches: Promise<unknown>[] = [];
    const built = await store.createHnswIndex(
      'r',
      { m: 16, efConstruction: 200 },
      {
        onProgress: (p) => {
          if (p.phase === 'done') return;
          during.push(indexesOf(store, c));
          searches.push(store.search('r', [vector(7)], 1, { mode: 'hnsw' }));
        },
      },
    );
    expect(built).toMatchObject({ m: 16, efConstruction: 200 });
    // PostgreSQL reports while it builds (PGlite only at the end, after the swap).
    if (backend.name === 'postgres') expect(during.length).toBeGreaterThan(0);
    for (const idx of await Promise.all(during)) expect(idx.map((i) => i.name)).toContain(`hs_vec_${c.id}_hnsw`);
    for (const hits of (await Promise.all(searches)) as { id: string }[][][]) expect(hits[0][0].id).toBe('b7');

    expect(await indexesOf(store, c)).toEqual([
      { name: `hs_vec_${c.id}_hnsw`, valid: true, method: 'hnsw', options: ['m=16', 'ef_construction=200'] },
    ]);
    const [hits] = await store.search('r', [vector(42)], 1, { mode: 'hnsw' });
    expect(hits[0].id).toBe('b42');
  });

  it.skipIf(backend.skip)('a leftover temporary index (an INVALID one of a killed build) is cleaned up', async () => {
    const temp = `hs_vec_${c.id}_hnsw_new`;
    await store.driver.exec(`CREATE INDEX ${temp} ON hs_vec_${c.id} USING hnsw (embedding vector_cosine_ops) WITH (m = 4)`);
    // What a failed CREATE INDEX CONCURRENTLY leaves behind: an index marked invalid.
    await store.driver.query('UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass($1)', [temp]);
    expect((await indexesOf(store, c)).map((i) => [i.name, i.valid])).toEqual([[temp, false]]);

    await store.createHnswIndex('r', { m: 10, efConstruction: 20 });
    expect(await indexesOf(store, c)).toEqual([
      { name: `hs_vec_${c.id}_hnsw`, valid: true, method: 'hnsw', options: ['m=10', 'ef_construction=20'] },
    ]);

    // dropHnswIndex removes a leftover too.
    await store.driver.exec(`CREATE INDEX ${temp} ON hs_vec_${c.id} USING hnsw (embedding vector_cosine_ops) WITH (m = 4)`);
    await store.dropHnswIndex('r');
    expect(await indexesOf(store, c)).toEqual([]);
  });

  it.skipIf(backend.skip)('calls for one collection run one at a time; the last one wins', async () => {
    const [a, b] = await Promise.all([
      store.createHnswIndex('r', { m: 6, efConstruction: 16 }),
      store.createHnswIndex('r', { m: 14, efConstruction: 28 }),
    ]);
    expect([a.m, b.m]).toEqual([6, 14]);
    expect(await indexesOf(store, c)).toEqual([
      { name: `hs_vec_${c.id}_hnsw`, valid: true, method: 'hnsw', options: ['m=14', 'ef_construction=28'] },
    ]);
  });

  it.skipIf(backend.skip)('an aborted signal stops the build and leaves the old index as it was', async () => {
    await store.createHnswIndex('r', { m: 8, efConstruction: 32 });
    const before = await indexesOf(store, c);

    const early = new AbortController();
    const reason = new Error('stop before');
    early.abort(reason);
    await expect(store.createHnswIndex('r', {}, { signal: early.signal })).rejects.toBe(reason);
    expect(await indexesOf(store, c)).toEqual(before);

    // PGlite builds on its one connection with no progress until the end: nothing to abort during.
    if (backend.name === 'pglite') return;

    // Aborted while it builds: the building backend is cancelled.
    const late = new AbortController();
    const lateReason = new Error('stop during');
    let abortedAt = 0;
    const run = store.createHnswIndex(
      'r',
      { m: 48, efConstruction: 400 },
      {
        signal: late.signal,
        onProgress: () => {
          if (abortedAt === 0) {
            abortedAt = performance.now();
            late.abort(lateReason);
          }
        },
      },
    );
    await expect(run).rejects.toBe(lateReason);
    expect(await indexesOf(store, c)).toEqual(before);
    expect(abortedAt).toBeGreaterThan(0);
    // Cancelled, not left to finish (the whole build takes several seconds): nothing still builds.
    expect(performance.now() - abortedAt).toBeLessThan(1500);
    const { rows } = await store.driver.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'CREATE INDEX%'",
    );
    expect(Number(rows[0].n)).toBe(0);
  });

  it.skipIf(backend.skip)('validation is unchanged', async () => {
    await expect(store.createHnswIndex('r', { m: 1 })).rejects.toThrow(InvalidArgumentError);
    await expect(store.createHnswIndex('r', { m: 101 })).rejects.toThrow(/m must be/);
    await expect(store.createHnswIndex('r', { efConstruction: 3 })).rejects.toThrow(/efConstruction must be/);
    await expect(store.createHnswIndex('r', { efConstruction: 1001 })).rejects.toThrow(InvalidArgumentError);
    await expect(store.createHnswIndex('r', { m: 2.5 })).rejects.toThrow(InvalidArgumentError);
    expect(await indexesOf(store, c)).toEqual([]);
  });
});
