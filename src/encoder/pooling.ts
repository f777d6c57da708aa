import { ConfigError } from '../core/errors.js';
import type { Pooling } from './onnx-encoder-options.js';

/** How a model's output becomes sentence vectors. */
export interface PoolingOptions {
  pooling: Pooling;
  /** L2-normalise each vector. */
  normalize: boolean;
  /** The model file, for error messages. */
  modelPath: string;
}

/**
 * Pools `[b, seq, dim]` token vectors (or passes through `[b, dim]` sentence vectors) and
 * normalises; `lengths[r]` is the count of row `r`'s real (unpadded) tokens.
 */
export function poolVectors(
  data: Float32Array,
  dims: readonly number[],
  lengths: readonly number[],
  opts: PoolingOptions,
): Float32Array[] {
  const b = lengths.length;
  const dim = dims[dims.length - 1];
  const seq = dims.length === 3 ? dims[1] : 1;
  if ((dims.length !== 3 && dims.length !== 2) || dims[0] !== b || data.length !== b * seq * dim) {
    throw new ConfigError(`${opts.modelPath}: unexpected output shape [${dims.join(', ')}]`);
  }
  const acc = new Float64Array(dim);
  const out: Float32Array[] = [];
  for (let r = 0; r < b; r++) {
    const base = r * seq * dim;
    const v = new Float32Array(dim);
    if (dims.length === 2 || opts.pooling === 'cls') {
      v.set(data.subarray(base, base + dim));
    } else {
      // Only the text's own tokens: padding positions never enter the mean.
      const len = lengths[r];
      acc.fill(0);
      for (let t = 0; t < len; t++) {
        const off = base + t * dim;
        for (let k = 0; k < dim; k++) acc[k] += data[off + k];
      }
      for (let k = 0; k < dim; k++) v[k] = acc[k] / len;
    }
    if (opts.normalize) {
      let norm = 0;
      for (let k = 0; k < dim; k++) norm += v[k] * v[k];
      // As torch's F.normalize: an all-zero vector stays zero instead of becoming NaN.
      const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
      for (let k = 0; k < dim; k++) v[k] *= scale;
    }
    out.push(v);
  }
  return out;
}
