import { crc32 } from 'node:zlib';
import {
  ClosedError,
  DeviceMemoryError,
  DeviceUnavailableError,
  InvalidArgumentError,
  SnapshotCorruptError,
} from '../src/core/errors.js';
import type { Metric } from '../src/core/metric.js';
import { type CudaEngine, type CudaIndexHandle, type CudaTopK, probeCudaDevice } from './cuda-addon.js';
import type { DeviceInfo } from './device.js';
import { gemmAlpha } from './graphs.js';
import type { IndexMask, IndexSearch, IndexSource, ResidentIndex, SearchKernel } from './search-kernel.js';
import type { TopKResult } from './types.js';

/** Options of {@link CudaSearchKernel.open}. */
export interface CudaSearchKernelOptions {
  /**
   * Most device bytes the resident indexes may hold together (the HVS device budget); a segment
   * past it is refused with {@link DeviceMemoryError}. Default: no limit but the free memory.
   */
  memoryLimitBytes?: number;
  /** Free device memory an index must leave for search buffers; default 1 GiB. */
  reserveBytes?: number;
  /** Bytes of one call's score tile (`batch × rows` floats); default 512 MiB. */
  tileBytes?: number;
}

/** The addon's error codes as the project's typed errors. */
function typed(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as Error & { code?: unknown }).code;
  if (code === 'OUT_OF_MEMORY') return new DeviceMemoryError(err.message, { cause: err });
  if (code === 'INVALID') return new InvalidArgumentError(err.message, { cause: err });
  if (code === 'DEVICE') return new DeviceUnavailableError(err.message, { cause: err });
  return err;
}

function toTopK(r: CudaTopK): TopKResult {
  return { batch: r.batch, k: r.k, scores: r.scores, rows: r.rows };
}

function checkBytes(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
    throw new RangeError(`${name} must be a non-negative integer, got ${String(v)}`);
  }
}

class CudaResidentIndex implements ResidentIndex {
  private released = false;

  constructor(
    private readonly kernel: CudaSearchKernel,
    readonly handle: CudaIndexHandle,
    readonly rows: number,
    readonly dim: number,
    readonly metric: Metric,
  ) {}

  get deviceBytes(): number {
    return this.released ? 0 : this.rows * this.dim * 4 + (this.metric === 'l2' ? this.rows * 4 : 0);
  }

  get isReleased(): boolean {
    return this.released;
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  async search(queries: Float32Array, batch: number, k: number, mask: IndexMask): Promise<TopKResult> {
    const [r] = await this.kernel.searchIndexes([{ index: this, ...mask }], queries, batch, k);
    return r;
  }

  release(): Promise<void> {
    if (!this.released) {
      this.released = true;
      this.handle.release();
    }
    return Promise.resolve();
  }

  /** True when `kernel` made this index. */
  ownedBy(kernel: CudaSearchKernel): boolean {
    return this.kernel === kernel;
  }
}

/**
 * {@link SearchKernel} on hypersync's CUDA addon (kernels/cuda): sealed segments live in device
 * memory (`cudaMalloc`), each batch is scored by cuBLAS SGEMM (FP32, or TF32 where the device
 * info asks for it) and the top-k selected on the device; only queries, masks and results cross
 * the bus. Device memory past the limit is refused with {@link DeviceMemoryError}.
 */
export class CudaSearchKernel implements SearchKernel {
  readonly readsFiles = false;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly deviceInfo: DeviceInfo,
    private readonly engine: CudaEngine,
  ) {}

  /**
   * Starts the engine on device 0 with `deviceInfo.precision`. Throws
   * {@link DeviceUnavailableError} with the reason where the addon, the device or cuBLAS is
   * missing.
   */
  static open(deviceInfo: DeviceInfo, opts: CudaSearchKernelOptions = {}): CudaSearchKernel {
    checkBytes('memoryLimitBytes', opts.memoryLimitBytes);
    checkBytes('reserveBytes', opts.reserveBytes);
    checkBytes('tileBytes', opts.tileBytes);
    if (opts.tileBytes !== undefined && opts.tileBytes < 4096) throw new RangeError('tileBytes must be at least 4096');
    const load = probeCudaDevice();
    if (!load.ok) throw new DeviceUnavailableError(load.reason);
    try {
      const engine = new load.addon.CudaEngine({
        device: 0,
        tf32: deviceInfo.precision === 'tf32',
        ...(opts.memoryLimitBytes === undefined ? {} : { limitBytes: opts.memoryLimitBytes }),
        ...(opts.reserveBytes === undefined ? {} : { reserveBytes: opts.reserveBytes }),
        ...(opts.tileBytes === undefined ? {} : { tileBytes: opts.tileBytes }),
      });
      return new CudaSearchKernel(deviceInfo, engine);
    } catch (err) {
      throw new DeviceUnavailableError(err instanceof Error ? err.message : String(err), { cause: err });
    }
  }

  /** Device memory now: free and total on the GPU, and what this kernel's indexes hold. */
  memory(): { freeBytes: number; totalBytes: number; accountedBytes: number } {
    this.assertOpen();
    return this.engine.memInfo();
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
    const data = vectors.subarray(0, rows * dim);
    if (source?.crc32 !== undefined) {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (crc32(bytes) !== source.crc32) throw new SnapshotCorruptError(`${source.path} fails its CRC-32 check`);
    }
    const handle = await this.engine.createIndex(data, rows, dim, metric === 'l2').catch((err: unknown) => {
      throw typed(err);
    });
    return new CudaResidentIndex(this, handle, rows, dim, metric);
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
    if (rows === 0 || batch === 0) return { batch, k: 0, scores: new Float32Array(0), rows: new Int32Array(0) };
    const r = await this.engine
      .searchTransient(
        vectors.subarray(0, rows * dim),
        rows,
        dim,
        gemmAlpha(metric),
        bias.subarray(0, rows),
        queries.subarray(0, batch * dim),
        batch,
        k,
      )
      .catch((err: unknown) => {
        throw typed(err);
      });
    return toTopK(r);
  }

  async searchIndexes(items: readonly IndexSearch[], queries: Float32Array, batch: number, k: number): Promise<TopKResult[]> {
    this.assertOpen();
    if (items.length === 0) return [];
    const dim = items[0].index.dim;
    const ours = items.every((it) => it.index instanceof CudaResidentIndex && it.index.ownedBy(this) && it.index.dim === dim);
    if (!ours) {
      // Indexes of another kernel (or of mixed dimensions) go one by one through their own search.
      const out: TopKResult[] = [];
      for (const it of items) out.push(await it.index.search(queries, batch, k, it));
      return out;
    }
    const indexes = items.map((it) => it.index as CudaResidentIndex);
    if (indexes.some((i) => i.isReleased)) throw new ClosedError('segment index');
    if (batch === 0) {
      return items.map(() => ({ batch: 0, k: 0, scores: new Float32Array(0), rows: new Int32Array(0) }));
    }
    const masks = items.map((it) => (it.masked > 0 ? it.mask.subarray(0, it.index.rows) : null));
    const results = await this.engine
      .search(
        indexes.map((i) => i.handle),
        masks,
        queries.subarray(0, batch * dim),
        batch,
        k,
      )
      .catch((err: unknown) => {
        throw typed(err);
      });
    return results.map(toTopK);
  }

  close(): Promise<void> {
    this.closing ??= Promise.resolve().then(() => this.engine.close());
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closing) throw new ClosedError('search kernel');
  }
}
