/**
 * The hypersync HVS side of the ANN benchmark. Every call into hypersync is in
 * {@link runHypersync} (and {@link hypersyncTruth}), so that the IVF API, while it settles, is
 * adjusted here only.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SearchHit } from '../../src/core/search-hit.js';
import { Hvs } from '../../src/hvs/hvs.js';
import type { HvsCollection } from '../../src/hvs/hvs-collection.js';
import { type AnnData, type AnnRow, K, log, measure, mib, rss, timed } from './ann-common.js';

export const NPROBES = [1, 2, 4, 8, 16, 32, 64, 128];

/** The IVF API being added to collections (not in every build: checked at run time). */
interface IvfCollection {
  trainIndex(opts?: {
    onProgress?: (p: { phase: string; done: number; total: number }) => void;
  }): Promise<{ nlist: number; trainMs: number } & Record<string, unknown>>;
  search(q: Float32Array, k: number, opts?: { nprobe?: number; exact?: boolean }): Promise<SearchHit[][]>;
  stats(): { count: number; deviceBytes: number; index?: { hotBytes: number; nlist: number } & Record<string, unknown> };
}

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
  const hvs = await Hvs.open({ dataDir, device });
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

/** Builds a collection, trains its IVF index when the API exists, and measures every setting. */
export async function runHypersync(data: AnnData): Promise<AnnRow[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-ann-hvs-'));
  const rssBefore = rss();
  const hvs = await Hvs.open({ dataDir, device });
  const rows: AnnRow[] = [];
  const base = { data: data.name, system: 'hypersync HVS', fp32BytesPerVector: data.dim * 4 };
  try {
    const [c, loadS] = await timed(() => build(hvs, data));
    const ivf = c as unknown as IvfCollection;
    const hasIvf = typeof (c as unknown as Partial<IvfCollection>).trainIndex === 'function';
    let trainS = 0;
    let nlist = 0;
    if (hasIvf) {
      let last = 0;
      const [info, s] = await timed(() =>
        ivf.trainIndex({
          onProgress: (p) => {
            const now = performance.now();
            if (now - last > 5000 || p.done === p.total) {
              last = now;
              log(`hypersync IVF ${p.phase}: ${p.done}/${p.total}`);
            }
          },
        }),
      );
      trainS = s;
      nlist = info.nlist;
      log(`hypersync: IVF trained, nlist=${nlist}, ${(info.trainMs / 1000).toFixed(1)} s (reported)`);
    }
    const memMiB = mib(rss() - rssBefore);
    const stats = ivf.stats();
    const memNote = 'RSS delta';
    const buildS = loadS + trainS;
    if (hasIvf) {
      const hot = stats.index ? stats.index.hotBytes / stats.count : undefined;
      for (const nprobe of NPROBES.filter((p) => p <= nlist)) {
        log(`hypersync: nprobe=${nprobe}`);
        const m = await measure(data, {
          one: async (q) => labels((await ivf.search(q, K, { nprobe }))[0]),
          batch: async (qs) => (await ivf.search(qs, K, { nprobe })).map(labels),
        });
        rows.push({
          ...base,
          setting: `IVF nprobe=${nprobe}/${nlist}`,
          ...m,
          ...(rows.length === 0 ? { buildS, memMiB, memNote } : {}),
          hotBytesPerVector: hot,
          ...(rows.length === 0 ? { note: `load ${loadS.toFixed(1)} s + train ${trainS.toFixed(1)} s` } : {}),
        });
      }
    }
    log('hypersync: exact');
    const m = await measure(data, {
      one: async (q) => labels((await ivf.search(q, K, hasIvf ? { exact: true } : undefined))[0]),
      batch: async (qs) => (await ivf.search(qs, K, hasIvf ? { exact: true } : undefined)).map(labels),
    });
    rows.push({
      ...base,
      setting: 'exact',
      ...m,
      ...(rows.length === 0 ? { buildS, memMiB, memNote } : {}),
      hotBytesPerVector: stats.deviceBytes / stats.count,
      note: hasIvf ? 'exact: all vectors, fp32' : 'IVF not available (exact only)',
    });
    return rows;
  } finally {
    await hvs.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
