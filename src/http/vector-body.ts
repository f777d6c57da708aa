import { InvalidArgumentError } from '../core/errors.js';

/**
 * A vector from a request: a JSON array copied once into a Float32Array, or base64 of
 * little-endian float32 bytes decoded straight into one (no per-number parsing).
 */
export function vectorFromBody(v: number[] | string, where: string): Float32Array {
  if (typeof v !== 'string') return Float32Array.from(v);
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length === 0 || bytes.length % 4 !== 0) {
    throw new InvalidArgumentError(`${where}: base64 vector decodes to ${bytes.length} bytes, not a whole number of float32s`);
  }
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) throw new InvalidArgumentError(`${where}[${i}] is ${out[i]}; vectors must hold finite numbers`);
  }
  return out;
}
