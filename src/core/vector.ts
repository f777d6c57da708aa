import type { Metric } from './metric.js';
import { DimensionMismatchError, InvalidArgumentError, InvalidVectorError } from './errors.js';

/** Vectors as callers hand them: one flat `n × dim` array, or one array per vector. */
export type VectorBatch = Float32Array | readonly Float32Array[];

/** A checked batch: one flat `count × dim` array and, for cosine, each row's `1/‖x‖`. */
export interface CheckedBatch {
  /** The caller's flat array itself (not copied), or one concatenation of its vectors. */
  data: Float32Array;
  count: number;
  /** Per-row scale that normalises the row (cosine only). */
  scale: Float32Array | undefined;
}

/**
 * Checks a batch (dimension, finiteness, and for cosine a non-zero norm) without copying a flat
 * input: the rows are copied once, later, where they are stored.
 * @param expected how many vectors the batch must hold, if known.
 * @param row how a row is named in messages (default `${what}[i]`), e.g. `items[i].vector`.
 */
export function checkBatch(
  batch: VectorBatch,
  dim: number,
  metric: Metric,
  what: string,
  expected?: number,
  row: (i: number) => string = (i) => `${what}[${i}]`,
): CheckedBatch {
  let data: Float32Array;
  let count: number;
  if (batch instanceof Float32Array) {
    if (batch.length % dim !== 0) {
      throw new DimensionMismatchError(dim, batch.length, `${what}: flat batch length is not a multiple of the dimension`);
    }
    count = batch.length / dim;
    data = batch;
  } else if (Array.isArray(batch)) {
    count = batch.length;
    data = new Float32Array(count * dim);
    for (let i = 0; i < count; i++) {
      const v: unknown = batch[i];
      if (!(v instanceof Float32Array)) {
        throw new InvalidArgumentError(`${what}[${i}]: expected a Float32Array`);
      }
      if (v.length !== dim) throw new DimensionMismatchError(dim, v.length, `${what}[${i}]`);
      data.set(v, i * dim);
    }
  } else {
    throw new InvalidArgumentError(`${what}: expected a Float32Array or an array of Float32Array`);
  }
  if (count === 0) throw new InvalidArgumentError(`${what}: the batch is empty`);
  if (expected !== undefined && count !== expected) {
    throw new InvalidArgumentError(`${what}: expected ${expected} vectors, got ${count}`);
  }
  const scale = metric === 'cosine' ? new Float32Array(count) : undefined;
  for (let i = 0; i < count; i++) {
    const base = i * dim;
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += data[base + j] * data[base + j];
    // One pass: a NaN or ±Infinity anywhere makes the float64 sum non-finite (float32 values
    // cannot overflow it), and only then is the offending component looked for.
    if (!Number.isFinite(norm)) {
      let j = 0;
      while (j < dim && Number.isFinite(data[base + j])) j++;
      throw new InvalidVectorError(`${row(i)}[${j}] is ${data[base + j]}; vectors must hold finite numbers`, {
        details: { index: i, component: j },
      });
    }
    if (scale) {
      if (norm === 0)
        throw new InvalidVectorError(`${row(i)} is the zero vector; cosine needs a direction`, { details: { index: i } });
      scale[i] = unitScale(norm);
    }
  }
  return { data, count, scale };
}

/**
 * Norms² this close to 1 count as unit already: such a row is stored as given. Normalising is
 * then idempotent, so a vector normalised once (by the integration layer, before it reaches the
 * NVM) keeps the same bytes in both tiers, and their digests agree.
 */
const UNIT_TOLERANCE = 1e-5;

/** The factor that normalises a row of squared norm `norm2`: exactly 1 when it is unit already. */
export function unitScale(norm2: number): number {
  return Math.abs(norm2 - 1) < UNIT_TOLERANCE ? 1 : 1 / Math.sqrt(norm2);
}

/** Copies rows `[from, from + count)` of a checked batch into `dst` at `at`, normalising for cosine. */
export function copyRows(b: CheckedBatch, dim: number, from: number, count: number, dst: Float32Array, at: number): void {
  const src = b.data.subarray(from * dim, (from + count) * dim);
  if (!b.scale) {
    dst.set(src, at);
    return;
  }
  for (let r = 0; r < count; r++) {
    const inv = b.scale[from + r];
    const o = at + r * dim;
    const s = r * dim;
    for (let j = 0; j < dim; j++) dst[o + j] = src[s + j] * inv;
  }
}

/**
 * Query vectors checked once, where they enter (the query router): one flat `count × dim` array
 * the batch owns, normalised for cosine. The tiers below take it as it is, without checking or
 * copying it again.
 */
export class QueryBatch {
  private constructor(
    readonly data: Float32Array,
    readonly count: number,
    readonly dim: number,
    readonly metric: Metric,
  ) {}

  /** Checks a batch and makes its one copy (normalising for cosine while copying). */
  static of(batch: VectorBatch, dim: number, metric: Metric, what = 'queries'): QueryBatch {
    const checked = checkBatch(batch, dim, metric, what);
    // checkBatch already concatenated an array of vectors into a fresh buffer: normalise it in
    // place. A flat array is the caller's: copy it once.
    const data = batch instanceof Float32Array ? new Float32Array(checked.count * dim) : checked.data;
    copyRows(checked, dim, 0, checked.count, data, 0);
    return new QueryBatch(data, checked.count, dim, metric);
  }

  /** Row `i`, a view (not a copy). */
  row(i: number): Float32Array {
    return this.data.subarray(i * this.dim, (i + 1) * this.dim);
  }

  /** Every row, as views. */
  rows(): Float32Array[] {
    return Array.from({ length: this.count }, (_, i) => this.row(i));
  }
}
