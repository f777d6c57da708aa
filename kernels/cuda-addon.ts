import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Top-k of a batch as the addon returns it (`batch × k`, k = min(k, rows)). */
export interface CudaTopK {
  batch: number;
  k: number;
  scores: Float32Array;
  rows: Int32Array;
}

/** A segment resident in device memory (kernels/cuda/src/engine.h, `DeviceIndex`). */
export interface CudaIndexHandle {
  /** Device bytes held (vectors, plus the bias for L2); 0 once released. */
  readonly bytes: number;
  /** Drops the reference; the memory is freed once no running search holds it. */
  release(): void;
}

/** Options of the native engine. */
export interface CudaEngineOptions {
  device?: number;
  tf32?: boolean;
  /** Bytes of one call's score tile. */
  tileBytes?: number;
  /** Most bytes all indexes may hold; 0 or absent: the device's free memory only. */
  limitBytes?: number;
  /** Free device memory an index must leave for search buffers. */
  reserveBytes?: number;
}

/**
 * The native engine: cuBLAS SGEMM plus device top-k. A failed call rejects with an Error whose
 * `code` is `OUT_OF_MEMORY`, `INVALID` or `DEVICE`.
 */
export interface CudaEngine {
  readonly tf32: boolean;
  createIndex(vectors: Float32Array, rows: number, dim: number, l2: boolean): Promise<CudaIndexHandle>;
  search(
    indexes: readonly CudaIndexHandle[],
    masks: readonly (Float32Array | null)[],
    queries: Float32Array,
    batch: number,
    k: number,
  ): Promise<CudaTopK[]>;
  searchTransient(
    vectors: Float32Array,
    rows: number,
    dim: number,
    alpha: number,
    bias: Float32Array,
    queries: Float32Array,
    batch: number,
    k: number,
  ): Promise<CudaTopK>;
  memInfo(): { freeBytes: number; totalBytes: number; accountedBytes: number };
  close(): void;
}

/** What the addon's probe found on one device. */
export interface CudaProbe {
  ok: boolean;
  /** Why the device cannot be used (empty when `ok`). */
  reason: string;
  device: number;
  deviceCount: number;
  name: string;
  computeCapability: string;
  totalBytes: number;
  freeBytes: number;
  runtimeVersion: number;
  driverVersion: number;
  cublasVersion: number;
  cublasPath: string;
}

/** The addon's exports (kernels/cuda/src/addon.cc). */
export interface CudaAddon {
  CudaEngine: new (opts: CudaEngineOptions) => CudaEngine;
  probe(device: number): CudaProbe;
  /** Largest k selected on the device; a larger k is selected on the host after the GEMM. */
  maxDeviceK: number;
}

/** The addon, or why it is not there. */
export type CudaAddonLoad = { ok: true; addon: CudaAddon; build: string } | { ok: false; reason: string };

/** The addon with a usable device and cuBLAS, or why not (reasons as {@link CudaAddonLoad}). */
export type CudaDeviceLoad = { ok: true; addon: CudaAddon; probe: CudaProbe; build: string } | { ok: false; reason: string };

let loaded: CudaAddonLoad | undefined;
let probed: CudaDeviceLoad | undefined;

/** Loads the CUDA addon (built by `npm run build:cuda`) once per process; never throws. */
export function loadCudaAddon(): CudaAddonLoad {
  loaded ??= load();
  return loaded;
}

/** Loads the addon and probes device 0 (driver, device, a kernel launch, cuBLAS) once per process. */
export function probeCudaDevice(): CudaDeviceLoad {
  probed ??= probe();
  return probed;
}

function probe(): CudaDeviceLoad {
  const l = loadCudaAddon();
  if (!l.ok) return l;
  const p = l.addon.probe(0);
  return p.ok ? { ok: true, addon: l.addon, probe: p, build: l.build } : { ok: false, reason: p.reason };
}

function load(): CudaAddonLoad {
  // From sources (kernels/) or from the build (dist/kernels/): the addon is built in the source tree.
  const here = fileURLToPath(new URL('.', import.meta.url));
  const roots = [here, `${here}../../kernels/`];
  for (const root of roots) {
    const file = `${root}cuda/build/Release/hypersync_cuda.node`;
    if (!existsSync(file)) continue;
    const info = `${root}cuda/build/BUILD_INFO`;
    const build = existsSync(info) ? readFileSync(info, 'utf8').trim() : 'unknown build';
    try {
      return { ok: true, addon: createRequire(import.meta.url)(file) as CudaAddon, build };
    } catch (err) {
      return { ok: false, reason: `CUDA addon did not load: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  for (const root of roots) {
    const marker = `${root}cuda/build/UNAVAILABLE`;
    if (existsSync(marker)) return { ok: false, reason: `CUDA addon not built: ${readFileSync(marker, 'utf8').trim()}` };
  }
  return { ok: false, reason: 'CUDA addon not built (run `npm run build:cuda`)' };
}
