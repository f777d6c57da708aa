/**
 * Filtered search: the HVS (metadata columns → row masks or gathered rows in the kernel) against
 * pgvector's HNSW with the same filter compiled to SQL (iterative scans on), in the same run, on
 * the same data: N × 384 clustered vectors with fields of different cardinality, and filters of
 * 50%, 10%, 1% and 0.1% selectivity. Recall@10 is against an exact float64 search over the
 * matching items; "short" counts answers with fewer than k hits although k items match. pgvector
 * alone is one table with the metadata as jsonb (GIN), the filter in the WHERE clause and
 * iterative scans on; hypersync's own pgvector path (its fallback while the HVS loads) is
 * measured too.
 *
 *   npm run bench:filter                   # N = 100,000
 *   BENCH_FILTER_N=20000 npm run bench:filter
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileFilter, type Filter, type FilterNode, matchesFilter } from '../src/core/filter.js';
import { Hvs } from '../src/hvs/hvs.js';
import pg from 'pg';
import { SqlNvmStore } from '../src/nvm/sql-nvm-store.js';
import { filterToSql } from '../src/nvm/sql/filter-sql.js';
import { vectorToText } from '../src/nvm/vector-codec.js';
import { clusteredVector } from './lib/data.js';
import { withScratchDb } from './lib/scratch-db.js';
import { machine, median, printTable, writeResult } from './lib/stats.js';

const N = Number(process.env.BENCH_FILTER_N ?? 100_000);
const DIM = 384;
const K = 10;
/** Queries timed one at a time (and checked for recall). */
const SINGLE = Number(process.env.BENCH_FILTER_QUERIES ?? 50);
const BATCH = 64;
const TENANTS = 20;
const EF_SEARCH = 100;
const queries = Array.from({ length: Math.max(SINGLE, BATCH) }, () => clusteredVector(DIM));

/** A deterministic pseudo-random number in [0, 1) per (item, field): fields independent of each other. */
function hash01(i: number, salt: number): number {
  let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(salt + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

/** Fields: `half` (2 values), `tenant` (20 strings), `lang` (4), `bucket` (1,000 numbers), `tags`. */
function metadataOf(i: number): Record<string, unknown> {
  return {
    half: hash01(i, 1) < 0.5,
    tenant: `t${Math.floor(hash01(i, 2) * TENANTS)}`,
    lang: ['de', 'en', 'fr', 'ja'][Math.floor(hash01(i, 3) * 4)],
    bucket: Math.floor(hash01(i, 4) * 1000),
    tags: hash01(i, 5) < 1 / 3 ? ['news'] : ['blog', 'tech'],
  };
}

/**
 * `fresh`: each query gets a filter of its own (the same rows, plus a clause on a field no item
 * has, `$ne` a query number), so nothing is reused between queries: what a stream of distinct
 * filters costs.
 */
const FILTERS: { name: string; filter: Filter; fresh?: boolean }[] = [
  { name: 'none', filter: {} },
  { name: '50%', filter: { half: true } },
  { name: '10%', filter: { tenant: { $in: ['t3', 't11'] } } },
  { name: '1%', filter: { bucket: { $lt: 10 } } },
  { name: '0.1%', filter: { tenant: 't7', bucket: { $lt: 20 } } },
  { name: '1%, a new filter per query', filter: { bucket: { $lt: 10 } }, fresh: true },
];

/** Exact top-k ids over the matching rows, in float64 (cosine on normalised copies). */
function reference(unit: Float32Array[], allowed: readonly number[], q: Float32Array): string[] {
  let qn = 0;
  for (const x of q) qn += x * x;
  qn = Math.sqrt(qn);
  const scored = allowed.map((r) => {
    let s = 0;
    const v = unit[r];
    for (let j = 0; j < DIM; j++) s += v[j] * q[j];
    return { r, s: s / qn };
  });
  scored.sort((a, b) => b.s - a.s);
  return scored.slice(0, K).map((x) => `b${x.r}`);
}

function unitCopy(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  return v.map((x) => x / n);
}

/** Times `run` over the single queries: q/s, p50, recall against the case's truth, short answers. */
async function measure(
  cs: { matching: number; truth: string[][] },
  run: (q: Float32Array, i: number) => Promise<{ id: string }[]>,
): Promise<{ qpsB1: number; p50ms: number; recall: number; short: number }> {
  await run(queries[0], SINGLE); // warm-up
  const times: number[] = [];
  const got: { id: string }[][] = [];
  for (const [i, q] of queries.slice(0, SINGLE).entries()) {
    const s = performance.now();
    got.push(await run(q, i));
    times.push(performance.now() - s);
  }
  const short = got.filter((h) => h.length < Math.min(K, cs.matching)).length;
  return { qpsB1: 1000 / median(times), p50ms: median(times), recall: recallOf(got, cs.truth), short };
}

function recallOf(got: readonly { id: string }[][], truth: readonly string[][]): number {
  let found = 0;
  let total = 0;
  got.forEach((hits, i) => {
    const t = new Set(truth[i]);
    found += hits.filter((h) => t.has(h.id)).length;
    total += truth[i].length;
  });
  return total === 0 ? 1 : found / total;
}

const { Client } = pg;

async function main(): Promise<void> {
  console.log(`filtered search: N = ${N}, d = ${DIM}, k = ${K}; generating data…`);
  const vectors = Array.from({ length: N }, () => clusteredVector(DIM));
  const unit = vectors.map(unitCopy);
  const metadata = vectors.map((_, i) => metadataOf(i));
  const cases = FILTERS.map((f) => {
    const node = compileFilter(f.filter);
    const allowed: number[] = [];
    for (let i = 0; i < N; i++) if (matchesFilter(node, metadata[i])) allowed.push(i);
    const truth = queries.slice(0, SINGLE).map((q) => reference(unit, allowed, q));
    const nodeFor = (i: number): FilterNode => (f.fresh ? compileFilter({ ...f.filter, nonce: { $ne: i } }) : node);
    return { ...f, node, nodeFor, matching: allowed.length, truth };
  });

  // The HVS, in process: every segment sealed on the kernel's device.
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-filter-'));
  const hvs = await Hvs.open({ dataDir, device: process.env.HYPERSYNC_DEVICE === 'cuda' ? 'cuda' : 'cpu' });
  const hvsRows: Record<string, unknown>[] = [];
  try {
    const c = hvs.createCollection('f', { dim: DIM, metric: 'cosine' });
    for (let i = 0; i < N; i += 10_000) {
      const ids = Array.from({ length: Math.min(10_000, N - i) }, (_, j) => `b${i + j}`);
      await c.upsert(ids, vectors.slice(i, i + ids.length), undefined, metadata.slice(i, i + ids.length));
    }
    await c.flush();
    // The steady state: a compaction (a background job in the service) merges the sealed segments.
    await c.compact();
    for (const cs of cases) {
      await c.search(queries.slice(0, 4), K, { filter: cs.nodeFor(BATCH + 1) }); // warm-up
      const single: number[] = [];
      const got: { id: string }[][] = [];
      for (const [i, q] of queries.slice(0, SINGLE).entries()) {
        const t = performance.now();
        got.push((await c.search([q], K, { filter: cs.nodeFor(i) }))[0]);
        single.push(performance.now() - t);
      }
      const batchTimes: number[] = [];
      for (let r = 0; r < 3; r++) {
        const t = performance.now();
        const filter = cs.fresh ? queries.slice(0, BATCH).map((_, i) => cs.nodeFor(r * BATCH + i)) : cs.node;
        await c.search(queries.slice(0, BATCH), K, { filter });
        batchTimes.push(performance.now() - t);
      }
      const short = got.filter((h) => h.length < Math.min(K, cs.matching)).length;
      hvsRows.push({
        selectivity: cs.name,
        matching: cs.matching,
        qpsB1: 1000 / median(single),
        qpsB64: (BATCH * 1000) / median(batchTimes),
        p50ms: median(single),
        recall: recallOf(got, cs.truth),
        short,
      });
    }
  } finally {
    await hvs.close();
    await rm(dataDir, { recursive: true, force: true });
  }

  // pgvector alone, as its users write it: one table (id, embedding, metadata jsonb) with an HNSW
  // index and a GIN index on the metadata, the same filter compiled to SQL in the WHERE clause, and
  // iterative scans on. Then hypersync's own pgvector path (the NVM, used while the HVS loads:
  // blocks and vectors in two tables, short answers rerun exactly).
  const pg = await withScratchDb(async (url) => {
    const peer: Record<string, unknown>[] = [];
    const nvmPath: Record<string, unknown>[] = [];
    const client = new Client({ connectionString: url });
    await client.connect();
    const store = await SqlNvmStore.open({ databaseUrl: url });
    try {
      await client.query('CREATE EXTENSION IF NOT EXISTS vector');
      await client.query(`CREATE TABLE items (id text PRIMARY KEY, embedding vector(${DIM}) NOT NULL, metadata jsonb NOT NULL)`);
      let t = performance.now();
      for (let i = 0; i < N; i += 2000) {
        const ids = vectors.slice(i, i + 2000).map((_, j) => `b${i + j}`);
        await client.query('INSERT INTO items SELECT * FROM unnest($1::text[], $2::vector[], $3::jsonb[])', [
          ids,
          ids.map((_, j) => vectorToText(vectors[i + j])),
          ids.map((_, j) => JSON.stringify(metadata[i + j])),
        ]);
      }
      const loadS = (performance.now() - t) / 1000;
      t = performance.now();
      await client.query('CREATE INDEX ON items USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)');
      const buildS = (performance.now() - t) / 1000;
      await client.query('CREATE INDEX ON items USING gin (metadata jsonb_path_ops)');
      await client.query('ANALYZE items');
      console.log(`pgvector: loaded in ${loadS.toFixed(0)} s, HNSW built in ${buildS.toFixed(0)} s`);
      for (const cs of cases) {
        for (const mode of ['hnsw', 'exact'] as const) {
          const run = async (q: Float32Array, i: number): Promise<{ id: string }[]> => {
            const params: unknown[] = [vectorToText(q), K];
            const where = filterToSql(cs.nodeFor(i), 'metadata', params);
            await client.query('BEGIN');
            try {
              if (mode === 'hnsw') {
                await client.query(`SET LOCAL hnsw.ef_search = ${EF_SEARCH}`);
                await client.query('SET LOCAL hnsw.iterative_scan = relaxed_order');
              } else await client.query('SET LOCAL enable_indexscan = off');
              const { rows } = await client.query<{ id: string }>(
                `SELECT id FROM items WHERE ${where} ORDER BY embedding <=> $1::vector LIMIT $2`,
                params,
              );
              return rows;
            } finally {
              await client.query('COMMIT');
            }
          };
          peer.push({ selectivity: cs.name, mode, ...(await measure(cs, run)) });
        }
      }
      // hypersync's NVM path: the same rows through SqlNvmStore.
      await store.createCollection('f', { dim: DIM, metric: 'cosine' });
      for (let i = 0; i < N; i += 5000) {
        await store.writeBlocks(
          'f',
          vectors.slice(i, i + 5000).map((v, j) => ({ id: `b${i + j}`, vectors: [v], metadata: metadata[i + j] })),
        );
      }
      await store.createHnswIndex('f', { m: 16, efConstruction: 64 });
      for (const cs of cases) {
        const stats = { queries: 0, short: 0, reruns: 0 };
        const run = async (q: Float32Array, i: number): Promise<{ id: string }[]> =>
          (await store.search('f', [q], K, { mode: 'hnsw', efSearch: EF_SEARCH, filter: cs.nodeFor(i), stats }))[0];
        nvmPath.push({ selectivity: cs.name, ...(await measure(cs, run)), rerunExactly: stats.reruns });
      }
      return { loadS, buildS, peer, nvmPath };
    } finally {
      await store.close();
      await client.end();
    }
  });

  const rows = cases.map((cs) => {
    const h = hvsRows.find((r) => r.selectivity === cs.name) as Record<string, number>;
    const p = pg.peer.find((r) => r.selectivity === cs.name && r.mode === 'hnsw') as Record<string, number>;
    const e = pg.peer.find((r) => r.selectivity === cs.name && r.mode === 'exact') as Record<string, number>;
    const n = pg.nvmPath.find((r) => r.selectivity === cs.name) as Record<string, number>;
    return { cs, h, p, e, n };
  });
  console.log(
    `\nfiltered search, N = ${N}, d = ${DIM}, k = ${K}, ${SINGLE} single queries (median latency), batches of ${BATCH}; HVS compacted; ` +
      `pgvector HNSW m=16 ef_construction=64 ef_search=${EF_SEARCH}, iterative scans on, no exact fallback`,
  );
  printTable(
    [
      'selectivity',
      'matching',
      'HVS q/s B=1',
      'HVS q/s B=64',
      'HVS recall',
      'HVS short',
      'pgvector HNSW q/s',
      'pgvector recall',
      'pgvector short',
      'pgvector exact q/s',
      'hypersync NVM path q/s (recall)',
      'HVS B=1 / pgvector HNSW',
    ],
    rows.map(({ cs, h, p, e, n }) => [
      cs.name,
      cs.matching,
      h.qpsB1.toFixed(0),
      h.qpsB64.toFixed(0),
      h.recall.toFixed(3),
      `${h.short}/${SINGLE}`,
      p.qpsB1.toFixed(1),
      p.recall.toFixed(3),
      `${p.short}/${SINGLE}`,
      e.qpsB1.toFixed(1),
      `${n.qpsB1.toFixed(1)} (${n.recall.toFixed(3)})`,
      `${(h.qpsB1 / p.qpsB1).toFixed(1)}×`,
    ]),
  );
  const path = await writeResult('filter', {
    n: N,
    dim: DIM,
    k: K,
    queries: SINGLE,
    batch: BATCH,
    efSearch: EF_SEARCH,
    machine: machine(),
    pgvector: { loadS: pg.loadS, hnswBuildS: pg.buildS },
    hvs: hvsRows,
    pgvector_alone: pg.peer,
    hypersync_nvm_path: pg.nvmPath,
  });
  console.log(`\nwritten: ${path}`);
}

await main();
