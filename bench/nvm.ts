/**
 * NVM benchmark on the real PostgreSQL (DATABASE_URL_TEST, default the local `test` server) in a
 * scratch database: bulk ingest by binary COPY and by batched INSERT, streaming every vector
 * back, and pgvector search — exact and HNSW — with latency and recall@10 against the exact
 * answer. These are the peer-baseline figures later benchmarks compare with.
 *
 *   npm run bench:nvm                   # N = 100,000, d = 384
 *   BENCH_NVM_N=20000 npm run bench:nvm
 */
import { SqlNvmStore } from '../src/nvm/sql-nvm-store.js';
import { clusteredVector } from './lib/data.js';
import { withScratchDb } from './lib/scratch-db.js';
import { machine, median, printTable, writeResult } from './lib/stats.js';

const N = Number(process.env.BENCH_NVM_N ?? 100_000);
const DIM = 384;
const K = 10;
const QUERIES = 20;

async function main(): Promise<void> {
  const vectors = Array.from({ length: N }, () => clusteredVector(DIM));
  const blocks = vectors.map((v, i) => ({ id: `b${i}`, vectors: [v] }));
  const queries = Array.from({ length: QUERIES }, () => clusteredVector(DIM));
  const result = await withScratchDb(async (url) => {
    const store = await SqlNvmStore.open({ databaseUrl: url });
    try {
      await store.createCollection('copy', { dim: DIM, metric: 'cosine' });
      await store.createCollection('insert', { dim: DIM, metric: 'cosine' });
      // COPY: batches of 5,000 blocks (binary COPY from 256 vectors on).
      let t = performance.now();
      for (let i = 0; i < N; i += 5000) await store.writeBlocks('copy', blocks.slice(i, i + 5000));
      const copyRate = N / ((performance.now() - t) / 1000);
      // INSERT: batches of 200 blocks (below the COPY threshold).
      t = performance.now();
      for (let i = 0; i < N; i += 200) await store.writeBlocks('insert', blocks.slice(i, i + 200));
      const insertRate = N / ((performance.now() - t) / 1000);
      // Stream everything back.
      t = performance.now();
      let streamed = 0;
      for await (const page of store.streamVectors('copy')) streamed += page.ids.length;
      const streamRate = streamed / ((performance.now() - t) / 1000);

      const exactTimes: number[] = [];
      const exact = [];
      for (const q of queries) {
        const s = performance.now();
        exact.push((await store.search('copy', [q], K))[0]);
        exactTimes.push(performance.now() - s);
      }
      t = performance.now();
      await store.createHnswIndex('copy', { m: 16, efConstruction: 64 });
      const hnswBuildS = (performance.now() - t) / 1000;
      const hnsw: Record<number, { ms: number; recall: number }> = {};
      for (const ef of [40, 100, 200]) {
        const times: number[] = [];
        let found = 0;
        for (const [qi, q] of queries.entries()) {
          const s = performance.now();
          const hits = (await store.search('copy', [q], K, { mode: 'hnsw', efSearch: ef }))[0];
          times.push(performance.now() - s);
          const truth = new Set(exact[qi].map((h) => h.id));
          found += hits.filter((h) => truth.has(h.id)).length;
        }
        hnsw[ef] = { ms: median(times), recall: found / (QUERIES * K) };
      }
      return { copyRate, insertRate, streamRate, streamed, exactMs: median(exactTimes), hnswBuildS, hnsw };
    } finally {
      await store.close();
    }
  });

  console.log(`NVM on PostgreSQL + pgvector: N = ${N}, d = ${DIM}, k = ${K}, ${QUERIES} queries (medians)`);
  printTable(
    ['measure', 'value'],
    [
      ['ingest by binary COPY (vectors/s)', result.copyRate.toFixed(0)],
      ['ingest by batched INSERT (vectors/s)', result.insertRate.toFixed(0)],
      ['stream all vectors back (vectors/s)', result.streamRate.toFixed(0)],
      ['exact search latency (ms/query)', result.exactMs.toFixed(1)],
      ['HNSW build m=16 ef_construction=64 (s)', result.hnswBuildS.toFixed(1)],
      ...Object.entries(result.hnsw).flatMap(([ef, r]) => [
        [`HNSW ef_search=${ef} latency (ms/query)`, r.ms.toFixed(2)],
        [`HNSW ef_search=${ef} recall@${K}`, r.recall.toFixed(3)],
      ]),
    ],
  );
  const path = await writeResult('nvm', {
    benchmark: 'nvm',
    date: new Date().toISOString(),
    machine: machine(),
    n: N,
    dim: DIM,
    k: K,
    queries: QUERIES,
    ...result,
  });
  console.log(`\nwrote ${path}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
