/**
 * Shared parts of the peers benchmark (bench/peers/main.ts): the data set shape, one result row,
 * exact ground truth, recall@k, and the timing of one system setting at B = 1 and B = 64.
 */
import { median } from '../lib/stats.js';

export const K = 10;
export const BATCH = 64;
/** Queries timed one at a time per repetition, and repetitions (the median q/s is reported). */
export const SINGLE_QUERIES = Number(process.env.BENCH_ANN_SINGLE ?? 200);
export const SINGLE_REPS = 3;

/** One data set: `n` base vectors and `nq` queries (flat, row-major), cosine metric. */
export interface AnnData {
  name: string;
  dim: number;
  n: number;
  base: Float32Array;
  nq: number;
  queries: Float32Array;
  /** Exact top-K base rows per query (`nq × K`). */
  truth: Int32Array;
}

/** One row of the result table: one system at one search setting. */
export interface AnnRow {
  data: string;
  system: string;
  /** The harness's key of the system (`hypersync`, `pgvector`, …), set by the harness. */
  peer?: string;
  /** The line this row belongs to in the charts (default: `system`). */
  series?: string;
  setting: string;
  /** Load + build time in seconds, on the first row of a system (or of a way of running it). */
  buildS?: number;
  /** What `buildS` timed, for the load-time chart (default: `system`). */
  buildLabel?: string;
  qpsB1?: number;
  qpsB64?: number;
  recall?: number;
  p50Ms?: number;
  p99Ms?: number;
  /** Memory of the index in MiB (how it was measured: `memNote`). */
  memMiB?: number;
  memNote?: string;
  /**
   * Peak memory of what ran the system, in MiB, on the first row of a system: for in-process
   * systems the child process's peak RSS less its RSS once the data was loaded (filled in by the
   * harness); for servers their own peak (`peakNote` says which).
   */
  peakMiB?: number;
  peakNote?: string;
  /** Queries in the B = 64 pass (recall is over these): fewer than the data set's for slow settings. */
  queries?: number;
  /** Bytes per vector of the part searched first (hypersync's hot tier), and fp32 for reference. */
  hotBytesPerVector?: number;
  fp32BytesPerVector?: number;
  note?: string;
}

/** Search functions of one system setting: labels are base row numbers. */
export interface Searcher {
  one(q: Float32Array): Promise<ArrayLike<number>> | ArrayLike<number>;
  /** `nq` queries (at most {@link BATCH}) in one call, or issued together. */
  batch(qs: Float32Array, nq: number): Promise<ArrayLike<number>[]> | ArrayLike<number>[];
}

export interface Measured {
  qpsB1?: number;
  qpsB64: number;
  recall: number;
  p50Ms?: number;
  p99Ms?: number;
  queries: number;
}

/** How long one setting may take, and what it skips. */
export interface MeasureOptions {
  /**
   * About how many seconds the setting may take (default {@link SETTING_BUDGET_S}): a slow one
   * (an exact scan in PostgreSQL) times fewer queries, at least 20 one at a time and 128 batched.
   */
  budgetS?: number;
  /** Only B = 64: for a row that differs from another one only in how a batch is issued. */
  skipSingle?: boolean;
}

export const SETTING_BUDGET_S = Number(process.env.BENCH_SETTING_BUDGET_S ?? 45);

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

/** Recall@K of `results` (one list of labels per query) against the exact top-K. */
export function recallAt(truth: Int32Array, results: readonly ArrayLike<number>[]): number {
  let found = 0;
  for (let i = 0; i < results.length; i++) {
    const want = new Set(truth.subarray(i * K, (i + 1) * K));
    const got = results[i];
    for (let j = 0; j < Math.min(K, got.length); j++) if (want.has(got[j])) found++;
  }
  return found / (results.length * K);
}

/**
 * Times one setting: B = 1 as {@link SINGLE_REPS} passes over the first {@link SINGLE_QUERIES}
 * queries, one call each (median q/s of the passes; p50/p99 over every call), then B = 64 over the
 * queries in batches of 64 (q/s of the whole pass; recall@K from this pass). A setting slower than
 * its budget allows times fewer queries (see {@link MeasureOptions}).
 */
export async function measure(data: AnnData, s: Searcher, opts: MeasureOptions = {}): Promise<Measured> {
  const dim = data.dim;
  const budgetMs = (opts.budgetS ?? SETTING_BUDGET_S) * 1000;
  const row = (i: number): Float32Array => data.queries.subarray(i * dim, (i + 1) * dim);
  const out: Partial<Measured> = {};
  if (!opts.skipSingle) {
    const warm = Math.min(10, data.nq);
    const tw = performance.now();
    for (let i = 0; i < warm; i++) await s.one(row(i));
    const perQuery = (performance.now() - tw) / warm;
    const affordable = Math.floor((0.4 * budgetMs) / (SINGLE_REPS * perQuery));
    const single = Math.min(SINGLE_QUERIES, data.nq, Math.max(20, affordable));
    const latencies: number[] = [];
    const qps: number[] = [];
    for (let rep = 0; rep < SINGLE_REPS; rep++) {
      const t0 = performance.now();
      for (let i = 0; i < single; i++) {
        const t = performance.now();
        await s.one(row(i));
        latencies.push(performance.now() - t);
      }
      qps.push(single / ((performance.now() - t0) / 1000));
    }
    Object.assign(out, { qpsB1: median(qps), p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) });
  }
  const first = Math.min(BATCH, data.nq);
  const tw = performance.now();
  await s.batch(data.queries.subarray(0, first * dim), first);
  const perQuery = (performance.now() - tw) / first;
  const affordable = Math.ceil((0.6 * budgetMs) / perQuery / BATCH) * BATCH;
  const nq = Math.min(data.nq, Math.max(2 * BATCH, affordable));
  const results: ArrayLike<number>[] = [];
  const t0 = performance.now();
  for (let off = 0; off < nq; off += BATCH) {
    const nb = Math.min(BATCH, nq - off);
    results.push(...(await s.batch(data.queries.subarray(off * dim, (off + nb) * dim), nb)));
  }
  return {
    ...out,
    qpsB64: nq / ((performance.now() - t0) / 1000),
    recall: recallAt(data.truth, results),
    queries: nq,
  };
}

/** Unit-length copies of `count` rows (zero rows stay zero). */
export function normalized(vectors: Float32Array, count: number, dim: number): Float32Array {
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += vectors[i * dim + j] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) out[i * dim + j] = vectors[i * dim + j] * inv;
  }
  return out;
}

/**
 * Exact top-K by cosine similarity, brute force with float64 accumulation: for each query, every
 * base row's dot product with the unit query over unit base rows, best K kept in a sorted list.
 */
export function bruteForceTruth(
  base: Float32Array,
  n: number,
  queries: Float32Array,
  nq: number,
  dim: number,
  progress?: (done: number) => void,
): Int32Array {
  const unit = normalized(base, n, dim);
  const uq = normalized(queries, nq, dim);
  const truth = new Int32Array(nq * K);
  const q = new Float64Array(dim);
  const bestS = new Float64Array(K);
  const bestI = new Int32Array(K);
  for (let qi = 0; qi < nq; qi++) {
    for (let j = 0; j < dim; j++) q[j] = uq[qi * dim + j];
    bestS.fill(-Infinity);
    bestI.fill(-1);
    for (let i = 0; i < n; i++) {
      let s = 0;
      const o = i * dim;
      for (let j = 0; j < dim; j++) s += q[j] * unit[o + j];
      if (s <= bestS[K - 1]) continue;
      let p = K - 1;
      while (p > 0 && bestS[p - 1] < s) {
        bestS[p] = bestS[p - 1];
        bestI[p] = bestI[p - 1];
        p--;
      }
      bestS[p] = s;
      bestI[p] = i;
    }
    truth.set(bestI, qi * K);
    if (progress && (qi + 1) % 100 === 0) progress(qi + 1);
  }
  return truth;
}

/** Runs `global.gc` twice when node was started with --expose-gc. */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

/** Resident set size in bytes, after a collection when possible. */
export function rss(): number {
  gc();
  return process.memoryUsage().rss;
}

export const mib = (bytes: number): number => bytes / 2 ** 20;

/** Progress and phase lines go to stderr, so that stdout holds only the tables. */
export function log(msg: string): void {
  process.stderr.write(`[peers ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Runs `fn` and returns its result with the elapsed seconds. */
export async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  return [r, (performance.now() - t) / 1000];
}
