/**
 * HVS kernel benchmark: batched search through the HVS (segments, mask, merge) against a raw
 * Gemm+TopK onnxruntime session over the same vectors, measured in the same process; insert rate
 * with sealing; steady-state and peak memory.
 *
 *   npm run bench:kernels                      # N = 10k, 100k, 1M; B = 1, 16, 64, 256
 *   BENCH_N=100000 BENCH_RUNS=7 npm run bench:kernels
 *
 * Each N runs in a child process of its own so that memory figures do not mix. BENCH_METRIC
 * (cosine | ip | l2) and BENCH_SEAL (seal threshold) change what is measured.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { resolveDevice } from '../kernels/device.js';
import { buildRawGemmTopKGraph } from '../kernels/graphs.js';
import { NO_SPIN } from '../kernels/onnx-kernel.js';
import type { Metric } from '../src/core/metric.js';
import { Hvs } from '../src/hvs/hvs.js';
import { machine, median, printTable, writeResult } from './lib/stats.js';

const DIM = 384;
const K = 10;
const BATCHES = [1, 16, 64, 256];
const RUNS = Math.max(5, Number(process.env.BENCH_RUNS ?? 9));
const METRIC = (process.env.BENCH_METRIC ?? 'cosine') as Metric;

interface SearchRow {
  batch: number;
  hvsMs: number;
  baselineMs: number;
  hvsQps: number;
  baselineQps: number;
  hvsGflops: number;
  baselineGflops: number;
  ratio: number;
}

interface ChildResult {
  n: number;
  insertRuns: number[];
  insertVectorsPerSec: number;
  rawBytes: number;
  hvsRssBytes: number;
  memoryRatio: number;
  accountedHostBytes: number;
  accountedDeviceBytes: number;
  peakRssBytes: number;
  segments: number;
  search: SearchRow[];
}

function randomFill(a: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

async function child(n: number): Promise<ChildResult> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-kernels-'));
  const device = await resolveDevice((process.env.HYPERSYNC_DEVICE as 'auto' | 'cpu' | 'cuda' | undefined) ?? 'auto');
  const hvs = await Hvs.open({
    dataDir,
    device: device.device,
    ...(process.env.BENCH_SEAL ? { sealThreshold: Number(process.env.BENCH_SEAL) } : {}),
  });
  const vectors = randomFill(new Float32Array(n * DIM));
  const ids = Array.from({ length: n }, (_, i) => `vec-${i}`);
  const insertRuns: number[] = [];
  // Each 1M run takes seconds and re-touches gigabytes: five are enough for a median there.
  const runsForInsert = n >= 1_000_000 ? 5 : RUNS;
  const chunk = 10_000;
  // Memory is measured around the first run only: memory freed by a dropped collection stays in
  // the allocator's heap and would hide part of the next run's growth.
  gc();
  const rssBefore = process.memoryUsage().rss;
  let hvsRssBytes = 0;
  for (let run = 0; run < runsForInsert; run++) {
    if (hvs.has('bench')) await hvs.dropCollection('bench');
    const c = hvs.createCollection('bench', { dim: DIM, metric: METRIC });
    const t0 = performance.now();
    for (let off = 0; off < n; off += chunk) {
      const end = Math.min(n, off + chunk);
      await c.upsert(ids.slice(off, end), vectors.subarray(off * DIM, end * DIM));
    }
    await c.flush();
    insertRuns.push(n / ((performance.now() - t0) / 1000));
    if (run === 0) {
      // Steady state: the kernel worker frees its read buffer a second after the last seal.
      await new Promise((r) => setTimeout(r, 1500));
      gc();
      hvsRssBytes = process.memoryUsage().rss - rssBefore;
    }
  }
  const c = hvs.collection('bench');
  const stats = c.stats();

  const raw = buildRawGemmTopKGraph(vectors, n, DIM);
  const baseline = await ort.InferenceSession.create(raw.model, {
    externalData: raw.externalData,
    executionProviders: device.executionProviders,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: false,
    // The same thread-pool setting as the HVS sessions, so neither side spins against the other.
    extra: NO_SPIN,
  });
  const kTensor = new ort.Tensor('int64', BigInt64Array.of(BigInt(K)), [1]);
  const search: SearchRow[] = [];
  for (const batch of BATCHES) {
    const queries = randomFill(new Float32Array(batch * DIM));
    const feeds = { queries: new ort.Tensor('float32', queries, [batch, DIM]), k: kTensor };
    await c.search(queries, K);
    await baseline.run(feeds);
    const hvsTimes: number[] = [];
    const baseTimes: number[] = [];
    // Interleaved, so that noise from other tenants hits both sides alike.
    for (let r = 0; r < RUNS; r++) {
      let t = performance.now();
      await c.search(queries, K);
      hvsTimes.push(performance.now() - t);
      t = performance.now();
      await baseline.run(feeds);
      baseTimes.push(performance.now() - t);
    }
    const hvsMs = median(hvsTimes);
    const baselineMs = median(baseTimes);
    const flop = 2 * n * DIM * batch;
    search.push({
      batch,
      hvsMs,
      baselineMs,
      hvsQps: batch / (hvsMs / 1000),
      baselineQps: batch / (baselineMs / 1000),
      hvsGflops: flop / (hvsMs / 1000) / 1e9,
      baselineGflops: flop / (baselineMs / 1000) / 1e9,
      ratio: baselineMs / hvsMs,
    });
  }
  await baseline.release();
  await hvs.close();
  await rm(dataDir, { recursive: true, force: true });
  return {
    n,
    insertRuns,
    insertVectorsPerSec: median(insertRuns),
    rawBytes: n * DIM * 4,
    hvsRssBytes,
    memoryRatio: hvsRssBytes / (n * DIM * 4),
    accountedHostBytes: stats.hostBytes,
    accountedDeviceBytes: stats.deviceBytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    segments: stats.sealedSegments,
    search,
  };
}

function runChild(n: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', import.meta.filename, '--child', String(n)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`benchmark child for N=${n} exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as ChildResult);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

const mb = (b: number): string => (b / 2 ** 20).toFixed(0);

async function main(): Promise<void> {
  const ns = (process.env.BENCH_N ?? '10000,100000,1000000').split(',').map(Number);
  const device = await resolveDevice((process.env.HYPERSYNC_DEVICE as 'auto' | 'cpu' | 'cuda' | undefined) ?? 'auto');
  console.log(`device: ${device.device} (${device.reason}); d=${DIM}, k=${K}, metric=${METRIC}, median of ${RUNS} runs`);
  const results: ChildResult[] = [];
  for (const n of ns) {
    console.error(`N=${n} ...`);
    results.push(await runChild(n));
  }
  console.log('\nBatched search: HVS vs raw Gemm+TopK baseline (same vectors, same process)');
  printTable(
    ['N', 'B', 'HVS ms', 'HVS q/s', 'HVS GFLOP/s', 'raw ms', 'raw q/s', 'raw GFLOP/s', 'HVS/raw'],
    results.flatMap((r) =>
      r.search.map((s) => [
        r.n,
        s.batch,
        s.hvsMs.toFixed(2),
        s.hvsQps.toFixed(0),
        s.hvsGflops.toFixed(1),
        s.baselineMs.toFixed(2),
        s.baselineQps.toFixed(0),
        s.baselineGflops.toFixed(1),
        s.ratio.toFixed(2),
      ]),
    ),
  );
  console.log('\nInsert (sealing included) and memory');
  printTable(
    ['N', 'insert vec/s', 'segments', 'raw MiB', 'HVS RSS MiB', 'RSS/raw', 'host MiB', 'device MiB', 'peak RSS MiB'],
    results.map((r) => [
      r.n,
      r.insertVectorsPerSec.toFixed(0),
      r.segments,
      mb(r.rawBytes),
      mb(r.hvsRssBytes),
      r.memoryRatio.toFixed(2),
      mb(r.accountedHostBytes),
      mb(r.accountedDeviceBytes),
      mb(r.peakRssBytes),
    ]),
  );
  const path = await writeResult('kernels', {
    benchmark: 'kernels',
    date: new Date().toISOString(),
    machine: machine(),
    device,
    dim: DIM,
    k: K,
    metric: METRIC,
    runs: RUNS,
    results,
  });
  console.log(`\nwrote ${path}`);
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) {
  const n = Number(process.argv[childAt + 1]);
  child(n).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
