import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { InvalidArgumentError, WalCorruptError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import { ChunkReader } from './wal-io.js';

/** The write-ahead log's records and its on-disk format: framing, checksums, msgpack entries, recovery scan. */

/** One row of an upsert, as the log holds it. */
export interface WalUpsertItem {
  id: string;
  version: number;
  vectors: Float32Array[];
  content: string | null;
  metadata: Record<string, unknown>;
}

/** A write the log holds until the sync has persisted it. */
export type WalOp =
  { type: 'upsert'; collection: string; items: WalUpsertItem[] } | { type: 'delete'; collection: string; ids: string[] };

/** A pending write and its position in the log. */
export interface WalRecord {
  seq: number;
  op: WalOp;
}

/**
 * File header: magic and format version. The file then holds frames
 * `[u32 LE payload length][u32 LE CRC-32 of payload][payload]`, each payload one msgpack entry.
 */
export const MAGIC = Buffer.from('HSWAL1\n', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER = Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION])]);
export const FRAME_HEAD = 8;

/**
 * `useRecords: false` keeps the format plain msgpack (no shared structures to persist);
 * `copyBuffers` makes decoded binaries own their memory rather than pin the read buffer.
 */
const packr = new Packr({ useRecords: false, copyBuffers: true });

export const seqSchema = z.number().int().positive();

/** Ops accepted by `append`: the caller's input, checked strictly. */
export const appendOpSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('upsert'),
    collection: z.string().min(1),
    items: z
      .array(
        z.object({
          id: z.string().min(1).max(LIMITS.idLength),
          version: z.number().int().nonnegative(),
          vectors: z.array(z.instanceof(Float32Array)),
          content: z.string().nullable(),
          metadata: z.record(z.string(), z.unknown()),
        }),
      )
      .min(1),
  }),
  z.object({
    type: z.literal('delete'),
    collection: z.string().min(1),
    ids: z.array(z.string().min(1).max(LIMITS.idLength)).min(1),
  }),
]);

/**
 * Entries read back from the file. Only the shape is checked, not policy such as id length: a
 * record that an older build accepted must still replay.
 */
const storedEntrySchema = z.discriminatedUnion('k', [
  z.object({
    k: z.literal('p'),
    seq: seqSchema,
    op: z.discriminatedUnion('type', [
      z.object({
        type: z.literal('upsert'),
        collection: z.string(),
        items: z.array(
          z.object({
            id: z.string(),
            version: z.number(),
            vectors: z.array(z.instanceof(Uint8Array).refine((b) => b.byteLength % 4 === 0)),
            content: z.string().nullable(),
            metadata: z.record(z.string(), z.unknown()),
          }),
        ),
      }),
      z.object({ type: z.literal('delete'), collection: z.string(), ids: z.array(z.string()) }),
    ]),
  }),
  z.object({ k: z.literal('c'), seqs: z.array(seqSchema) }),
]);

export type StoredEntry = { k: 'p'; seq: number; op: WalOp } | { k: 'c'; seqs: number[] };

/** A pending record and where its frame lies in the file (checkpoints copy frames byte for byte). */
export interface PendingEntry {
  record: WalRecord;
  at: number;
  length: number;
}

export interface ScanResult {
  entries: Map<number, PendingEntry>;
  /** Offset just past the last valid frame. */
  validEnd: number;
  maxSeq: number;
  records: number;
  completed: number;
}

export function checkpointPath(path: string): string {
  return `${path}.checkpoint`;
}

export function checkHeader(head: Buffer, path: string): void {
  if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new WalCorruptError(`${path} is not a write-ahead log (bad magic)`);
  if (head[MAGIC.length] !== FORMAT_VERSION) {
    throw new WalCorruptError(`${path} has write-ahead log format ${head[MAGIC.length]}; this build reads ${FORMAT_VERSION}`);
  }
}

/**
 * Reads frames after the header until the file ends or a frame is torn (runs past the end), fails
 * its CRC, or does not decode: a crash mid-write leaves such a tail, and nothing after it was acknowledged.
 */
export async function scanFrames(fh: FileHandle, size: number): Promise<ScanResult> {
  const entries = new Map<number, PendingEntry>();
  let maxSeq = 0;
  let records = 0;
  let completed = 0;
  let offset = HEADER.length;
  const reader = new ChunkReader(fh, offset, size);
  for (;;) {
    const head = await reader.take(FRAME_HEAD);
    if (!head) break;
    const length = head.readUInt32LE(0);
    const payload = await reader.take(length);
    if (!payload || crc32(payload) !== head.readUInt32LE(4)) break;
    const entry = decodeEntry(payload);
    if (!entry) break;
    if (entry.k === 'p') {
      records++;
      entries.set(entry.seq, { record: { seq: entry.seq, op: entry.op }, at: offset, length: FRAME_HEAD + length });
      maxSeq = Math.max(maxSeq, entry.seq);
    } else {
      // In file order: a marker only retires records before it.
      for (const s of entry.seqs) {
        if (entries.delete(s)) completed++;
        if (s > maxSeq) maxSeq = s;
      }
    }
    offset += FRAME_HEAD + length;
  }
  return { entries, validEnd: offset, maxSeq, records, completed };
}

export function encodeFrame(entry: unknown): Buffer {
  const payload = packr.pack(entry);
  if (payload.length > 0xffff_ffff)
    throw new InvalidArgumentError(`write-ahead log: a record of ${payload.length} bytes is too large`);
  const frame = Buffer.allocUnsafe(FRAME_HEAD + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  payload.copy(frame, FRAME_HEAD);
  return frame;
}

export function decodeEntry(payload: Buffer): StoredEntry | undefined {
  let raw: unknown;
  try {
    raw = packr.unpack(payload);
  } catch {
    return undefined;
  }
  const parsed = storedEntrySchema.safeParse(raw);
  if (!parsed.success) return undefined;
  const e = parsed.data;
  if (e.k === 'c') return e;
  if (e.op.type === 'delete') return { k: 'p', seq: e.seq, op: e.op };
  const items = e.op.items.map((it) => ({ ...it, vectors: it.vectors.map(float32FromBytes) }));
  return { k: 'p', seq: e.seq, op: { ...e.op, items } };
}

/**
 * msgpackr does not round-trip a Float32Array as one, so vectors go as raw bytes: float32 in the
 * machine's order, little-endian on every platform this runs on (as in the segment files).
 */
export function toWireItem(item: WalUpsertItem): Omit<WalUpsertItem, 'vectors'> & { vectors: Uint8Array[] } {
  return { ...item, vectors: item.vectors.map((v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
}

/** Bytes back to floats, bit for bit, in a buffer of their own (a Float32Array needs 4-byte alignment). */
function float32FromBytes(bytes: Uint8Array): Float32Array {
  // With copyBuffers, msgpackr hands back a fresh exact-size buffer: adopt it rather than copy again.
  if (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength) return new Float32Array(bytes.buffer);
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
