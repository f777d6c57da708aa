import { endianness } from 'node:os';
import ort from 'onnxruntime-node';

/** Little-endian hosts (all that Node ships for) can write int64 inputs through an int32 view. */
const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * One reusable int32 or int64 input buffer (onnxruntime takes the model's own integer type), grown
 * as buckets need and never shrunk. Filled with typed-array `fill`/`set`; int64 token ids are
 * written as low words through an int32 view, with no BigInt per token.
 */
export class IntFeed {
  private wide = new BigInt64Array(0);
  private narrow = new Int32Array(0);

  constructor(readonly type: 'int32' | 'int64') {}

  /** Makes room for `n` values, all set to `value` (a non-negative int32). */
  reset(n: number, value: number): void {
    if (this.type === 'int64') {
      if (this.wide.length < n) {
        this.wide = new BigInt64Array(Math.max(n, this.wide.length * 2, 1024));
        this.narrow = new Int32Array(this.wide.buffer);
      }
      this.wide.fill(BigInt(value), 0, n);
    } else {
      if (this.narrow.length < n) this.narrow = new Int32Array(Math.max(n, this.narrow.length * 2, 1024));
      this.narrow.fill(value, 0, n);
    }
  }

  fill(value: number, start: number, end: number): void {
    if (this.type === 'int64') this.wide.fill(BigInt(value), start, end);
    else this.narrow.fill(value, start, end);
  }

  /** Writes non-negative int32 values at `offset`, over values written by `reset`. */
  set(values: readonly number[], offset: number): void {
    if (this.type === 'int32') {
      this.narrow.set(values, offset);
    } else if (LITTLE_ENDIAN) {
      const view = this.narrow;
      for (let j = 0; j < values.length; j++) view[2 * (offset + j)] = values[j];
    } else {
      for (let j = 0; j < values.length; j++) this.wide[offset + j] = BigInt(values[j]);
    }
  }

  /** A copy of the first `n` values' bytes (for a transfer to a worker thread). */
  take(n: number): ArrayBuffer {
    return this.type === 'int64' ? this.wide.slice(0, n).buffer : this.narrow.slice(0, n).buffer;
  }

  tensor(rows: number, cols: number): ort.Tensor {
    const n = rows * cols;
    return this.type === 'int64'
      ? new ort.Tensor('int64', this.wide.subarray(0, n), [rows, cols])
      : new ort.Tensor('int32', this.narrow.subarray(0, n), [rows, cols]);
  }
}
