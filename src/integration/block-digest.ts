import { createHash } from 'node:crypto';

/**
 * The order-independent digest of a collection, computed exactly as the NVM computes it in SQL
 * (`SqlNvmStore.digest`): per block, md5 over `id:version:` and each chunk's vector in pgvector's
 * binary form (int16 dim, int16 0, big-endian float32s), its first 60 bits as an integer, summed.
 */
export class DigestAccumulator {
  private sum = 0n;
  private _blocks = 0;

  add(id: string, version: number, vectors: readonly Float32Array[]): void {
    this.addHash(blockHash(id, version, vectors));
  }

  /** Adds a block whose {@link blockHash} is known. */
  addHash(hash: bigint): void {
    this.sum += hash;
    this._blocks++;
  }

  get blocks(): number {
    return this._blocks;
  }

  /** The sum as a decimal string (PostgreSQL's `numeric` text form). */
  get digest(): string {
    return this.sum.toString();
  }
}

/** One block's 60-bit hash (see {@link DigestAccumulator}). */
export function blockHash(id: string, version: number, vectors: readonly Float32Array[]): bigint {
  const h = createHash('md5').update(`${id}:${version}:`, 'utf8');
  for (const v of vectors) h.update(vectorSend(v));
  return BigInt(`0x${h.digest('hex').slice(0, 15)}`);
}

/** pgvector's binary form of a vector (`vector_send`). */
function vectorSend(v: Float32Array): Buffer {
  // Unpooled, so byteOffset is 0 and the float view below is aligned.
  const out = Buffer.allocUnsafeSlow(4 + 4 * v.length);
  out.writeInt16BE(v.length, 0);
  out.writeInt16BE(0, 2);
  new Float32Array(out.buffer, out.byteOffset + 4, v.length).set(v);
  // Whole-buffer byte swap of the floats to big-endian (the machine is little-endian).
  out.subarray(4).swap32();
  return out;
}
