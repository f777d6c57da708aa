import { SnapshotCorruptError } from '../../core/errors.js';
import type { Calibration } from './calibrate.js';

/** The parts of an IVF segment a snapshot keeps beside its vectors: the trained lists. */
export interface IvfFileContents {
  nlist: number;
  dim: number;
  score: 0 | 1;
  calibration: Calibration;
  trainMs: number;
  centroids: Float32Array;
  offsets: Int32Array;
  blocks: Int32Array;
  scale: Float32Array;
  offset: Float32Array;
}

const MAGIC = 'HSIVF001';
const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/**
 * Layout (little-endian): magic "HSIVF001" | u32 JSON bytes | u32 reserved | JSON header
 * (nlist, dim, score, calibration, trainMs) padded to 8 | f32 centroids[nlist·dim] |
 * i32 offsets[nlist+1] | i32 blocks[nlist+1] | f32 scale[dim] | f32 offset[dim]. The codes are
 * not stored: they are encoded again from the vectors file with the same range (no retraining).
 */
export function encodeIvfFile(c: IvfFileContents): Buffer[] {
  const json = Buffer.from(
    JSON.stringify({ nlist: c.nlist, dim: c.dim, score: c.score, calibration: c.calibration, trainMs: c.trainMs }),
    'utf8',
  );
  const head = Buffer.alloc(16);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 8);
  const pad = Buffer.alloc(align8(json.length) - json.length);
  const bytes = (a: Float32Array | Int32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  return [head, json, pad, bytes(c.centroids), bytes(c.offsets), bytes(c.blocks), bytes(c.scale), bytes(c.offset)];
}

/** Reads what {@link encodeIvfFile} wrote, checking every size against the header. */
export function decodeIvfFile(buf: Buffer, file: string, dim: number, rows: number): IvfFileContents {
  const bad = (why: string): SnapshotCorruptError => new SnapshotCorruptError(`snapshot file ${file}: ${why}`);
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) throw bad('bad magic');
  const jsonBytes = buf.readUInt32LE(8);
  let header: Omit<IvfFileContents, 'centroids' | 'offsets' | 'blocks' | 'scale' | 'offset'>;
  try {
    header = JSON.parse(buf.toString('utf8', 16, 16 + jsonBytes)) as typeof header;
  } catch (err) {
    throw new SnapshotCorruptError(`snapshot file ${file}: IVF header is not valid JSON`, { cause: err });
  }
  const { nlist } = header;
  if (header.dim !== dim || !Number.isInteger(nlist) || nlist < 1) throw bad('IVF header does not match the collection');
  let at = 16 + align8(jsonBytes);
  const take = <T extends Float32Array | Int32Array>(ctor: new (b: ArrayBuffer) => T, n: number): T => {
    if (at + n * 4 > buf.length) throw bad('truncated IVF arrays');
    const out = new ctor(buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + n * 4) as ArrayBuffer);
    at += n * 4;
    return out;
  };
  const out: IvfFileContents = {
    ...header,
    centroids: take(Float32Array, nlist * dim),
    offsets: take(Int32Array, nlist + 1),
    blocks: take(Int32Array, nlist + 1),
    scale: take(Float32Array, dim),
    offset: take(Float32Array, dim),
  };
  if (at !== buf.length) throw bad(`size ${buf.length} does not match its header`);
  if (out.offsets[0] !== 0 || out.offsets[nlist] !== rows) throw bad('IVF lists do not cover the segment rows');
  return out;
}
