import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ClosedError, KernelWorkerError, SnapshotCorruptError } from '../src/core/errors.js';
import type { DeviceInfo } from './device.js';
import type { KernelReply, KernelRequest, KernelWorkerData } from './kernel-worker.js';
import { OnnxSearchKernel, type OnnxSearchKernelOptions } from './onnx-kernel.js';
import type { IndexMask, IndexSearch, IndexSource, ResidentIndex, SearchKernel } from './search-kernel.js';
import { CHECKSUM_ERROR, type TopKResult } from './types.js';
import { type Metric } from '../src/core/metric.js';

/** Options of {@link WorkerSearchKernel}. */
export interface WorkerSearchKernelOptions extends OnnxSearchKernelOptions {
  /**
   * Worker threads holding sealed segments (default: 2, at most the core count). Each builds and
   * searches its own segments, so index builds run in parallel with each other and with writes.
   */
  threads?: number;
}

type Pending = { resolve: (r: TopKResult[] | undefined) => void; reject: (e: Error) => void };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Request = DistributiveOmit<KernelRequest, 'id'>;

/** One worker thread and its outstanding requests. */
class KernelThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Index builds sent and not yet answered: the pool gives new builds to the least busy thread. */
  creates = 0;
  failure: Error | undefined;
  closing = false;

  /** @param onFailure called once when the thread dies or fails. */
  constructor(
    data: KernelWorkerData,
    private readonly onFailure: (thread: KernelThread) => void,
  ) {
    const ts = import.meta.url.endsWith('.ts');
    const entry = new URL(ts ? './kernel-worker.ts' : './kernel-worker.js', import.meta.url);
    // Run from sources (tests, benchmarks), the worker first registers the TypeScript loader.
    this.worker = ts
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`, {
          eval: true,
          workerData: data,
        })
      : new Worker(entry, { workerData: data });
    this.worker.on('message', (reply: KernelReply) => this.onReply(reply));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.closing) this.fail(new KernelWorkerError(`kernel worker exited with code ${code}`));
    });
    // An idle worker must not keep the process alive.
    this.worker.unref();
  }

  request(req: Request, transfer: ArrayBuffer[] = []): Promise<TopKResult[] | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const isCreate = req.op === 'create';
    if (isCreate) this.creates++;
    return new Promise<TopKResult[] | undefined>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ ...req, id }, transfer);
    }).finally(() => {
      if (isCreate) this.creates--;
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    try {
      if (!this.failure) await this.request({ op: 'close' });
    } finally {
      await this.worker.terminate();
    }
  }

  private onReply(reply: KernelReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) p.resolve(reply.result);
    else if (reply.error.name === CHECKSUM_ERROR) p.reject(new SnapshotCorruptError(reply.error.message));
    else p.reject(new KernelWorkerError(`kernel worker: ${reply.error.message}`));
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err instanceof KernelWorkerError ? err : new KernelWorkerError(`kernel worker failed: ${err.message}`);
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    this.onFailure(this);
  }
}

/** One `searchMany` round trip: every index given lives on `thread`. */
async function searchOnThread(
  thread: KernelThread,
  items: readonly (IndexMask & { index: WorkerResidentIndex })[],
  queries: Float32Array,
  batch: number,
  k: number,
): Promise<TopKResult[]> {
  const result = await thread.request({
    op: 'searchMany',
    // A view into a larger buffer would be cloned whole: send just its rows.
    queries: queries.byteLength === queries.buffer.byteLength ? queries : queries.slice(),
    batch,
    k,
    items: items.map((it) => it.index.item(it)),
  });
  if (!result || result.length !== items.length) throw new KernelWorkerError('kernel worker returned no search result');
  return result;
}

class WorkerResidentIndex implements ResidentIndex {
  private released = false;
  private built!: Promise<void>;

  constructor(
    private thread: KernelThread,
    readonly handle: number,
    readonly rows: number,
    readonly dim: number,
    readonly metric: Metric,
    /** The segment's file, if the index was built from one: a replacement thread rebuilds from it. */
    readonly source: IndexSource | undefined,
    built: Promise<unknown>,
  ) {
    this.setBuilt(built);
  }

  private setBuilt(built: Promise<unknown>): void {
    this.built = built.then(() => undefined);
    this.built.catch(() => undefined);
  }

  /** @internal Moves the index to a replacement thread, rebuilding it there from its file. */
  rebuildOn(thread: KernelThread): void {
    if (!this.source) return;
    this.thread = thread;
    const { handle, rows, dim, metric } = this;
    // No CRC check this time: the file was checked when the index was first built.
    this.setBuilt(thread.request({ op: 'create', handle, path: this.source.path, rows, dim, metric }));
  }

  get isReleased(): boolean {
    return this.released;
  }

  get deviceBytes(): number {
    return this.rows * this.dim * 4 + (this.metric === 'l2' ? this.rows * 4 : 0);
  }

  ready(): Promise<void> {
    return this.built;
  }

  async search(queries: Float32Array, batch: number, k: number, rows: IndexMask): Promise<TopKResult> {
    const [result] = await searchOnThread(this.thread, [{ ...rows, index: this }], queries, batch, k);
    return result;
  }

  /** @internal Set by the kernel to forget a released index. */
  onRelease: ((index: WorkerResidentIndex) => void) | undefined;

  /** @internal What a search request says about this index. */
  item({ mask, masked }: IndexMask): { handle: number; masked: number; mask?: Float32Array } {
    if (this.released) throw new ClosedError('segment index');
    // Only a mask that masks rows travels; the worker keeps a zero mask for the others.
    return masked > 0 ? { handle: this.handle, masked, mask: mask.subarray(0, this.rows) } : { handle: this.handle, masked };
  }

  /** @internal */
  get owner(): KernelThread {
    return this.thread;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.onRelease?.(this);
    // A dead worker took its sessions with it: nothing is left to free.
    if (this.thread.failure) return;
    await this.thread.request({ op: 'release', handle: this.handle });
  }
}

/**
 * {@link SearchKernel} whose sealed-segment indexes live in worker threads: building an index
 * (onnxruntime session creation, up to seconds for large segments) and searching sealed segments
 * run beside the main thread, which keeps taking writes and serving requests meanwhile. Segments
 * are spread over the threads, so builds run in parallel and one search uses them all; the
 * growing segment is searched on the main thread at the same time.
 */
export class WorkerSearchKernel implements SearchKernel {
  readonly readsFiles = true;
  readonly opts: Required<Pick<WorkerSearchKernelOptions, 'threads'>>;
  private readonly threads: KernelThread[];
  private readonly local: OnnxSearchKernel;
  private readonly data: KernelWorkerData;
  /** Live indexes, so that a dead thread's can be rebuilt on its replacement. */
  private readonly live = new Map<number, WorkerResidentIndex>();
  private readonly restarts: number[] = [];
  private nextHandle = 1;
  private closing: Promise<void> | undefined;

  constructor(
    readonly deviceInfo: DeviceInfo,
    opts: WorkerSearchKernelOptions = {},
  ) {
    this.opts = {
      threads: Math.min(2, availableParallelism()),
      ...(opts.threads === undefined ? {} : { threads: opts.threads }),
    };
    if (!Number.isInteger(this.opts.threads) || this.opts.threads < 1) {
      throw new RangeError(`threads must be a positive integer, got ${String(opts.threads)}`);
    }
    this.local = new OnnxSearchKernel(deviceInfo, opts);
    const data: KernelWorkerData = {
      deviceInfo,
      ...(opts.intraOpThreads === undefined ? {} : { intraOpThreads: opts.intraOpThreads }),
    };
    this.data = data;
    this.threads = Array.from({ length: this.opts.threads }, () => new KernelThread(data, (t) => this.replace(t)));
  }

  /**
   * A worker thread died (a crash in onnxruntime, say): start another and rebuild the dead one's
   * indexes there from their segment files; searches wait for the rebuild. Requests that were in
   * flight on the dead thread fail with {@link KernelWorkerError}. After three deaths within a
   * minute the thread stays dead and its indexes keep failing, rather than crash-looping.
   */
  private replace(dead: KernelThread): void {
    if (this.closing) return;
    const now = Date.now();
    while (this.restarts.length > 0 && now - this.restarts[0] > 60_000) this.restarts.shift();
    if (this.restarts.length >= 3) return;
    this.restarts.push(now);
    const fresh = new KernelThread(this.data, (t) => this.replace(t));
    this.threads[this.threads.indexOf(dead)] = fresh;
    for (const index of this.live.values()) if (index.owner === dead) index.rebuildOn(fresh);
  }

  createIndex(vectors: Float32Array, rows: number, dim: number, metric: Metric, source?: IndexSource): Promise<ResidentIndex> {
    this.assertOpen();
    if (rows < 1) throw new RangeError('a resident index needs at least one row');
    const thread = this.leastBusy();
    const handle = this.nextHandle++;
    let built: Promise<unknown>;
    if (source) {
      // The worker reads the segment's file itself: no copy on this thread.
      built = thread.request({
        op: 'create',
        handle,
        path: source.path,
        ...(source.crc32 === undefined ? {} : { crc32: source.crc32 }),
        rows,
        dim,
        metric,
      });
    } else {
      // A copy, handed over: the caller keeps its buffer.
      const copy = vectors.slice(0, rows * dim);
      built = thread.request({ op: 'create', handle, vectors: copy, rows, dim, metric }, [copy.buffer]);
    }
    const index = new WorkerResidentIndex(thread, handle, rows, dim, metric, source, built);
    this.live.set(handle, index);
    index.onRelease = (i) => this.live.delete(i.handle);
    return Promise.resolve(index);
  }

  searchTransient(
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
    return this.local.searchTransient(vectors, rows, dim, metric, bias, queries, batch, k);
  }

  async searchIndexes(items: readonly IndexSearch[], queries: Float32Array, batch: number, k: number): Promise<TopKResult[]> {
    this.assertOpen();
    // One round trip per worker thread.
    const byThread = new Map<KernelThread, { at: number[]; items: (IndexMask & { index: WorkerResidentIndex })[] }>();
    items.forEach((it, at) => {
      if (!(it.index instanceof WorkerResidentIndex)) throw new TypeError('index does not belong to this kernel');
      const thread = it.index.owner;
      let group = byThread.get(thread);
      if (!group) byThread.set(thread, (group = { at: [], items: [] }));
      group.at.push(at);
      group.items.push({ ...it, index: it.index });
    });
    const out = new Array<TopKResult>(items.length);
    // One thread after the other: each session already spreads its Gemm over every core, and two
    // threads searching at once only fight over them (measured 20% slower at N = 100k, B = 64).
    for (const [thread, group] of byThread) {
      const results = await searchOnThread(thread, group.items, queries, batch, k);
      results.forEach((r, i) => (out[group.at[i]] = r));
    }
    return out;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = await Promise.allSettled(this.threads.map((t) => t.close()));
      await this.local.close();
      for (const c of closed) if (c.status === 'rejected') throw c.reason;
    })();
    return this.closing;
  }

  private leastBusy(): KernelThread {
    let best = this.threads[0];
    for (const t of this.threads) if (!t.failure && (best.failure || t.creates < best.creates)) best = t;
    if (best.failure) throw best.failure;
    return best;
  }

  private assertOpen(): void {
    if (this.closing) throw new ClosedError('search kernel');
  }
}
