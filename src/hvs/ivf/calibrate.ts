import { type IvfIndex, mulberry32, samplePicks } from './ivf-index.js';

/** Recall@k of the IVF search at one `nprobe`, measured at training time. */
export interface CalibrationPoint {
  nprobe: number;
  recall: number;
}

/** What {@link calibrate} measured, and the defaults it chose. */
export interface Calibration {
  k: number;
  /** Held-out queries measured. */
  queries: number;
  /** Rescored candidates per result slot (`candidates = ⌈k · rerank⌉`). */
  rerank: number;
  points: CalibrationPoint[];
  /** The recall the defaults were chosen for. */
  targetRecall: number;
  /** The smallest measured `nprobe` whose recall reached `targetRecall` plus a margin. */
  nprobe: number;
}

/** Recall asked of the defaults: a user who sets nothing gets recall@10 ≥ 0.95. */
export const DEFAULT_TARGET_RECALL = 0.95;
/** Calibration aims this much above the target, as its queries are a sample. */
const MARGIN = 0.03;

/** Recall at which the sweep stops: higher targets are served exactly. */
const SWEEP_DONE = 0.999;
/** The largest `nprobe` the sweep tries: a quarter of the lists (all of a small index's). */
const nlistShare = (nlist: number): number => Math.max(32, Math.floor(nlist / 4));

/** Rescored candidates per result slot by default. */
export const DEFAULT_RERANK = 4;

/** The `nprobe` values calibration tries: roughly √2 apart, up to `nlist`. */
export function nprobeSweep(nlist: number): number[] {
  const out: number[] = [];
  for (let p = 1; p < nlist; p = p < 4 ? p + 1 : Math.round(p * Math.SQRT2)) out.push(p);
  out.push(nlist);
  return out;
}

/**
 * Measures recall@k of the index against exact search over `queries` entries held out from it
 * (masked during the measurement, so no query finds itself), for a sweep of `nprobe`; the
 * default `nprobe` is the smallest whose recall reaches the target plus a margin (all lists if
 * none does: then the index answers exactly).
 */
export async function calibrate(
  index: IvfIndex,
  opts: {
    queries?: number;
    /** The entries to hold out as queries (default: `queries` live entries drawn at random). */
    entries?: Int32Array;
    k?: number;
    rerank?: number;
    targetRecall?: number;
    seed?: number;
    threads?: number;
  } = {},
): Promise<Calibration> {
  const k = opts.k ?? 10;
  const rerank = opts.rerank ?? DEFAULT_RERANK;
  const targetRecall = opts.targetRecall ?? DEFAULT_TARGET_RECALL;
  const live: number[] = [];
  for (let e = 0; e < index.rows; e++) if (index.isLive(e)) live.push(e);
  const nq = Math.min(opts.queries ?? 500, Math.floor(live.length / 10));
  if (nq === 0 || live.length - nq < k) {
    return { k, queries: 0, rerank, points: [], targetRecall, nprobe: index.nlist };
  }
  const given = opts.entries
    ? Array.from(opts.entries)
        .filter((e) => index.isLive(e))
        .slice(0, nq)
    : [];
  const picks =
    given.length === nq ? given : Array.from(samplePicks(live.length, nq, mulberry32(opts.seed ?? 7)), (i) => live[i]);
  const dim = index.dim;
  const queries = new Float32Array(nq * dim);
  const mask = new Float32Array(index.rows);
  picks.forEach((e, i) => {
    queries.set(index.vector(e), i * dim);
    mask[e] = -Infinity;
  });
  const truth = await index.exact(queries, nq, k, mask, opts.threads);
  const sets = Array.from({ length: nq }, (_, q) => new Set(truth.rows.subarray(q * k, (q + 1) * k)));
  const points: CalibrationPoint[] = [];
  for (const nprobe of nprobeSweep(index.nlist)) {
    const r = await index.search(queries, nq, k, nprobe, Math.ceil(k * rerank), mask, opts.threads);
    let found = 0;
    for (let q = 0; q < nq; q++) for (let j = 0; j < k; j++) if (sets[q].has(r.rows[q * k + j])) found++;
    const recall = found / (nq * k);
    points.push({ nprobe, recall });
    // Past 0.999 nothing is left to choose between (ties in the exact scores can keep recall just
    // below 1 to the last list); past a quarter of the lists the sweep would cost more than the
    // exact searches, and a target not reached by then is served exactly.
    if (recall >= SWEEP_DONE || nprobe >= nlistShare(index.nlist)) break;
  }
  const chosen = points.find((p) => p.recall >= Math.min(1, targetRecall + MARGIN));
  return { k, queries: nq, rerank, points, targetRecall, nprobe: chosen?.nprobe ?? index.nlist };
}

/**
 * The `nprobe` for a query that asks for `recall`: the smallest calibrated one that reached it
 * (plus the margin), or every list (an exact scan) when none did.
 */
export function nprobeFor(c: Calibration, nlist: number, recall: number): number {
  const p = c.points.find((x) => x.recall >= Math.min(1, recall + MARGIN));
  return p?.nprobe ?? nlist;
}
