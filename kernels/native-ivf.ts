import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { TopKResult } from './types.js';

/** Arrays of an IVF index as the native kernel reads them (JavaScript owns them). */
export interface NativeIvfArrays {
  dim: number;
  nlist: number;
  /** Entries (rows in list order). */
  rows: number;
  /** 0: larger dot product is nearer (cosine, ip); 1: L2 (kernel score `2·q·x − ‖x‖²`). */
  score: 0 | 1;
  /** `nlist × dim` centroids. */
  centroids: Float32Array;
  /** `nlist + 1` entry offsets of the lists. */
  offsets: Int32Array;
  /** `nlist + 1` block offsets of the lists' codes (16 entries a block). */
  blocks: Int32Array;
  /** `rows × dim` fp32 vectors in list order, for exact rescoring. */
  vectors: Float32Array;
  /** Interleaved u8 codes (see `encode`). */
  codes: Uint8Array;
  /** Per-dimension step and offset of the codes: x ≈ offset + scale · code. */
  scale: Float32Array;
  offset: Float32Array;
  /** `rows` floats: 0, or −Infinity for a deleted entry (read at each search). */
  bias: Float32Array;
}

/** The native index over {@link NativeIvfArrays}. */
export interface NativeIvfIndex {
  search(
    queries: Float32Array,
    batch: number,
    k: number,
    nprobe: number,
    candidates: number,
    threads: number,
    mask?: Float32Array,
  ): Promise<Pick<TopKResult, 'rows' | 'scores'>>;
  exact(
    queries: Float32Array,
    batch: number,
    k: number,
    threads: number,
    mask?: Float32Array,
  ): Promise<Pick<TopKResult, 'rows' | 'scores'>>;
  /** Bytes the native side allocated (centroid blocks, norms). */
  readonly nativeBytes: number;
}

/** The native IVF kernel (kernels/native, built by `npm run build:native`). */
export interface NativeIvfKernel {
  /** Instruction set the inner loops used when the addon loaded: `avx512-vnni` or `generic`. */
  isa: string;
  /** Switches the inner loops to the best this CPU runs or to the portable ones (tests); returns the one now in use. */
  useIsa(which: 'best' | 'generic'): string;
  /**
   * One Lloyd iteration: `labels` and `centroids` updated in place; resolves to the rows that
   * moved. Rows meet centroids through int8 codes of the range `scale`, `offset`.
   */
  lloydStep(
    x: Float32Array,
    n: number,
    dim: number,
    centroids: Float32Array,
    nlist: number,
    score: 0 | 1,
    seed: number,
    threads: number,
    labels: Int32Array,
    scale: Float32Array,
    offset: Float32Array,
  ): Promise<number>;
  /** Each row's nearest centroid into `labels`, compared through int8 codes of the range `scale`, `offset`. */
  assign(
    x: Float32Array,
    n: number,
    dim: number,
    centroids: Float32Array,
    nlist: number,
    score: 0 | 1,
    threads: number,
    labels: Int32Array,
    scale: Float32Array,
    offset: Float32Array,
  ): Promise<void>;
  encode(
    x: Float32Array,
    n: number,
    dim: number,
    offsets: Int32Array,
    blocks: Int32Array,
    nlist: number,
    scale: Float32Array,
    offset: Float32Array,
    threads: number,
    codes: Uint8Array,
  ): Promise<void>;
  IvfIndex: new (arrays: NativeIvfArrays) => NativeIvfIndex;
}

/** The native kernel, or why it is not there. */
export type NativeIvfLoad = { ok: true; kernel: NativeIvfKernel } | { ok: false; reason: string };

let loaded: NativeIvfLoad | undefined;

/** Loads the native IVF kernel once per process. */
export function loadNativeIvf(): NativeIvfLoad {
  loaded ??= load();
  return loaded;
}

function load(): NativeIvfLoad {
  // From sources (kernels/) or from the build (dist/kernels/): the addon is built in the source tree.
  const here = fileURLToPath(new URL('.', import.meta.url));
  const roots = [here, `${here}../../kernels/`];
  for (const root of roots) {
    const addon = `${root}native/build/Release/hypersync_ivf.node`;
    if (!existsSync(addon)) continue;
    try {
      const kernel = createRequire(import.meta.url)(addon) as NativeIvfKernel;
      return { ok: true, kernel };
    } catch (err) {
      return { ok: false, reason: `native IVF kernel did not load: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  for (const root of roots) {
    const marker = `${root}native/build/UNAVAILABLE`;
    if (existsSync(marker)) return { ok: false, reason: `native IVF kernel not built: ${readFileSync(marker, 'utf8').trim()}` };
  }
  return { ok: false, reason: 'native IVF kernel not built (run `npm run build:native`)' };
}
