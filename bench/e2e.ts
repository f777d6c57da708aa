/**
 * End-to-end benchmark of HyperSync on the real PostgreSQL (DATABASE_URL_TEST, default the local
 * `test` server) in a scratch database, CPU kernels, d = 384, cosine, clustered data:
 *
 * 1. store throughput: batches of 1,000 with content and metadata, persisted (one PostgreSQL
 *    transaction per batch, binary COPY, then the HVS);
 * 2. query throughput at N = 100k, B = 64, k = 10 with content and metadata, against the HVS
 *    searched alone in the same process (interleaved runs), with the cache warm and without a cache;
 * 3. open-to-ready at 1M vectors: from the HVS snapshot, and rebuilt from the NVM.
 *
 *   npm run bench:e2e
 *   BENCH_E2E_TOTAL=200000 npm run bench:e2e     # smaller open-to-ready run
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HyperSync } from '../src/integration/hyper-sync.js';
import type { HyperSyncOptions } from '../src/integration/options.js';
import type { StoreItem } from '../src/integration/types.js';
import { clusteredVector } from './lib/data.js';
import { withScratchDb } from './lib/scratch-db.js';
import { machine, median, printTable, writeResult } from './lib/stats.js';

const DIM = 384;
const N_QUERY = Number(process.env.BENCH_E2E_N ?? 100_000);
const N_TOTAL = Number(process.env.BENCH_E2E_TOTAL ?? 1_000_000);
const STORE_BATCH = 1000;
const LOAD_BATCH = 5000;
const B = 64;
const K = 10;
const REPS = 9;
const OPEN_RUNS = Number(process.env.BENCH_E2E_OPEN_RUNS ?? 3);

function items(from: number, count: number): StoreItem[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `doc-${from + i}`,
    vector: clusteredVector(DIM),
    content: `document ${from + i}: a short passage of text stored with its vector`,
    metadata: { n: from + i, group: (from + i) % 17 },
  }));
}

async function timeIt<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [performance.now() - t0, r];
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'hs-bench-e2e-'));
  try {
    const result = await withScratchDb((url) => run(url, dataDir));
    console.log(`\nwritten ${await writeResult('e2e', result)}`);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function run(url: string, dataDir: string): Promise<Record<string, unknown>> {
  const base: HyperSyncOptions = { dataDir, databaseUrl: url, device: 'cpu' };
  const hs = await HyperSync.open(base);
  await hs.createCollection('e2e', { dim: DIM, metric: 'cosine' });

  // 1. Store throughput, batches of 1,000: the rate over windows of 10 batches.
  const windows: number[] = [];
  for (let done = 0; done < N_QUERY;) {
    const batches = Math.min(10, Math.ceil((N_QUERY - done) / STORE_BATCH));
    const prepared = Array.from({ length: batches }, (_, b) => items(done + b * STORE_BATCH, STORE_BATCH));
    const [ms] = await timeIt(async () => {
      for (const batch of prepared) await hs.store('e2e', batch);
    });
    windows.push((batches * STORE_BATCH) / (ms / 1000));
    done += batches * STORE_BATCH;
  }
  const storeRate = median(windows);
  console.log(
    `store: ${N_QUERY} vectors in batches of ${STORE_BATCH}, median ${storeRate.toFixed(0)} vectors/s over ${windows.length} windows`,
  );

  // 2. Query throughput: the HVS alone vs HyperSync with content (warm cache) and without a cache.
  await hs.ready('e2e');
  const h = hs.hvs.collection('e2e');
  await h.flush();
  const ncDir = await mkdtemp(join(tmpdir(), 'hs-bench-e2e-nc-'));
  const noCache = await HyperSync.open({ ...base, dataDir: ncDir, cacheMb: 0 });
  await noCache.ready('e2e');
  const queries = Array.from({ length: B }, () => clusteredVector(DIM));
  const include = ['content', 'metadata'] as const;
  for (let w = 0; w < 2; w++) {
    await h.search(queries, K);
    await hs.query('e2e', queries, K, { include: [...include] });
    await noCache.query('e2e', queries, K, { include: [...include] });
  }
  const t = { hvs: [] as number[], warm: [] as number[], cold: [] as number[] };
  for (let r = 0; r < REPS; r++) {
    t.hvs.push((await timeIt(() => h.search(queries, K)))[0]);
    t.warm.push((await timeIt(() => hs.query('e2e', queries, K, { include: [...include] })))[0]);
    t.cold.push((await timeIt(() => noCache.query('e2e', queries, K, { include: [...include] })))[0]);
  }
  const qps = (ms: number[]): number => B / (median(ms) / 1000);
  const sample = await hs.query('e2e', queries.slice(0, 1), K, { include: [...include] });
  if (sample[0].length !== K || typeof sample[0][0].content !== 'string') throw new Error('query answered without content');
  await noCache.close();
  await rm(ncDir, { recursive: true, force: true });
  const query = {
    hvsOnly: { msPerBatch: median(t.hvs), qps: qps(t.hvs) },
    withContentWarmCache: { msPerBatch: median(t.warm), qps: qps(t.warm), ratio: median(t.hvs) / median(t.warm) },
    withContentNoCache: { msPerBatch: median(t.cold), qps: qps(t.cold), ratio: median(t.hvs) / median(t.cold) },
    cache: hs.metrics().cache,
  };

  // 3. Grow to N_TOTAL and time open-to-ready from the snapshot and from the NVM.
  const [loadMs] = await timeIt(async () => {
    for (let done = N_QUERY; done < N_TOTAL; done += LOAD_BATCH) {
      await hs.store('e2e', items(done, Math.min(LOAD_BATCH, N_TOTAL - done)));
      if ((done - N_QUERY) % 100_000 === 0) process.stdout.write(`  loaded ${done}\r`);
    }
  });
  const loadRate = (N_TOTAL - N_QUERY) / (loadMs / 1000);
  console.log(`load: ${N_TOTAL - N_QUERY} more in batches of ${LOAD_BATCH}: ${loadRate.toFixed(0)} vectors/s`);
  await hs.ready('e2e');
  const count = (await hs.stats('e2e')).hvs.count;
  await hs.close();

  const openTimes = async (label: string, before: () => Promise<void>): Promise<number[]> => {
    const times: number[] = [];
    for (let r = 0; r < OPEN_RUNS; r++) {
      await before();
      const t0 = performance.now();
      const x = await HyperSync.open({ ...base, snapshotOnClose: false });
      let from = '';
      x.once('loaded', (_n, info) => (from = info.from));
      await x.ready('e2e');
      times.push(performance.now() - t0);
      const n = (await x.stats('e2e')).hvs.count;
      if (n !== count) throw new Error(`${label}: ${n} vectors after open, expected ${count}`);
      await x.ready(); // the rebuild writes its snapshot after it is ready; let it finish
      await x.close();
      console.log(`  open-to-ready (${label}, loaded from ${from || '?'}): ${(times.at(-1)! / 1000).toFixed(2)} s`);
    }
    return times;
  };
  const fromSnapshot = await openTimes('snapshot', () => Promise.resolve());
  const fromNvm = await openTimes('nvm rebuild', () => rm(join(dataDir, 'hvs'), { recursive: true, force: true }));

  const result = {
    benchmark: 'e2e',
    at: new Date().toISOString(),
    machine: machine(),
    dim: DIM,
    metric: 'cosine',
    device: 'cpu',
    store: { batch: STORE_BATCH, vectors: N_QUERY, windowsPerSecond: windows, medianVectorsPerSecond: storeRate, target: 10_000 },
    query: { n: N_QUERY, batch: B, k: K, reps: REPS, ...query, target: 0.7 },
    load: { vectors: N_TOTAL - N_QUERY, batch: LOAD_BATCH, vectorsPerSecond: loadRate },
    openToReady: {
      vectors: count,
      fromSnapshotMs: fromSnapshot,
      fromSnapshotMedianMs: median(fromSnapshot),
      fromNvmMs: fromNvm,
      fromNvmMedianMs: median(fromNvm),
      targetsMs: { snapshot: 10_000, nvm: 60_000 },
    },
  };
  console.log(`\nHyperSync end to end on PostgreSQL: d = ${DIM}, cosine, CPU (medians)`);
  printTable(
    ['measure', 'value', 'target'],
    [
      ['store, batches of 1,000 (vectors/s)', storeRate.toFixed(0), '≥ 10,000'],
      [`query B=${B} N=${N_QUERY}: HVS alone (q/s)`, query.hvsOnly.qps.toFixed(0), ''],
      [
        '  with content, warm cache (q/s)',
        `${query.withContentWarmCache.qps.toFixed(0)} (${query.withContentWarmCache.ratio.toFixed(2)}×)`,
        '≥ 0.7×',
      ],
      [
        '  with content, no cache (q/s)',
        `${query.withContentNoCache.qps.toFixed(0)} (${query.withContentNoCache.ratio.toFixed(2)}×)`,
        '',
      ],
      [`open-to-ready ${count} from snapshot (s)`, (median(fromSnapshot) / 1000).toFixed(2), '≤ 10'],
      [`open-to-ready ${count} from NVM (s)`, (median(fromNvm) / 1000).toFixed(2), '≤ 60'],
    ],
  );
  return result;
}

await main();
