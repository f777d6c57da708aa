import type { RowMask, SearchKernel } from '../../kernels/search-kernel.js';
import { type TopKResult } from '../../kernels/types.js';
import { type Metric } from '../core/metric.js';
import type { SearchHit } from '../core/search-hit.js';
import { IvfSegment, type IvfProbe } from './ivf/ivf-segment.js';
import { SealedSegment } from './sealed-segment.js';
import type { Segment } from './segment.js';
import { mergeTopK } from './top-k-merge.js';

/**
 * Batched k-nearest-neighbour search fanned out over `segments` and merged on the host; hits best
 * first (highest similarity, or smallest L2 distance). `data` holds `batch` checked query rows as
 * the kernel takes them (normalised for cosine). With `filtered`, only the segments it names are
 * searched, each over the rows its {@link RowMask} lets through. With `probe`, an IVF segment is
 * searched approximately (its lists' codes, then exact rescoring); without, exactly.
 */
export async function searchSegments(
  kernel: SearchKernel,
  allSegments: Iterable<Segment>,
  data: Float32Array,
  batch: number,
  k: number,
  metric: Metric,
  dim: number,
  filtered?: ReadonlyMap<Segment, RowMask>,
  probe?: IvfProbe,
): Promise<SearchHit[][]> {
  const segments = [...allSegments].filter((s) => s.rows - s.tombstones > 0 && (!filtered || filtered.has(s)));
  // Sealed segments go to the kernel in one batched call (one round trip per worker thread)
  // while growing segments are searched here, at the same time.
  // A sealed segment whose few matching rows are gathered is searched on its own, like the others.
  const batched = (s: Segment): s is SealedSegment => s instanceof SealedSegment && !filtered?.get(s)?.select;
  const sealed = segments.filter(batched);
  const others = segments.filter((s) => !batched(s));
  for (const s of sealed) s.acquire();
  let parts: TopKResult[];
  try {
    const [a, b] = await Promise.all([
      sealed.length > 0
        ? kernel.searchIndexes(
            sealed.map((s) => s.searchItem(filtered?.get(s))),
            data,
            batch,
            k,
          )
        : [],
      Promise.all(
        others.map((seg) =>
          seg instanceof IvfSegment && probe
            ? seg.searchApprox(data, batch, k, probe, filtered?.get(seg))
            : seg.search(data, batch, k, filtered?.get(seg)),
        ),
      ),
    ]);
    parts = [...a, ...b];
  } finally {
    for (const s of sealed) await s.releaseRef();
  }
  const ordered: Segment[] = [...sealed, ...others];
  const queryNorms = metric === 'l2' ? squaredNorms(data, batch, dim) : undefined;
  const results: SearchHit[][] = [];
  for (let q = 0; q < batch; q++) {
    const hits: SearchHit[] = [];
    for (const slot of mergeTopK(parts, q, k)) {
      const seg = ordered[slot.part];
      const score = queryNorms ? Math.sqrt(Math.max(0, queryNorms[q] - slot.score)) : slot.score;
      hits.push({ id: seg.ids[slot.row], score, version: seg.versions[slot.row] });
    }
    results.push(hits);
  }
  return results;
}

function squaredNorms(data: Float32Array, batch: number, dim: number): Float64Array {
  const out = new Float64Array(batch);
  for (let q = 0; q < batch; q++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[q * dim + j] * data[q * dim + j];
    out[q] = s;
  }
  return out;
}
