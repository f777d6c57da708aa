/**
 * hypersync in process (its HVS: the exact ONNX kernel, then the IVF index with nprobe swept) in
 * the peers benchmark, and the HVS exact search as ground truth for large data sets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SearchHit } from '../../src/core/search-hit.js';
import { Hvs } from '../../src/hvs/hvs.js';
import type { HvsCollection } from '../../src/hvs/hvs-collection.js';
import { type AnnData, type AnnRow, K, log, measure, mib, rss, timed } from './common.js';

export const NPROBES = [1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128];

const device = (process.env.HYPERSYNC_DEVICE as 'auto' | 'cpu' | 'cuda' | undefined) ?? 'auto';
const labels = (hits: SearchHit[]): number[] => hits.map((h) => Number(h.id));

async function build(hvs: Hvs, data: AnnData): Promise<HvsCollection> {
  const c = hvs.createCollection('ann', { dim: data.dim, metric: 'cosine' });
  const chunk = 10_000;
  for (let off = 0; off < data.n; off += chunk) {
    const end = Math.min(data.n, off + chunk);
    const ids = Array.from({ length: end - off }, (_, i) => String(off + i));
    await c.upsert(ids, data.base.subarray(off * data.dim, end * data.dim));
    if (end % 100_000 === 0 || end === data.n) log(`hypersync: ${end}/${data.n} upserted`);
  }
  await c.flush();
  return c;
}

/** Exact top-K base rows per query through the HVS exact search (ground truth at large N). */
export async function hypersyncTruth(data: AnnData): Promise<Int32Array> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-ann-truth-'));
  const hvs = await Hvs.open({ dataDir, device, ivfMinRows: 0 });
  try {
    const c = await build(hvs, data);
    const truth = new Int32Array(data.nq * K).fill(-1);
    for (let off = 0; off < data.nq; off += 64) {
      const nb = Math.min(64, data.nq - off);
      const hits = await c.search(data.queries.subarray(off * data.dim, (off + nb) * data.dim), K);
      hits.forEach((h, i) => truth.set(labels(h).slice(0, K), (off + i) * K));
    }
    return truth;
  } finally {
    await hvs.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Builds a collection, trains its IVF index, and measures every setting and the exact search. */
export async function runHypersync(data: AnnData): Promise<AnnRow[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-ann-hvs-'));
  const rssBefore = rss();
  // Trained explicitly below (timed), not in the background while loading.
  const hvs = await Hvs.open({ dataDir, device, ivfMinRows: 0 });
  const rows: AnnRow[] = [];
  const base = { data: data.name, system: 'hypersync in process', fp32BytesPerVector: data.dim * 4 };
  try {
    const [c, loadS] = await timed(() => build(hvs, data));
    const flatHot = c.stats().deviceBytes / c.count;
    log('hypersync: exact (flat, ONNX kernel)');
    const flat = await measure(data, {
      one: async (q) => labels((await c.search(q, K))[0]),
      batch: async (qs) => (await c.search(qs, K)).map(labels),
    });
    let last = 0;
    const [info, trainS] = await timed(() =>
      c.trainIndex({
        onProgress: (p) => {
          const now = performance.now();
          if (now - last > 5000 || p.done === p.total) {
            last = now;
            log(`hypersync IVF ${p.phase}: ${p.done}/${p.total}`);
          }
        },
      }),
    );
    if (!info) throw new Error('hypersync: nothing to index');
    const memMiB = mib(rss() - rssBefore);
    const { nlist, nprobe: calibrated } = info;
    log(`hypersync: IVF trained, nlist=${nlist}, calibrated nprobe=${calibrated}, ${trainS.toFixed(1)} s`);
    const hot = info.hotBytes / c.count;
    const sweep = [...new Set([...NPROBES.filter((p) => p < nlist), calibrated])].sort((a, b) => a - b);
    for (const nprobe of sweep) {
      log(`hypersync: nprobe=${nprobe}`);
      const m = await measure(data, {
        one: async (q) => labels((await c.search(q, K, { nprobe }))[0]),
        batch: async (qs) => (await c.search(qs, K, { nprobe })).map(labels),
      });
      rows.push({
        ...base,
        series: 'hypersync IVF, in process',
        setting: `IVF nprobe=${nprobe}/${nlist}${nprobe === calibrated ? ' (default)' : ''}`,
        ...m,
        ...(rows.length === 0
          ? {
              buildS: loadS + trainS,
              buildLabel: 'hypersync in process: load + IVF training',
              memMiB,
              memNote: 'RSS delta (load + train)',
            }
          : {}),
        hotBytesPerVector: hot,
        ...(rows.length === 0 ? { note: `IVF training ${trainS.toFixed(1)} s (after a ${loadS.toFixed(1)} s load)` } : {}),
      });
    }
    rows.push({
      ...base,
      series: 'hypersync exact, in process',
      setting: 'exact (flat)',
      ...flat,
      buildS: loadS,
      buildLabel: 'hypersync in process: load (exact search)',
      hotBytesPerVector: flatHot,
      note: 'every vector, fp32, the ONNX kernel, before the index was trained',
    });
    return rows;
  } finally {
    await hvs.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
