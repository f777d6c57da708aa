/**
 * The backup file (the L5 tier): an 8-byte magic and a format version, then frames, each
 * `type (u8) · length (u32 LE) · payload · crc32 (u32 LE) of type, length and payload`:
 *
 * - `header`: JSON {@link BackupHeader} (the lsn the copy is consistent at, each collection's shape);
 * - per collection, in the header's order: `collection` (JSON `{name}`), `blocks` frames, then
 *   `collection-end` (JSON {@link BackupCollectionEnd}: its block count and digest);
 * - `end` (JSON `{collections, blocks}`): a file without it is truncated.
 *
 * A `blocks` payload is `count (u32)` then per block: id, name, content, metadata (JSON) as
 * `length (i32, -1 for null) · UTF-8`, the version (f64), the chunk count (u32) and the chunk
 * vectors as raw little-endian float32s (`chunks × dim`). The whole file may be gzip'd.
 */
import { crc32 } from 'node:zlib';
import { BackupCorruptError } from '../core/errors.js';
import type { Metric } from '../core/metric.js';
import type { EncoderRef, StoredBlock } from '../nvm/nvm-store.js';

export const BACKUP_MAGIC = Buffer.from('HSBACKUP', 'latin1');
export const BACKUP_FORMAT = 1;
/** Bytes before the first frame: the magic and the u32 format version. */
export const PREAMBLE_BYTES = BACKUP_MAGIC.length + 4;
/** A frame's type and length, and its checksum. */
export const FRAME_HEAD_BYTES = 5;
export const FRAME_TAIL_BYTES = 4;
/** Larger frames are refused before anything is allocated for them (a corrupt length). */
export const MAX_FRAME_BYTES = 256 * 2 ** 20;
/** A `blocks` frame is sent once its payload reaches this size. */
export const BLOCKS_FRAME_BYTES = 4 * 2 ** 20;

export const FRAME = { header: 1, collection: 2, blocks: 3, collectionEnd: 4, end: 5 } as const;
export type FrameType = (typeof FRAME)[keyof typeof FRAME];

/** A collection as a backup records it: what restoring it needs to recreate it. */
export interface BackupCollection {
  name: string;
  dim: number;
  metric: Metric;
  encoder?: EncoderRef;
  /** Blocks in the backup. */
  blocks: number;
}

/** The first frame of a backup. */
export interface BackupHeader {
  format: number;
  /** ISO-8601. */
  createdAt: string;
  /** The change-log position the copy is consistent at: every write up to it is in, none after. */
  lsn: number;
  collections: BackupCollection[];
}

/** The frame that closes a collection. */
export interface BackupCollectionEnd {
  name: string;
  blocks: number;
  /** The collection's digest (as `verifyConsistency` and the NVM compute it). */
  digest: string;
}

/** One frame: type, length, payload, checksum. */
export function frame(type: FrameType, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEAD_BYTES + payload.length + FRAME_TAIL_BYTES);
  out.writeUInt8(type, 0);
  out.writeUInt32LE(payload.length, 1);
  payload.copy(out, FRAME_HEAD_BYTES);
  out.writeUInt32LE(crc32(out.subarray(0, FRAME_HEAD_BYTES + payload.length)), FRAME_HEAD_BYTES + payload.length);
  return out;
}

/** The preamble: magic and format version. */
export function preamble(): Buffer {
  const out = Buffer.alloc(PREAMBLE_BYTES);
  BACKUP_MAGIC.copy(out, 0);
  out.writeUInt32LE(BACKUP_FORMAT, BACKUP_MAGIC.length);
  return out;
}

/** Encodes blocks of a collection of dimension `dim` as one `blocks` payload. */
export function encodeBlocks(blocks: readonly StoredBlock[], dim: number): Buffer {
  const parts: Buffer[] = [Buffer.allocUnsafe(4)];
  parts[0].writeUInt32LE(blocks.length, 0);
  const text = (s: string | null): void => {
    const len = Buffer.allocUnsafe(4);
    if (s === null) {
      len.writeInt32LE(-1, 0);
      parts.push(len);
      return;
    }
    const bytes = Buffer.from(s, 'utf8');
    len.writeInt32LE(bytes.length, 0);
    parts.push(len, bytes);
  };
  for (const b of blocks) {
    text(b.id);
    text(b.name);
    text(b.content);
    text(JSON.stringify(b.metadata));
    const fixed = Buffer.allocUnsafe(12);
    fixed.writeDoubleLE(b.version, 0);
    fixed.writeUInt32LE(b.vectors.length, 8);
    parts.push(fixed);
    const vectors = Buffer.allocUnsafe(b.vectors.length * dim * 4);
    // One copy per chunk of its bytes as they are (the machine is little-endian, like the format).
    b.vectors.forEach((v, i) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).copy(vectors, i * dim * 4));
    parts.push(vectors);
  }
  return Buffer.concat(parts);
}

/** Decodes a `blocks` payload; {@link BackupCorruptError} where it does not add up. */
export function decodeBlocks(payload: Buffer, dim: number, where: string): StoredBlock[] {
  let o = 0;
  const need = (n: number): void => {
    if (o + n > payload.length) throw new BackupCorruptError(`${where}: a blocks frame ends inside a block`);
  };
  const u32 = (): number => {
    need(4);
    const v = payload.readUInt32LE(o);
    o += 4;
    return v;
  };
  const text = (): string | null => {
    need(4);
    const len = payload.readInt32LE(o);
    o += 4;
    if (len === -1) return null;
    need(len);
    const s = payload.toString('utf8', o, o + len);
    o += len;
    return s;
  };
  const count = u32();
  const out: StoredBlock[] = [];
  for (let i = 0; i < count; i++) {
    const id = text();
    const name = text();
    const content = text();
    const metadata = text();
    need(12);
    const version = payload.readDoubleLE(o);
    const chunks = payload.readUInt32LE(o + 8);
    o += 12;
    if (id === null || metadata === null || !Number.isSafeInteger(version) || version < 1) {
      throw new BackupCorruptError(`${where}: block ${i} of a blocks frame is malformed`);
    }
    need(chunks * dim * 4);
    const vectors: Float32Array[] = [];
    for (let c = 0; c < chunks; c++) {
      // A copy: aligned, and independent of the frame's buffer.
      const v = new Float32Array(dim);
      Buffer.from(v.buffer).set(payload.subarray(o, o + dim * 4));
      o += dim * 4;
      vectors.push(v);
    }
    out.push({ id, name, content, metadata: parseJson(metadata, where) as Record<string, unknown>, version, vectors });
  }
  if (o !== payload.length) throw new BackupCorruptError(`${where}: a blocks frame has ${payload.length - o} bytes too many`);
  return out;
}

/** A JSON payload; {@link BackupCorruptError} if it is not JSON. */
export function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BackupCorruptError(`${where}: malformed JSON in the backup`, { cause: err });
  }
}
