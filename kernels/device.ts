import ort from 'onnxruntime-node';
import { DeviceUnavailableError } from '../src/core/errors.js';
import type { DevicePreference } from '../src/core/device-preference.js';
import { buildDynamicGraph } from './graphs.js';
import type { Device } from './types.js';

/** The device chosen for the kernels and why; reported by stats and `/readyz`. */
export interface DeviceInfo {
  device: Device;
  /** onnxruntime execution providers handed to every session, in order. */
  executionProviders: string[];
  /** Human-readable reason for the choice (e.g. why CUDA was not used). */
  reason: string;
  /** onnxruntime-node version. */
  runtime: string;
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

/**
 * Resolves `HYPERSYNC_DEVICE`: `cpu` always works; `cuda` throws {@link DeviceUnavailableError}
 * when onnxruntime's CUDA provider cannot be loaded; `auto` uses CUDA only when it really loads
 * and otherwise falls back to CPU, saying why.
 */
export async function resolveDevice(preference: DevicePreference): Promise<DeviceInfo> {
  const runtime = ort.env.versions.node ?? ort.env.versions.common;
  if (preference === 'cpu') {
    return { device: 'cpu', executionProviders: ['cpu'], reason: 'HYPERSYNC_DEVICE=cpu', runtime };
  }
  const probe = await probeCuda();
  if (probe.ok) {
    return {
      device: 'cuda',
      executionProviders: ['cuda', 'cpu'],
      reason: `HYPERSYNC_DEVICE=${preference}: onnxruntime CUDA execution provider loaded`,
      runtime,
    };
  }
  if (preference === 'cuda') {
    throw new DeviceUnavailableError(
      `HYPERSYNC_DEVICE=cuda but onnxruntime's CUDA execution provider did not load: ${probe.error} ` +
        '(install with ONNXRUNTIME_NODE_INSTALL=cuda12 on a machine with CUDA, or use HYPERSYNC_DEVICE=auto)',
    );
  }
  return {
    device: 'cpu',
    executionProviders: ['cpu'],
    reason: `HYPERSYNC_DEVICE=auto: CUDA execution provider unavailable (${probe.error}); using CPU`,
    runtime,
  };
}
