/**
 * hnswlib-node (HNSW, single-threaded build, one query per call) in the peers benchmark: M = 16,
 * ef_construction = 64, ef swept. B = 64 is 64 sequential calls (the binding has no batch search).
 */
import { type AnnData, type AnnRow, K, log, measure, mib, rss, timed } from './common.js';

export const HNSWLIB_EFS = [10, 20, 40, 80, 160, 320, 640];

export async function runHnswlib(data: AnnData): Promise<AnnRow[]> {
  const { default: hnsw } = await import('hnswlib-node');
  const dim = data.dim;
  const rssBefore = rss();
  const [index, buildS] = await timed(() => {
    const index = new hnsw.HierarchicalNSW('cosine', dim);
    index.initIndex(data.n, 16, 64);
    for (let i = 0; i < data.n; i++) {
      index.addPoint(Array.from(data.base.subarray(i * dim, (i + 1) * dim)), i);
      if ((i + 1) % 20_000 === 0) log(`hnswlib: ${i + 1}/${data.n} added`);
    }
    return index;
  });
  const memMiB = mib(rss() - rssBefore);
  const rows: AnnRow[] = [];
  const one = (q: Float32Array): number[] => index.searchKnn(Array.from(q), K).neighbors;
  for (const ef of HNSWLIB_EFS) {
    log(`hnswlib: ef=${ef}`);
    index.setEf(ef);
    const m = await measure(data, {
      one,
      batch: (qs, nq) => Array.from({ length: nq }, (_, i) => one(qs.subarray(i * dim, (i + 1) * dim))),
    });
    rows.push({
      data: data.name,
      system: 'hnswlib-node 3.0.0',
      setting: `M=16 efC=64 ef=${ef}`,
      ...m,
      ...(rows.length === 0 ? { buildS, memMiB, memNote: 'RSS delta', note: 'build 1 thread; B=64 = 64 sequential calls' } : {}),
    });
  }
  return rows;
}
