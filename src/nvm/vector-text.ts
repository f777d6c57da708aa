import { DimensionMismatchError, InvalidVectorError } from '../errors.js';

/**
 * pgvector's text form of a vector. Each float32 is written as the shortest decimal of its
 * exact value, which PostgreSQL parses back to the same float32: vectors round-trip bit for bit.
 */
export function vectorToText(v: Float32Array): string {
  let s = '[';
  // String(-0) is "0": the sign of zero is written out so that it survives too.
  for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + (Object.is(v[i], -0) ? '-0' : String(v[i]));
  return s + ']';
}

/** Parses pgvector's text form into a Float32Array. */
export function vectorFromText(text: string): Float32Array {
  const body = text.slice(1, -1);
  if (body.length === 0) return new Float32Array(0);
  const parts = body.split(',');
  const out = new Float32Array(parts.length);
  for (let i = 0; i < parts.length; i++) out[i] = Number(parts[i]);
  return out;
}

/** Checks one block's chunk vectors against the collection's dimension and for finiteness. */
export function checkChunkVectors(vectors: readonly Float32Array[], dim: number, where: string): void {
  vectors.forEach((v, c) => {
    if (!(v instanceof Float32Array)) throw new InvalidVectorError(`${where}.vectors[${c}]: expected a Float32Array`);
    if (v.length !== dim) throw new DimensionMismatchError(dim, v.length, `${where}.vectors[${c}]`);
    for (let j = 0; j < dim; j++) {
      if (!Number.isFinite(v[j]))
        throw new InvalidVectorError(`${where}.vectors[${c}][${j}] is ${v[j]}; vectors must hold finite numbers`);
    }
  });
}
