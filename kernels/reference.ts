import type { Metric } from '../src/core/metric.js';

/** One hit of the reference search: a row and its score in the metric's own terms. */
export interface ReferenceHit {
  row: number;
  /** Cosine similarity, inner product, or L2 (Euclidean) distance, in float64. */
  score: number;
}

/** The metric's score of `q` against row `r` of `vectors`, computed in float64. */
export function referenceScore(metric: Metric, q: ArrayLike<number>, vectors: ArrayLike<number>, r: number, dim: number): number {
  const base = r * dim;
  let dot = 0;
  let qq = 0;
  let xx = 0;
  let d2 = 0;
  for (let j = 0; j < dim; j++) {
    const a = q[j];
    const b = vectors[base + j];
    dot += a * b;
    qq += a * a;
    xx += b * b;
    d2 += (a - b) * (a - b);
  }
  if (metric === 'ip') return dot;
  if (metric === 'l2') return Math.sqrt(d2);
  return dot / (Math.sqrt(qq) * Math.sqrt(xx));
}

/** True when score `a` ranks before `b` under `metric` (L2: smaller distance first). */
export function ranksBefore(metric: Metric, a: number, b: number): boolean {
  return metric === 'l2' ? a < b : a > b;
}

/**
 * Exact top-k in float64 over the rows for which `live(row)` holds: the reference that kernel
 * results are checked against. Ties are broken by row number.
 */
export function referenceSearch(
  metric: Metric,
  query: ArrayLike<number>,
  vectors: ArrayLike<number>,
  rows: number,
  dim: number,
  k: number,
  live: (row: number) => boolean = () => true,
): ReferenceHit[] {
  const hits: ReferenceHit[] = [];
  for (let r = 0; r < rows; r++) {
    if (live(r)) hits.push({ row: r, score: referenceScore(metric, query, vectors, r, dim) });
  }
  hits.sort((a, b) => (a.score === b.score ? a.row - b.row : ranksBefore(metric, a.score, b.score) ? -1 : 1));
  return hits.slice(0, k);
}
