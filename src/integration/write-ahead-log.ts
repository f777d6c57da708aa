import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { ClosedError, InvalidArgumentError, UnavailableError, WalCorruptError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import { syncDir } from '../core/sync-dir.js';

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

/** Options of {@link WriteAheadLog.open}. */
export interface WriteAheadLogOptions {
  /** Directory of the log file; created if missing. */
  dir: string;
  /** File name inside `dir` (a base name). Default `wal.log`. */
  fileName?: string;
}

/** What {@link WriteAheadLog.open} found in the file. */
export interface WalRecovery {
  /** Records read from the file, completed or not. */
  records: number;
  /** Of those, records a completion marker retired. */
  completed: number;
  /** Bytes cut from the end: a torn or corrupt tail left by a crash. */
  tornBytes: number;
}

/** Counters of {@link WriteAheadLog.stats}. */
export interface WalStats {
  /** Size of the log file. */
  bytes: number;
  /** Records appended and not yet completed. */
  pending: number;
  /** Records appended (made durable) since open. */
  appends: number;
  /** fsync/fdatasync calls since open (group commits, file creation, checkpoints). */
  fsyncs: number;
}

/**
 * File header: magic and format version. The file then holds frames
 * `[u32 LE payload length][u32 LE CRC-32 of payload][payload]`, each payload one msgpack entry.
 */
const MAGIC = Buffer.from('HSWAL1\n', 'latin1');
const FORMAT_VERSION = 1;
const HEADER = Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION])]);
const FRAME_HEAD = 8;
/** Reads during recovery and checkpoint copies go in chunks of this size. */
const IO_CHUNK = 4 << 20;

/**
 * `useRecords: false` keeps the format plain msgpack (no shared structures to persist);
 * `copyBuffers` makes decoded binaries own their memory rather than pin the read buffer.
 */
const packr = new Packr({ useRecords: false, copyBuffers: true });

const seqSchema = z.number().int().positive();

/** Ops accepted by `append`: the caller's input, checked strictly. */
const appendOpSchema = z.discriminatedUnion('type', [
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

type StoredEntry = { k: 'p'; seq: number; op: WalOp } | { k: 'c'; seqs: number[] };

/** A pending record and where its frame lies in the file (checkpoints copy frames byte for byte). */
interface PendingEntry {
  record: WalRecord;
  at: number;
  length: number;
}

/** A frame waiting for the next group commit. */
interface QueuedFrame {
  frame: Buffer;
  /** Applies the entry to the in-memory state once it is durable; gets the frame's file offset. */
  commit: (at: number) => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The local write-ahead log of `persist: false` writes. `append` makes a record durable (write +
 * fdatasync) before it resolves; the background sync later calls `complete` once PostgreSQL holds
 * it, and `open` replays what was appended but never completed. Appends that arrive while a write
 * is in flight share the next write and fsync (group commit).
 *
 * The log keeps appended ops by reference for {@link pending}: callers must not mutate them after
 * `append`. One process at a time may open a given file.
 */
export class WriteAheadLog {
  private readonly path: string;
  private readonly tmpPath: string;
  private readonly entries: Map<number, PendingEntry>;
  private fh: FileHandle;
  private size: number;
  private nextSeq: number;
  /** Highest seq written to the file; a checkpoint keeps it so seqs never go back. */
  private lastWrittenSeq: number;
  private queue: QueuedFrame[] = [];
  private flushScheduled = false;
  /** Tail of the serial chain of file work: group commits, checkpoints, close. */
  private io: Promise<void> = Promise.resolve();
  private failure: UnavailableError | undefined;
  private closing: Promise<void> | undefined;
  private appends = 0;
  private fsyncs: number;

  private constructor(
    readonly dir: string,
    fileName: string,
    fh: FileHandle,
    scan: ScanResult,
    fsyncs: number,
  ) {
    this.path = join(dir, fileName);
    this.tmpPath = checkpointPath(this.path);
    this.fh = fh;
    this.entries = scan.entries;
    this.size = scan.validEnd;
    this.lastWrittenSeq = scan.maxSeq;
    this.nextSeq = scan.maxSeq + 1;
    this.fsyncs = fsyncs;
  }

  /**
   * Opens (creating dir/file if needed), scans the file, truncates a torn or corrupt tail, returns
   * the log and what recovery found. A file that is not a write-ahead log → {@link WalCorruptError}.
   */
  static async open(opts: WriteAheadLogOptions): Promise<{ wal: WriteAheadLog; pending: WalRecord[]; recovery: WalRecovery }> {
    const o = { fileName: 'wal.log', ...opts };
    if (typeof o.dir !== 'string' || o.dir.length === 0)
      throw new InvalidArgumentError('write-ahead log: dir must be a non-empty string');
    if (typeof o.fileName !== 'string' || o.fileName.length === 0 || basename(o.fileName) !== o.fileName) {
      throw new InvalidArgumentError(`write-ahead log: fileName must be a plain file name, got ${JSON.stringify(o.fileName)}`);
    }
    const dir = resolve(o.dir);
    const firstCreated = await mkdir(dir, { recursive: true });
    const path = join(dir, o.fileName);
    // A checkpoint that crashed before its rename leaves its temp file; the log itself is intact.
    await rm(checkpointPath(path), { force: true });

    // 'a+': reads for the scan, appends that always land at the end (O_APPEND), truncation.
    const fh = await open(path, 'a+');
    try {
      let fsyncs = 0;
      const { size } = await fh.stat();
      let tornBytes = 0;
      let scan: ScanResult;
      const head = await readExactly(fh, Math.min(size, HEADER.length), 0);
      if (size < HEADER.length && head.equals(HEADER.subarray(0, size))) {
        // New file, or a crash while its header was written: start it (again).
        tornBytes = size;
        if (size > 0) await fh.truncate(0);
        await writeFully(fh, HEADER);
        await fh.datasync();
        fsyncs += 1 + (await syncNewEntries(dir, firstCreated));
        scan = { entries: new Map(), validEnd: HEADER.length, maxSeq: 0, records: 0, completed: 0 };
      } else {
        checkHeader(head, path);
        scan = await scanFrames(fh, size);
        tornBytes = size - scan.validEnd;
        if (tornBytes > 0) {
          // Cut the tail so that new frames follow valid ones; fdatasync makes the new size stick.
          await fh.truncate(scan.validEnd);
          await fh.datasync();
          fsyncs += 1;
        }
      }
      const wal = new WriteAheadLog(dir, o.fileName, fh, scan, fsyncs);
      return { wal, pending: wal.pending(), recovery: { records: scan.records, completed: scan.completed, tornBytes } };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /**
   * Appends a pending record; resolves with its seq once the bytes are fsync'd. Appends issued while
   * a write+fsync is in flight are batched into the next single write+fsync (group commit). A
   * malformed op → {@link InvalidArgumentError}; after a failed write or fsync every write rejects
   * with {@link UnavailableError} until the log is reopened.
   */
  async append(op: WalOp): Promise<number> {
    this.assertWritable();
    const checked = appendOpSchema.safeParse(op);
    if (!checked.success) {
      throw new InvalidArgumentError(`write-ahead log append: ${z.prettifyError(checked.error)}`, { cause: checked.error });
    }
    const seq = this.nextSeq++;
    const frame = encodeFrame({ k: 'p', seq, op: op.type === 'upsert' ? { ...op, items: op.items.map(toWireItem) } : op });
    await this.enqueue(frame, (at) => {
      this.entries.set(seq, { record: { seq, op }, at, length: frame.length });
      this.lastWrittenSeq = seq;
      this.appends++;
    });
    return seq;
  }

  /**
   * Appends completion markers for these seqs (group-committed the same way); a completed record is
   * not returned by recovery. Seqs that are not pending (completed already, or never appended) are
   * ignored, so retries are harmless.
   */
  async complete(seqs: readonly number[]): Promise<void> {
    this.assertWritable();
    const checked = z.array(seqSchema).safeParse(seqs);
    if (!checked.success) {
      throw new InvalidArgumentError(`write-ahead log complete: ${z.prettifyError(checked.error)}`, { cause: checked.error });
    }
    const retire = [...new Set(seqs)].filter((s) => this.entries.has(s));
    if (retire.length === 0) return;
    await this.enqueue(encodeFrame({ k: 'c', seqs: retire }), () => {
      for (const s of retire) this.entries.delete(s);
    });
  }

  /** Pending records in seq order (in memory; mirrors what recovery would return). */
  pending(): WalRecord[] {
    return Array.from(this.entries.values(), (e) => e.record);
  }

  /** Number of pending records. */
  get pendingCount(): number {
    return this.entries.size;
  }

  /**
   * Rewrites the log holding only pending records (their frames copied byte for byte): write a temp
   * file, fsync, rename over, fsync the directory. Appends during a checkpoint wait for it.
   */
  async checkpoint(): Promise<void> {
    this.assertWritable();
    await this.runIo(() => this.rewrite());
  }

  /** Size, pending count and I/O counters. */
  stats(): WalStats {
    return { bytes: this.size, pending: this.entries.size, appends: this.appends, fsyncs: this.fsyncs };
  }

  /**
   * Waits for in-flight and queued writes, closes the file; safe to call twice. append, complete and
   * checkpoint after close reject with {@link ClosedError}.
   */
  close(): Promise<void> {
    // Queued group commits are ahead of this on the I/O chain, so they finish first.
    this.closing ??= this.runIo(() => this.fh.close());
    return this.closing;
  }

  private assertWritable(): void {
    if (this.closing) throw new ClosedError('write-ahead log');
    if (this.failure) throw this.failure;
  }

  private runIo<T>(task: () => Promise<T>): Promise<T> {
    const run = this.io.then(task);
    this.io = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private enqueue(frame: Buffer, commit: (at: number) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, commit, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // flush() settles every frame it takes and never rejects.
        void this.runIo(() => this.flush());
      }
    });
  }

  /** One group commit: everything queued when it starts, in one write and one fdatasync. */
  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (this.failure) {
      for (const q of batch) q.reject(this.failure);
      return;
    }
    try {
      await writeFully(this.fh, Buffer.concat(batch.map((q) => q.frame)));
      await this.fh.datasync();
      this.fsyncs++;
    } catch (err) {
      // After a failed write or fsync the file's tail is unknown (and the kernel may have dropped
      // the dirty pages), so later frames could follow garbage: refuse writes until a reopen, whose
      // recovery cuts the tail.
      const failure = this.fail(err);
      for (const q of batch) q.reject(failure);
      return;
    }
    for (const q of batch) {
      q.commit(this.size);
      this.size += q.frame.length;
      q.resolve();
    }
  }

  /** Writes header + pending frames (copied from the current file) to a temp file and renames it over the log. */
  private async rewrite(): Promise<void> {
    if (this.failure) throw this.failure;
    const highestPending = Array.from(this.entries.keys()).pop() ?? 0;
    // Seqs continue after the highest one the file has seen, so keep it when its record goes away.
    const highWater = this.lastWrittenSeq > highestPending ? encodeFrame({ k: 'c', seqs: [this.lastWrittenSeq] }) : undefined;
    const moved: number[] = [];
    let size = HEADER.length;
    const tmp = await open(this.tmpPath, 'w');
    try {
      await writeFully(tmp, HEADER);
      // Contiguous frames are copied as one range.
      let runStart = -1;
      let runEnd = -1;
      for (const e of this.entries.values()) {
        if (e.at !== runEnd) {
          if (runEnd > runStart) await copyRange(this.fh, tmp, runStart, runEnd - runStart);
          runStart = e.at;
        }
        runEnd = e.at + e.length;
        moved.push(size);
        size += e.length;
      }
      if (runEnd > runStart) await copyRange(this.fh, tmp, runStart, runEnd - runStart);
      if (highWater) {
        await writeFully(tmp, highWater);
        size += highWater.length;
      }
      await tmp.sync();
      this.fsyncs++;
    } catch (err) {
      await tmp.close().catch(() => undefined);
      await rm(this.tmpPath, { force: true });
      throw err;
    }
    await tmp.close();
    try {
      await rename(this.tmpPath, this.path);
    } catch (err) {
      await rm(this.tmpPath, { force: true });
      throw err;
    }
    try {
      await syncDir(this.dir);
      this.fsyncs++;
      const next = await open(this.path, 'a+');
      const old = this.fh;
      this.fh = next;
      this.size = size;
      let i = 0;
      for (const e of this.entries.values()) e.at = moved[i++];
      await old.close();
    } catch (err) {
      // The new file is in place but this log may still hold the old one: appends would be lost.
      throw this.fail(err);
    }
  }

  /** Marks the log failed (the first cause wins) and returns the error later writes get. */
  private fail(err: unknown): UnavailableError {
    const message = `write-ahead log ${this.path}: a write failed; it refuses writes until reopened`;
    return (this.failure ??= new UnavailableError(message, { cause: err }));
  }
}

interface ScanResult {
  entries: Map<number, PendingEntry>;
  /** Offset just past the last valid frame. */
  validEnd: number;
  maxSeq: number;
  records: number;
  completed: number;
}

function checkpointPath(path: string): string {
  return `${path}.checkpoint`;
}

function checkHeader(head: Buffer, path: string): void {
  if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new WalCorruptError(`${path} is not a write-ahead log (bad magic)`);
  if (head[MAGIC.length] !== FORMAT_VERSION) {
    throw new WalCorruptError(`${path} has write-ahead log format ${head[MAGIC.length]}; this build reads ${FORMAT_VERSION}`);
  }
}

/**
 * Reads frames after the header until the file ends or a frame is torn (runs past the end), fails
 * its CRC, or does not decode: a crash mid-write leaves such a tail, and nothing after it was acknowledged.
 */
async function scanFrames(fh: FileHandle, size: number): Promise<ScanResult> {
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

function encodeFrame(entry: unknown): Buffer {
  const payload = packr.pack(entry);
  if (payload.length > 0xffff_ffff)
    throw new InvalidArgumentError(`write-ahead log: a record of ${payload.length} bytes is too large`);
  const frame = Buffer.allocUnsafe(FRAME_HEAD + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  payload.copy(frame, FRAME_HEAD);
  return frame;
}

function decodeEntry(payload: Buffer): StoredEntry | undefined {
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
function toWireItem(item: WalUpsertItem): Omit<WalUpsertItem, 'vectors'> & { vectors: Uint8Array[] } {
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

/** Sequential reads of a file region through a buffer, so recovery does not do two reads per frame. */
class ChunkReader {
  private buf = Buffer.alloc(0);

  constructor(
    private readonly fh: FileHandle,
    private pos: number,
    private readonly end: number,
  ) {}

  /** The next `n` bytes, or undefined when the region ends first. */
  async take(n: number): Promise<Buffer | undefined> {
    if (this.buf.length < n) {
      const available = this.buf.length + (this.end - this.pos);
      if (available < n) return undefined;
      const next = Buffer.allocUnsafe(Math.min(Math.max(n, IO_CHUNK), available));
      this.buf.copy(next);
      const more = next.length - this.buf.length;
      await readInto(this.fh, next.subarray(this.buf.length), this.pos);
      this.pos += more;
      this.buf = next;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

async function readInto(fh: FileHandle, target: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < target.length) {
    const { bytesRead } = await fh.read(target, off, target.length - off, position + off);
    if (bytesRead === 0) throw new Error(`unexpected end of file at ${position + off}`);
    off += bytesRead;
  }
}

async function readExactly(fh: FileHandle, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  await readInto(fh, buf, position);
  return buf;
}

async function writeFully(fh: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    off += bytesWritten;
  }
}

async function copyRange(from: FileHandle, to: FileHandle, position: number, length: number): Promise<void> {
  for (let done = 0; done < length;) {
    const chunk = await readExactly(from, Math.min(IO_CHUNK, length - done), position + done);
    await writeFully(to, chunk);
    done += chunk.length;
  }
}

/**
 * Makes a new file's directory entry durable (or a crash could lose the whole log), and those of
 * the directories `mkdir` created for it, up to `firstCreated`. Returns the number of fsyncs.
 */
async function syncNewEntries(dir: string, firstCreated: string | undefined): Promise<number> {
  await syncDir(dir);
  let syncs = 1;
  for (let d = dir; firstCreated !== undefined; d = dirname(d)) {
    await syncDir(dirname(d));
    syncs++;
    if (d === firstCreated || dirname(d) === d) break;
  }
  return syncs;
}
