import { availableParallelism } from 'node:os';
import type { NativeIvfArrays, NativeIvfIndex, NativeIvfKernel } from '../../../kernels/native-ivf.js';
import type { TopKResult } from '../../../kernels/types.js';
import type { Metric } from '../../core/metric.js';

/** Progress of a training run: `phase` with `done` of `total` steps. */
export interface IvfProgress {
  phase: 'sample' | 'kmeans' | 'assign' | 'encode' | 'calibrate';
  done: number;
  total: number;
}

/** The phases of a training run and the share of the whole (in percent) at which each ends. */
const PHASE_ENDS: Record<IvfProgress['phase'], number> = { sample: 5, kmeans: 60, assign: 80, encode: 90, calibrate: 98 };
const PHASE_STARTS: Record<IvfProgress['phase'], number> = { sample: 0, kmeans: 5, assign: 60, encode: 80, calibrate: 90 };

/** A training run's progress as one percentage (k-means is the long part; calibration ends at 98). */
export function trainingPercent(p: { phase: string; done: number; total: number }): number {
  const phase = p.phase as IvfProgress['phase'];
  const start = PHASE_STARTS[phase] ?? 0;
  const end = PHASE_ENDS[phase] ?? start;
  return Math.floor(start + (p.total > 0 ? ((end - start) * Math.min(p.done, p.total)) / p.total : 0));
}

/** How an IVF index is trained; every field has a default chosen from the data. */
export interface IvfBuildOptions {
  /** Lists (default ≈ 4·√rows, at least 1, at most rows / 16). */
  nlist?: number;
  /** Lloyd iterations of k-means on the sample (default 10). */
  iterations?: number;
  /** Rows k-means trains on (default min(rows, max(64·nlist, 20,000), 131,072)). */
  sampleRows?: number;
  /**
   * Rows (flagged 1) k-means does not train on: the rows calibration measures recall with, so
   * that they are as new to the centroids as a query is.
   */
  heldOut?: Uint8Array;
  /** Seed of the sample and the initial centroids (default 1). */
  seed?: number;
  /** Threads of the native kernel (default: the core count, at most 8). */
  threads?: number;
  onProgress?: (p: IvfProgress) => void;
  /** Checked between steps: training stops with `AbortError` once it says true. */
  cancelled?: () => boolean;
  /**
   * Places the rows in the lists of an existing index instead of training new ones: its
   * centroids and codes' range are kept; `labels[r]` is row r's list, or −1 for a row to assign.
   */
  reuse?: { from: IvfIndex; labels: Int32Array };
}

/** Native threads a kernel call uses by default. */
export function defaultThreads(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

/** The score the native kernel ranks by: the dot product (cosine, ip) or the L2 kernel score. */
export function scoreOf(metric: Metric): 0 | 1 {
  return metric === 'l2' ? 1 : 0;
}

/** Default number of lists for `rows` rows: ≈ 4·√rows, with lists of 16 rows or more. */
export function defaultNlist(rows: number): number {
  return Math.max(1, Math.min(Math.round(4 * Math.sqrt(rows)), Math.floor(rows / 16)));
}

/**
 * An inverted-file index over `rows` vectors: `nlist` k-means centroids, each entry in the list
 * of its nearest centroid, held as int8 codes (the hot tier: 1 byte per dimension) beside the
 * fp32 vectors in host memory for exact rescoring. Entries are numbered in list order;
 * `order[e]` is the input row of entry `e`. Deletes set an entry's bias to −Infinity.
 */
export class IvfIndex {
  private readonly native: NativeIvfIndex;
  private _deleted = 0;

  constructor(
    private readonly kernel: NativeIvfKernel,
    readonly metric: Metric,
    readonly arrays: NativeIvfArrays,
    /** `rows` input row per entry. */
    readonly order: Int32Array,
  ) {
    this.native = new kernel.IvfIndex(arrays);
    for (const b of arrays.bias) if (b !== 0) this._deleted++;
  }

  get rows(): number {
    return this.arrays.rows;
  }

  get nlist(): number {
    return this.arrays.nlist;
  }

  get dim(): number {
    return this.arrays.dim;
  }

  get deleted(): number {
    return this._deleted;
  }

  isLive(entry: number): boolean {
    return entry >= 0 && entry < this.arrays.rows && this.arrays.bias[entry] === 0;
  }

  delete(entry: number): void {
    if (!this.isLive(entry)) return;
    this.arrays.bias[entry] = -Infinity;
    this._deleted++;
  }

  /** Entry `e`'s fp32 vector (a view). */
  vector(entry: number): Float32Array {
    const d = this.arrays.dim;
    return this.arrays.vectors.subarray(entry * d, (entry + 1) * d);
  }

  /**
   * Approximate top-k: the `nprobe` lists nearest each query are scanned by their int8 codes and
   * the best `candidates` entries rescored exactly (scores are the kernel's, exact). Entries
   * deleted, or −Infinity in `mask`, are never returned.
   */
  search(
    queries: Float32Array,
    batch: number,
    k: number,
    nprobe: number,
    candidates: number,
    mask?: Float32Array,
    threads = defaultThreads(),
  ): Promise<TopKResult> {
    return this.native
      .search(queries, batch, k, Math.min(nprobe, this.nlist), Math.max(candidates, k), threads, mask)
      .then((r) => ({ batch, k, ...r }));
  }

  /** Exact top-k over every live entry (fp32, the same scores as {@link search}'s rescoring). */
  exact(queries: Float32Array, batch: number, k: number, mask?: Float32Array, threads = defaultThreads()): Promise<TopKResult> {
    return this.native.exact(queries, batch, k, threads, mask).then((r) => ({ batch, k, ...r }));
  }

  /** Bytes of the hot tier: codes, centroids and list offsets. */
  hotBytes(): number {
    const a = this.arrays;
    return a.codes.byteLength + a.centroids.byteLength + a.offsets.byteLength + a.blocks.byteLength + this.native.nativeBytes;
  }

  /** Bytes of host memory: the fp32 vectors for rescoring, the bias and the order. */
  hostBytes(): number {
    const a = this.arrays;
    return a.vectors.byteLength + a.bias.byteLength + this.order.byteLength + a.scale.byteLength * 2;
  }

  /**
   * Trains an index over `rows × dim` vectors (normalised already for cosine): k-means on a
   * sample, every row assigned to its nearest centroid, codes per dimension from the sample's
   * range. Runs on the native kernel's threads; the calling thread only waits.
   */
  static async build(
    kernel: NativeIvfKernel,
    vectors: Float32Array,
    rows: number,
    dim: number,
    metric: Metric,
    opts: IvfBuildOptions = {},
  ): Promise<IvfIndex> {
    const threads = opts.threads ?? defaultThreads();
    const reuse = opts.reuse;
    const nlist = reuse ? reuse.from.nlist : Math.max(1, Math.min(opts.nlist ?? defaultNlist(rows), rows));
    const score = scoreOf(metric);
    const report = (phase: IvfProgress['phase'], done: number, total: number): void => {
      if (opts.cancelled?.()) throw abortError();
      opts.onProgress?.({ phase, done, total });
    };
    let centroids: Float32Array;
    let range: { scale: Float32Array; offset: Float32Array };
    const labels = reuse ? reuse.labels.slice() : new Int32Array(rows).fill(-1);
    if (reuse) {
      centroids = reuse.from.arrays.centroids.slice();
      range = { scale: reuse.from.arrays.scale.slice(), offset: reuse.from.arrays.offset.slice() };
    } else {
      const trained = await trainCentroids(kernel, vectors, rows, dim, nlist, score, threads, opts, report);
      centroids = trained.centroids;
      range = trained.range;
    }

    // Rows without a list yet go to their nearest centroid, in chunks so that progress and
    // cancellation are heard. Runs of rows already placed are skipped.
    const chunk = 65_536;
    const pending = labels.reduce((n, l) => n + (l < 0 ? 1 : 0), 0);
    let placed = 0;
    for (let start = 0; start < rows;) {
      while (start < rows && labels[start] >= 0) start++;
      let end = start;
      while (end < rows && end - start < chunk && labels[end] < 0) end++;
      if (end === start) break;
      await kernel.assign(
        vectors.subarray(start * dim, end * dim),
        end - start,
        dim,
        centroids,
        nlist,
        score,
        threads,
        labels.subarray(start, end),
        range.scale,
        range.offset,
      );
      placed += end - start;
      report('assign', placed, pending);
      start = end;
    }
    const offsets = new Int32Array(nlist + 1);
    for (const l of labels) offsets[l + 1]++;
    for (let l = 0; l < nlist; l++) offsets[l + 1] += offsets[l];
    const blocks = new Int32Array(nlist + 1);
    for (let l = 0; l < nlist; l++) blocks[l + 1] = blocks[l] + Math.ceil((offsets[l + 1] - offsets[l]) / 16);
    const order = new Int32Array(rows);
    const fill = offsets.slice(0, nlist);
    for (let r = 0; r < rows; r++) order[fill[labels[r]]++] = r;
    const listed = new Float32Array(rows * dim);
    for (let e = 0; e < rows; e++) listed.set(vectors.subarray(order[e] * dim, (order[e] + 1) * dim), e * dim);

    const { scale, offset } = range;
    const codes = new Uint8Array(blocks[nlist] * Math.ceil(dim / 4) * 4 * 16);
    await kernel.encode(listed, rows, dim, offsets, blocks, nlist, scale, offset, threads, codes);
    report('encode', 1, 1);
    const arrays: NativeIvfArrays = {
      dim,
      nlist,
      rows,
      score,
      centroids,
      offsets,
      blocks,
      vectors: listed,
      codes,
      scale,
      offset,
      bias: new Float32Array(rows),
    };
    return new IvfIndex(kernel, metric, arrays, order);
  }
}

/** k-means centroids on a sample of the rows, and the codes' range from the same sample. */
async function trainCentroids(
  kernel: NativeIvfKernel,
  vectors: Float32Array,
  rows: number,
  dim: number,
  nlist: number,
  score: 0 | 1,
  threads: number,
  opts: IvfBuildOptions,
  report: (phase: IvfProgress['phase'], done: number, total: number) => void,
): Promise<{ centroids: Float32Array; range: { scale: Float32Array; offset: Float32Array } }> {
  const iterations = opts.iterations ?? 10;
  // The rows k-means may train on: all but the held-out ones (while enough remain to seed every list).
  const held = opts.heldOut;
  let eligible: Int32Array | undefined;
  if (held) {
    const kept: number[] = [];
    for (let r = 0; r < rows; r++) if (held[r] !== 1) kept.push(r);
    if (kept.length >= nlist) eligible = Int32Array.from(kept);
  }
  const pool = eligible ? eligible.length : rows;
  const sampleRows = Math.min(pool, Math.max(nlist, opts.sampleRows ?? Math.min(Math.max(64 * nlist, 20_000), 131_072)));
  const seed = opts.seed ?? 1;
  const drawn = samplePicks(pool, sampleRows, mulberry32(seed));
  const picks = eligible ? drawn.map((i) => eligible[i]) : drawn;
  const sample = new Float32Array(sampleRows * dim);
  picks.forEach((row, i) => sample.set(vectors.subarray(row * dim, (row + 1) * dim), i * dim));
  report('sample', 1, 1);
  // The first `nlist` sample rows (a random choice already) seed the centroids.
  const centroids = sample.slice(0, nlist * dim);
  const sampleLabels = new Int32Array(sampleRows).fill(-1);
  // Rows meet centroids through int8 codes of the sample's range (the lists' codes use it too).
  const range = codeRange(sample, sampleRows, dim);
  for (let it = 0; it < iterations; it++) {
    const moved = await kernel.lloydStep(
      sample,
      sampleRows,
      dim,
      centroids,
      nlist,
      score,
      seed + it,
      threads,
      sampleLabels,
      range.scale,
      range.offset,
    );
    report('kmeans', it + 1, iterations);
    if (it > 0 && moved === 0) break;
  }
  return { centroids, range };
}

/**
 * Per-dimension code range from the sample: its min and max, widened by 1% so that rows beyond
 * the sample clamp rarely; a constant dimension gets a unit step.
 */
function codeRange(sample: Float32Array, n: number, dim: number): { scale: Float32Array; offset: Float32Array } {
  const lo = new Float32Array(dim).fill(Infinity);
  const hi = new Float32Array(dim).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < dim; d++) {
      const v = sample[i * dim + d];
      if (v < lo[d]) lo[d] = v;
      if (v > hi[d]) hi[d] = v;
    }
  }
  const scale = new Float32Array(dim);
  const offset = new Float32Array(dim);
  for (let d = 0; d < dim; d++) {
    const pad = (hi[d] - lo[d]) * 0.01;
    const span = hi[d] - lo[d] + 2 * pad;
    offset[d] = lo[d] - pad;
    scale[d] = span > 0 ? span / 255 : 1;
  }
  return { scale, offset };
}

/** `count` distinct rows of `[0, rows)` in random order (a partial Fisher–Yates shuffle). */
export function samplePicks(rows: number, count: number, rng: () => number): Int32Array {
  const perm = new Int32Array(rows);
  for (let i = 0; i < rows; i++) perm[i] = i;
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rng() * (rows - i));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm.slice(0, count);
}

/** A small seeded PRNG (mulberry32): the same seed trains the same index. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function abortError(): Error {
  const e = new Error('IVF training cancelled');
  e.name = 'AbortError';
  return e;
}
