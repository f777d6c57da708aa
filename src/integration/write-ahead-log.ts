import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import {
  ClosedError,
  type HyperSyncError,
  InsufficientStorageError,
  InvalidArgumentError,
  UnavailableError,
} from '../core/errors.js';
import { syncDir } from '../core/sync-dir.js';
import {
  appendOpSchema,
  checkHeader,
  checkpointPath,
  encodeFrame,
  HEADER,
  type PendingEntry,
  scanFrames,
  type ScanResult,
  seqSchema,
  toWireItem,
  type WalOp,
  type WalRecord,
} from './wal-format.js';
import { copyRange, readExactly, syncNewEntries, writeFully } from './wal-io.js';

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
    } catch (err) {
      if (isDiskFull(err)) {
        // Nothing after `size` was acknowledged: cut what part of the batch reached the file and
        // the log stays usable, refusing writes only while the disk is full.
        const full = await this.cutAfterDiskFull(err);
        for (const q of batch) q.reject(full);
        return;
      }
      const failure = this.fail(err);
      for (const q of batch) q.reject(failure);
      return;
    }
    try {
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

  /**
   * After a write that found the disk full: truncates the file back to its last acknowledged
   * frame and returns the error for the batch. If the cut itself fails, the tail is unknown and
   * the log fails as after any other write error.
   */
  private async cutAfterDiskFull(err: unknown): Promise<HyperSyncError> {
    try {
      await this.fh.truncate(this.size);
      await this.fh.datasync();
    } catch (cutErr) {
      return this.fail(cutErr);
    }
    return new InsufficientStorageError(
      "the write-ahead log's disk is full: the write was not stored; writes are accepted again once space is freed",
      { cause: err },
    );
  }

  /** Marks the log failed (the first cause wins) and returns the error later writes get. */
  private fail(err: unknown): UnavailableError {
    const message = `write-ahead log ${this.path}: a write failed; it refuses writes until reopened`;
    return (this.failure ??= new UnavailableError(message, { cause: err }));
  }
}

/** A write refused for lack of space (or quota). */
function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
