import type { CollectionRegistry } from './collection-registry.js';
import type { Tiers } from './tiers.js';
import type { HealthReport } from './types.js';

/** Whether the NVM answers and the HVS serves every collection, with the device and memory. */
export async function healthOf(tiers: Tiers, registry: CollectionRegistry): Promise<HealthReport> {
  let nvm: HealthReport['nvm'];
  try {
    nvm = { reachable: true, backend: tiers.nvm.backend, lsn: await tiers.nvm.lastLsn() };
  } catch (err) {
    nvm = { reachable: false, backend: tiers.nvm.backend, error: (err as Error).message };
  }
  const { ready: loaded, collections } = registry.readiness();
  const info = tiers.hvs.deviceInfo;
  const memory = tiers.hvs.memoryUsage();
  return {
    ready: nvm.reachable && loaded,
    nvm,
    hvs: {
      device: info.device,
      reason: info.reason,
      runtime: `onnxruntime-node ${info.runtime}`,
      collections,
      hostBytes: memory.hostBytes,
      deviceBytes: memory.deviceBytes,
    },
  };
}

/** Per collection held: the vectors and bytes (host and device) in the HVS. */
export function hvsUsageOf(tiers: Tiers, registry: CollectionRegistry): Record<string, { vectors: number; bytes: number }> {
  const memory = tiers.hvs.memoryUsage().collections;
  const out: Record<string, { vectors: number; bytes: number }> = {};
  for (const c of registry.list()) {
    const m = memory[c.name];
    out[c.name] = {
      vectors: tiers.hvs.has(c.name) ? tiers.hvs.collection(c.name).count : 0,
      bytes: m ? m.hostBytes + m.deviceBytes : 0,
    };
  }
  return out;
}
