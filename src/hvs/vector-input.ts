import type { Metric } from '../../kernels/types.js';
import { DimensionMismatchError, InvalidArgumentError, InvalidVectorError } from '../errors.js';

/** Vectors as callers hand them: one flat `n × dim` array, or one array per vector. */
export type VectorBatch = Float32Array | readonly Float32Array[];

/** Largest dimension a collection may have. */
export const MAX_DIM = 4096;

/**
 * Checks a batch (dimension, finiteness, and for cosine a non-zero norm) and returns it as one
 * flat `n × dim` array that the caller owns; cosine vectors come back normalised.
 * @param expected how many vectors the batch must hold, if known.
 */
export function toFlatBatch(
  batch: VectorBatch,
  dim: number,
  metric: Metric,
  what: string,
  expected?: number,
): { data: Float32Array; count: number } {
  let data: Float32Array;
  let count: number;
  if (batch instanceof Float32Array) {
    if (batch.length % dim !== 0) {
      throw new DimensionMismatchError(dim, batch.length, `${what}: flat batch length is not a multiple of the dimension`);
    }
    count = batch.length / dim;
    data = batch.slice();
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
  for (let i = 0; i < count; i++) {
    const base = i * dim;
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const x = data[base + j];
      if (!Number.isFinite(x)) {
        throw new InvalidVectorError(`${what}[${i}][${j}] is ${x}; vectors must hold finite numbers`, {
          details: { index: i, component: j },
        });
      }
      norm += x * x;
    }
    if (metric === 'cosine') {
      if (norm === 0) throw new InvalidVectorError(`${what}[${i}] is the zero vector; cosine needs a direction`);
      const inv = 1 / Math.sqrt(norm);
      for (let j = 0; j < dim; j++) data[base + j] *= inv;
    }
  }
  return { data, count };
}
