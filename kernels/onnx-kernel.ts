import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { crc32 } from 'node:zlib';
import { ClosedError, SnapshotCorruptError } from '../src/core/errors.js';
import type { DeviceInfo } from './device.js';
import { buildDynamicGraph, buildSealedGraph, gemmAlpha } from './graphs.js';
import type { IndexMask, IndexSearch, IndexSource, ResidentIndex, SearchKernel } from './search-kernel.js';
import type { TopKResult } from './types.js';
import type { Metric } from '../src/core/metric.js';

/** Options of {@link OnnxSearchKernel}. */
export interface OnnxSearchKernelOptions {
  /** Threads each session uses for one operator; default: the machine's available parallelism. */
  intraOpThreads?: number;
}

/**
 * Every session owns an intra-op thread pool whose threads spin after each run by default; with
 * one session per segment the spinning pools of the segments just searched steal the cores from
 * the next one (measured: 2× slower batches). Idle threads block instead.
 */
export const NO_SPIN = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };

function int64Scalar(v: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.of(BigInt(v)), [1]);
}

/** Copies onnxruntime's outputs into the kernel result shape (int64 rows become int32). */
function toTopK(out: ort.InferenceSession.ReturnType, batch: number): TopKResult {
  const scoresT = out.top_scores;
  const rowsT = out.top_rows;
  if (!scoresT || !rowsT) throw new Error('kernel graph returned no top_scores/top_rows');
  const scores = scoresT.data as Float32Array;
  const rows64 = rowsT.data as BigInt64Array;
  const rows = new Int32Array(rows64.length);
  for (let i = 0; i < rows64.length; i++) rows[i] = Number(rows64[i]);
  const k = batch === 0 ? 0 : scores.length / batch;
  // A masked slot (−Infinity) is not a hit, whatever row TopK left there.
  for (let i = 0; i < scores.length; i++) if (scores[i] === -Infinity) rows[i] = -1;
  return { batch, k, scores, rows };
}

class OnnxResidentIndex implements ResidentIndex {
  private released = false;

  constructor(
    private readonly session: ort.InferenceSession,
    readonly rows: number,
    readonly dim: number,
    readonly metric: Metric,
  ) {}

  ready(): Promise<void> {
    return Promise.resolve();
  }

  get deviceBytes(): number {
    return this.rows * this.dim * 4 + (this.metric === 'l2' ? this.rows * 4 : 0);
  }

  async search(queries: Float32Array, batch: number, k: number, { mask }: IndexMask): Promise<TopKResult> {
    if (this.released) throw new ClosedError('segment index');
    const out = await this.session.run({
      queries: new ort.Tensor('float32', queries, [batch, this.dim]),
      k: int64Scalar(Math.min(k, this.rows)),
      mask: new ort.Tensor('float32', mask.subarray(0, this.rows), [this.rows]),
    });
    return toTopK(out, batch);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

/**
 * {@link SearchKernel} on onnxruntime-node: a sealed segment becomes a session whose initializer
 * holds its vectors (resident on the device, pre-packed for the Gemm on CPU); the growing
 * segment runs through one shared session per (dimension, metric family) with its vectors as an
 * input.
 */
export class OnnxSearchKernel implements SearchKernel {
  readonly readsFiles = false;
  private readonly transient = new Map<string, Promise<ort.InferenceSession>>();
  private readonly sessionOptions: ort.InferenceSession.SessionOptions;
  private closing: Promise<void> | undefined;

  constructor(
    readonly deviceInfo: DeviceInfo,
    opts: OnnxSearchKernelOptions = {},
  ) {
    const intraOpThreads = opts.intraOpThreads ?? availableParallelism();
    if (!Number.isInteger(intraOpThreads) || intraOpThreads < 1) {
      throw new RangeError(`intraOpThreads must be a positive integer, got ${intraOpThreads}`);
    }
    this.sessionOptions = {
      executionProviders: deviceInfo.executionProviders,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      intraOpNumThreads: intraOpThreads,
      // One arena per session would keep each segment's largest score matrix alive for good.
      enableCpuMemArena: false,
      logSeverityLevel: 3,
      extra: NO_SPIN,
    };
  }

  async createIndex(
    vectors: Float32Array,
    rows: number,
    dim: number,
    metric: Metric,
    source?: IndexSource,
  ): Promise<ResidentIndex> {
    this.assertOpen();
    if (rows < 1) throw new RangeError('a resident index needs at least one row');
    if (source?.crc32 !== undefined) {
      const bytes = new Uint8Array(vectors.buffer, vectors.byteOffset, rows * dim * 4);
      if (crc32(bytes) !== source.crc32) throw new SnapshotCorruptError(`${source.path} fails its CRC-32 check`);
    }
    const { model, externalData } = buildSealedGraph(vectors, rows, dim, metric);
    const session = await ort.InferenceSession.create(model, { ...this.sessionOptions, externalData });
    return new OnnxResidentIndex(session, rows, dim, metric);
  }

  async searchTransient(
    vectors: Float32Array,
    rows: number,
    dim: number,
    metric: Metric,
    bias: Float32Array,
    queries: Float32Array,
    batch: number,
    k: number,
  ): Promise<TopKResult> {
    this.assertOpen();
    const alpha = gemmAlpha(metric);
    const key = `${dim}:${alpha}`;
    let pending = this.transient.get(key);
    if (!pending) {
      pending = ort.InferenceSession.create(buildDynamicGraph(dim, alpha), this.sessionOptions);
      this.transient.set(key, pending);
      pending.catch(() => this.transient.delete(key));
    }
    const session = await pending;
    const out = await session.run({
      queries: new ort.Tensor('float32', queries, [batch, dim]),
      vectors: new ort.Tensor('float32', vectors.subarray(0, rows * dim), [rows, dim]),
      bias: new ort.Tensor('float32', bias.subarray(0, rows), [rows]),
      k: int64Scalar(Math.min(k, rows)),
    });
    return toTopK(out, batch);
  }

  async searchIndexes(items: readonly IndexSearch[], queries: Float32Array, batch: number, k: number): Promise<TopKResult[]> {
    const out: TopKResult[] = [];
    for (const it of items) out.push(await it.index.search(queries, batch, k, it));
    return out;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const sessions = await Promise.allSettled(this.transient.values());
      this.transient.clear();
      for (const s of sessions) if (s.status === 'fulfilled') await s.value.release();
    })();
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closing) throw new ClosedError('search kernel');
  }
}
