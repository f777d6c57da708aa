/** pgvector's text and binary forms of a vector, and the checks a stored vector must pass. */
import { DimensionMismatchError, InvalidVectorError } from '../core/errors.js';

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

/**
 * Decodes pgvector's binary form (`vector_send`): int16 dimensions, int16 unused, then
 * big-endian float4s — no decimal parsing, so reading is as exact as writing.
 */
export function vectorFromBinary(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dim = view.getInt16(0);
  if (bytes.byteLength !== 4 + dim * 4) throw new Error(`malformed vector: ${bytes.byteLength} bytes for ${dim} dimensions`);
  // One copy, then a native byte swap from big- to little-endian (x86 and ARM are little-endian).
  const out = new Float32Array(dim);
  const le = Buffer.from(out.buffer);
  le.set(bytes.subarray(4));
  le.swap32();
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
