import ort from 'onnxruntime-node';
import { DeviceUnavailableError } from '../src/core/errors.js';
import type { DevicePreference } from '../src/core/device-preference.js';
import { probeCudaDevice } from './cuda-addon.js';
import { buildDynamicGraph } from './graphs.js';
import type { Device } from './types.js';

/** Which search kernel the HVS runs: hypersync's own CUDA addon, or onnxruntime graphs. */
export type SearchKernelName = 'cuda-addon' | 'onnx';

/** The CUDA addon as the probe found it: the GPU it runs on, or why it cannot be used. */
export type CudaAddonStatus =
  | {
      available: true;
      gpu: string;
      computeCapability: string;
      memoryBytes: number;
      driverVersion: number;
      runtimeVersion: number;
      /** The libcublas file loaded at run time, and its version. */
      cublas: string;
      cublasVersion: number;
      /** How the addon was built (nvcc release, architectures). */
      build: string;
    }
  | { available: false; reason: string };

/** The device chosen for the kernels and why; reported by stats, `hypersync device` and `/readyz`. */
export interface DeviceInfo {
  device: Device;
  /** The HVS search kernel: `cuda-addon` (kernels/cuda) or `onnx` (onnxruntime, CPU or CUDA provider). */
  kernel: SearchKernelName;
  /** Arithmetic of the search kernel's score products: `tf32` only on the CUDA addon, when asked for. */
  precision: 'fp32' | 'tf32';
  /** onnxruntime execution providers handed to every session (the encoder, the `onnx` kernel), in order. */
  executionProviders: string[];
  /** Human-readable reason for the choice (e.g. why CUDA was not used). */
  reason: string;
  /** onnxruntime-node version. */
  runtime: string;
  /** The CUDA addon's device, or why it is unavailable; absent under `HYPERSYNC_DEVICE=cpu` (not probed). */
  cudaAddon?: CudaAddonStatus;
}

/** Options of {@link resolveDevice}. */
export interface ResolveDeviceOptions {
  /** TF32 tensor cores for the CUDA addon's score GEMM (`HYPERSYNC_CUDA_TF32=1`); default FP32. */
  tf32?: boolean;
}

let cudaProbe: Promise<{ ok: true } | { ok: false; error: string }> | undefined;

/** A cheap probe, once per process: does a session with the CUDA provider load and run? */
function probeCuda(): Promise<{ ok: true } | { ok: false; error: string }> {
  cudaProbe ??= probeCudaOnce();
  return cudaProbe;
}

async function probeCudaOnce(): Promise<{ ok: true } | { ok: false; error: string }> {
  // A CPU-only install has no CUDA provider library; onnxruntime would print that failure to
  // stderr on every start. The reason is reported through DeviceInfo instead.
  ort.env.logLevel = 'fatal';
  try {
    const session = await ort.InferenceSession.create(buildDynamicGraph(4, 1), {
      executionProviders: ['cuda'],
      logSeverityLevel: 4,
    });
    try {
      await session.run({
        queries: new ort.Tensor('float32', new Float32Array(4), [1, 4]),
        vectors: new ort.Tensor('float32', new Float32Array(8), [2, 4]),
        bias: new ort.Tensor('float32', new Float32Array(2), [2]),
        k: new ort.Tensor('int64', BigInt64Array.of(1n), [1]),
      });
    } finally {
      await session.release();
    }
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

function addonStatus(): CudaAddonStatus {
  const load = probeCudaDevice();
  if (!load.ok) return { available: false, reason: load.reason };
  const p = load.probe;
  return {
    available: true,
    gpu: p.name,
    computeCapability: p.computeCapability,
    memoryBytes: p.totalBytes,
    driverVersion: p.driverVersion,
    runtimeVersion: p.runtimeVersion,
    cublas: p.cublasPath,
    cublasVersion: p.cublasVersion,
    build: load.build,
  };
}

/**
 * Resolves `HYPERSYNC_DEVICE` for the search kernel and, beside it, onnxruntime's execution
 * providers for the encoder. `cpu` always works. `cuda` runs the CUDA addon and throws
 * {@link DeviceUnavailableError} with the reason (addon not built, no device or driver, no
 * cuBLAS) where it cannot. `auto` takes the addon where it runs, else onnxruntime's CUDA provider
 * where that loads, else the CPU, saying why. The encoder uses onnxruntime's CUDA provider where it
 * loads and the CPU otherwise, whichever kernel searches.
 */
export async function resolveDevice(preference: DevicePreference, opts: ResolveDeviceOptions = {}): Promise<DeviceInfo> {
  const runtime = ort.env.versions.node ?? ort.env.versions.common;
  if (preference === 'cpu') {
    return {
      device: 'cpu',
      kernel: 'onnx',
      precision: 'fp32',
      executionProviders: ['cpu'],
      reason: 'HYPERSYNC_DEVICE=cpu',
      runtime,
    };
  }
  const cudaAddon = addonStatus();
  if (!cudaAddon.available && preference === 'cuda') {
    throw new DeviceUnavailableError(
      `HYPERSYNC_DEVICE=cuda but the CUDA search kernel cannot run: ${cudaAddon.reason} ` +
        '(build it with `npm run build:cuda` where nvcc is installed, or use HYPERSYNC_DEVICE=auto)',
    );
  }
  const probe = await probeCuda();
  const providers = probe.ok ? ['cuda', 'cpu'] : ['cpu'];
  if (cudaAddon.available) {
    const precision = opts.tf32 ? 'tf32' : 'fp32';
    const encoder = probe.ok ? 'onnxruntime CUDA' : `onnxruntime CPU (CUDA execution provider unavailable: ${probe.error})`;
    return {
      device: 'cuda',
      kernel: 'cuda-addon',
      precision,
      executionProviders: providers,
      reason: `HYPERSYNC_DEVICE=${preference}: CUDA addon on ${cudaAddon.gpu} (cuBLAS ${precision.toUpperCase()}); encoder on ${encoder}`,
      runtime,
      cudaAddon,
    };
  }
  if (probe.ok) {
    return {
      device: 'cuda',
      kernel: 'onnx',
      precision: 'fp32',
      executionProviders: providers,
      reason: `HYPERSYNC_DEVICE=auto: CUDA addon unavailable (${cudaAddon.reason}); onnxruntime CUDA execution provider loaded`,
      runtime,
      cudaAddon,
    };
  }
  return {
    device: 'cpu',
    kernel: 'onnx',
    precision: 'fp32',
    executionProviders: providers,
    reason:
      `HYPERSYNC_DEVICE=auto: CUDA addon unavailable (${cudaAddon.reason}); ` +
      `CUDA execution provider unavailable (${probe.error}); using CPU`,
    runtime,
    cudaAddon,
  };
}
