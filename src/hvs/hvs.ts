import { mkdirSync } from 'node:fs';
import { copyFile, link, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type DeviceInfo, resolveDevice } from '../../kernels/device.js';
import { CudaSearchKernel } from '../../kernels/cuda-kernel.js';
import { OnnxSearchKernel } from '../../kernels/onnx-kernel.js';
import { WorkerSearchKernel } from '../../kernels/worker-kernel.js';
import type { SearchKernel } from '../../kernels/search-kernel.js';
import { METRICS } from '../core/metric.js';
import type { DevicePreference } from '../core/device-preference.js';
import { ClosedError, CollectionExistsError, CollectionNotFoundError, InvalidArgumentError } from '../core/errors.js';
import { assertCollectionName } from '../core/collection-name.js';
import { HvsCollection } from './hvs-collection.js';
import type { HvsCollectionOptions } from './types.js';
import { hasSnapshot, readSnapshot, type SnapshotManifest } from './snapshot.js';
import type { CollectionSpec, MemoryUsage } from './types.js';
import { LIMITS } from '../core/limits.js';
import { definedOnly } from '../core/options.js';

/** Options of {@link Hvs.open}. */
export interface HvsOptions extends HvsCollectionOptions {
  /** Directory that holds snapshots (under `<dataDir>/hvs/<collection>/`). */
  dataDir: string;
  /**
   * `auto` (default) runs the CUDA addon where it loads and finds a GPU, else onnxruntime (its
   * CUDA provider where that loads, else the CPU); `cuda` fails unless the addon runs.
   */
  device?: DevicePreference;
  /** TF32 tensor cores for the CUDA addon's score GEMM (default false: FP32). */
  cudaTf32?: boolean;
  /**
   * Most device bytes the CUDA addon's resident segments may hold together; a segment past it is
   * refused with `DeviceMemoryError` (default: the GPU's free memory less 1 GiB for work buffers).
   */
  deviceMemoryLimitBytes?: number;
  /** A kernel to use instead of one built for `device` (tests, custom devices). */
  kernel?: SearchKernel;
  /**
   * Where sealed segments' indexes live: `worker` (default) builds and searches them in a worker
   * thread beside the event loop; `main` runs everything on the calling thread. Not used by the
   * CUDA addon, whose calls run off the event loop already.
   */
  kernelThread?: 'worker' | 'main';
  /** Worker threads of the `worker` kernel (default 2, at most the core count). */
  kernelWorkers?: number;
}

/**
 * The hot vector store: collections held in compute-device memory, searched in batches by
 * tensor kernels, snapshotted to the data directory.
 */
export class Hvs {
  private readonly collections = new Map<string, HvsCollection>();
  private closing: Promise<void> | undefined;

  private constructor(
    readonly kernel: SearchKernel,
    private readonly opts: HvsOptions,
    private readonly ownsKernel: boolean,
  ) {}

  /** Resolves the device, builds the kernel and returns a ready store. */
  static async open(opts: HvsOptions): Promise<Hvs> {
    if (typeof opts.dataDir !== 'string' || opts.dataDir.length === 0) throw new InvalidArgumentError('dataDir is required');
    if (opts.kernel) return new Hvs(opts.kernel, opts, false);
    const info = await resolveDevice(opts.device ?? 'auto', { tf32: opts.cudaTf32 === true });
    const kernel =
      info.kernel === 'cuda-addon'
        ? CudaSearchKernel.open(info, definedOnly({ memoryLimitBytes: opts.deviceMemoryLimitBytes }))
        : opts.kernelThread === 'main'
          ? new OnnxSearchKernel(info)
          : new WorkerSearchKernel(info, opts.kernelWorkers === undefined ? {} : { threads: opts.kernelWorkers });
    return new Hvs(kernel, opts, true);
  }

  get deviceInfo(): DeviceInfo {
    return this.kernel.deviceInfo;
  }

  createCollection(name: string, spec: CollectionSpec): HvsCollection {
    this.assertOpen();
    assertCollectionName(name);
    if (!Number.isInteger(spec.dim) || spec.dim < 1 || spec.dim > LIMITS.dim) {
      throw new InvalidArgumentError(`dim must be an integer between 1 and ${LIMITS.dim}, got ${String(spec.dim)}`);
    }
    if (!METRICS.includes(spec.metric)) {
      throw new InvalidArgumentError(`metric must be one of ${METRICS.join(', ')}, got ${JSON.stringify(spec.metric)}`);
    }
    if (this.collections.has(name)) throw new CollectionExistsError(name);
    const dir = this.snapshotDir(name);
    mkdirSync(dir, { recursive: true });
    const c = new HvsCollection(name, spec.dim, spec.metric, this.kernel, dir, this.collectionOptions());
    this.collections.set(name, c);
    return c;
  }

  /** The collection, or {@link CollectionNotFoundError}. */
  collection(name: string): HvsCollection {
    this.assertOpen();
    const c = this.collections.get(name);
    if (!c) throw new CollectionNotFoundError(name);
    return c;
  }

  has(name: string): boolean {
    return this.collections.has(name);
  }

  list(): string[] {
    return [...this.collections.keys()];
  }

  /** Drops the collection from memory and, with `removeSnapshot`, its snapshot files. */
  async dropCollection(name: string, { removeSnapshot = true } = {}): Promise<void> {
    const c = this.collection(name);
    this.collections.delete(name);
    await c.close();
    if (removeSnapshot) await rm(this.snapshotDir(name), { recursive: true, force: true });
  }

  /** Writes the collection's snapshot (segments, ids, versions, `lsn`) and returns its manifest. */
  async snapshot(name: string): Promise<SnapshotManifest> {
    return this.collection(name).snapshot();
  }

  /** True when a snapshot of `name` exists on disk (valid or not). */
  hasSnapshot(name: string): Promise<boolean> {
    assertCollectionName(name);
    return hasSnapshot(this.snapshotDir(name));
  }

  /**
   * Loads the collection from its snapshot, replacing any collection of that name in memory.
   * Throws {@link SnapshotCorruptError} (and loads nothing) when a file is corrupt or truncated.
   */
  async loadSnapshot(name: string): Promise<HvsCollection> {
    this.assertOpen();
    assertCollectionName(name);
    // A kernel that reads segment files itself checks their CRC-32 there, in its own thread.
    const { manifest, segments, metadata } = await readSnapshot(this.snapshotDir(name), { vectors: !this.kernel.readsFiles });
    const { dim, metric } = manifest.collection;
    const dir = this.snapshotDir(name);
    const c = await HvsCollection.restore(
      name,
      dim,
      metric,
      this.kernel,
      dir,
      this.collectionOptions(),
      segments,
      manifest.lsn,
      metadata,
    );
    const previous = this.collections.get(name);
    this.collections.set(name, c);
    await previous?.close();
    return c;
  }

  /**
   * A new collection that is not served (not in {@link list}) until {@link install}: a rebuild
   * fills it off to the side. Its segment files go to `dir` (default: the collection's snapshot
   * directory, beside the served collection's files, which have other names).
   */
  createDetached(name: string, spec: CollectionSpec, dir = this.snapshotDir(name)): HvsCollection {
    this.assertOpen();
    assertCollectionName(name);
    mkdirSync(dir, { recursive: true });
    return new HvsCollection(name, spec.dim, spec.metric, this.kernel, dir, this.collectionOptions());
  }

  /**
   * Restores a collection, not served until {@link install}, from a snapshot written elsewhere
   * (a worker's rebuild): its vectors files are hard-linked (copied across file systems) into
   * the collection's snapshot directory, so the restored segments outlive the source.
   * Throws {@link SnapshotCorruptError} when the source is corrupt.
   */
  async restoreDetached(name: string, fromDir: string): Promise<HvsCollection> {
    this.assertOpen();
    assertCollectionName(name);
    const { manifest, segments, metadata } = await readSnapshot(fromDir, { vectors: !this.kernel.readsFiles });
    const dir = this.snapshotDir(name);
    mkdirSync(dir, { recursive: true });
    for (const s of manifest.segments) {
      const src = join(fromDir, s.vectors.file);
      const dst = join(dir, s.vectors.file);
      try {
        await link(src, dst);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') continue;
        if (code !== 'EXDEV' && code !== 'EPERM') throw err;
        await copyFile(src, dst);
      }
    }
    const { dim, metric } = manifest.collection;
    return HvsCollection.restore(name, dim, metric, this.kernel, dir, this.collectionOptions(), segments, manifest.lsn, metadata);
  }

  /** Serves `c` under `name` from now on; the collection it replaces is closed (searches in flight finish first). */
  async install(name: string, c: HvsCollection): Promise<void> {
    this.assertOpen();
    const previous = this.collections.get(name);
    this.collections.set(name, c);
    if (previous && previous !== c) await previous.close();
  }

  /** Bytes held, per collection and in total. */
  memoryUsage(): MemoryUsage & { collections: Record<string, MemoryUsage> } {
    const collections: Record<string, MemoryUsage> = {};
    let hostBytes = 0;
    let deviceBytes = 0;
    let diskBytes = 0;
    for (const [name, c] of this.collections) {
      const m = c.memoryUsage();
      collections[name] = m;
      hostBytes += m.hostBytes;
      deviceBytes += m.deviceBytes;
      diskBytes += m.diskBytes;
    }
    return { hostBytes, deviceBytes, diskBytes, collections };
  }

  /** Closes every collection and the kernel; safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.collections.values()) await c.close();
      this.collections.clear();
      if (this.ownsKernel) await this.kernel.close();
    })();
    return this.closing;
  }

  private snapshotDir(name: string): string {
    return join(this.opts.dataDir, 'hvs', name);
  }

  private collectionOptions(): HvsCollectionOptions {
    const { sealThreshold, maxSegmentRows, ivfMinRows, compactTombstonePercent } = this.opts;
    return definedOnly({ sealThreshold, maxSegmentRows, ivfMinRows, compactTombstonePercent });
  }

  private assertOpen(): void {
    if (this.closing) throw new ClosedError('HVS');
  }
}
