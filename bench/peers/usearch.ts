/**
 * usearch (HNSW, prebuilt binding) in the peers benchmark: connectivity 16, expansion_add 64,
 * expansion_search swept. The JS binding fixes expansion_search at construction (no setter), and a
 * loaded index keeps the constructed value: the index is built once, saved to a temporary file,
 * and viewed (memory-mapped) by a new Index per setting. B = 1 searches with 1 thread, B = 64 is
 * one batched call with 2 threads (usearch's multi-threaded batch search).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnnData, type AnnRow, BATCH, K, log, measure, mib, rss, timed } from './common.js';

export const USEARCH_EFS = [10, 20, 40, 80, 160, 320, 640];
const BUILD_THREADS = 2;
const BATCH_THREADS = 2;

interface Matches {
  keys: BigUint64Array;
}

export async function runUsearch(data: AnnData): Promise<AnnRow[]> {
  const { Index, MetricKind, ScalarKind } = await import('usearch');
  const dim = data.dim;
  const config = (ef: number) => ({
    dimensions: dim,
    metric: MetricKind.Cos,
    quantization: ScalarKind.F32,
    connectivity: 16,
    expansion_add: 64,
    expansion_search: ef,
    multi: false,
  });
  const dir = await mkdtemp(join(tmpdir(), 'bench-ann-usearch-'));
  const file = join(dir, 'index.usearch');
  try {
    const rssBefore = rss();
    const [built, buildS] = await timed(() => {
      const index = new Index(config(64));
      const chunk = 20_000;
      for (let off = 0; off < data.n; off += chunk) {
        const end = Math.min(data.n, off + chunk);
        const keys = new BigUint64Array(end - off);
        for (let i = 0; i < keys.length; i++) keys[i] = BigInt(off + i);
        index.add(keys, data.base.subarray(off * dim, end * dim), BUILD_THREADS);
        log(`usearch: ${end}/${data.n} added`);
      }
      return index;
    });
    const memMiB = mib(rss() - rssBefore);
    // Each setting maps the saved index again (the binding cannot unmap it): the peak is taken here.
    const peakMiB = mib(process.resourceUsage().maxRSS * 1024 - rssBefore);
    built.save(file);
    const fileMiB = mib((await stat(file)).size);
    const rows: AnnRow[] = [];
    for (const ef of USEARCH_EFS) {
      log(`usearch: expansion_search=${ef}`);
      const index = new Index(config(ef));
      index.view(file);
      const m = await measure(data, {
        one: (q) => Array.from((index.search(q, K, 1) as Matches).keys, Number),
        batch: (qs, nq) => {
          const r = index.search(qs, K, BATCH_THREADS) as Matches;
          if (nq === 1) return [Array.from(r.keys, Number)];
          return Array.from({ length: nq }, (_, i) => Array.from(r.keys.subarray(i * K, (i + 1) * K), Number));
        },
      });
      rows.push({
        data: data.name,
        system: 'usearch 2.26.2',
        setting: `M=16 efC=64 ef=${ef}`,
        ...m,
        ...(rows.length === 0
          ? {
              buildS,
              memMiB,
              memNote: `RSS delta; file ${fileMiB.toFixed(0)} MiB`,
              peakMiB,
              peakNote: 'process through the build',
              note: `build ${BUILD_THREADS} threads; B=1 1 thread, B=${BATCH} batched ${BATCH_THREADS} threads`,
            }
          : {}),
      });
    }
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
