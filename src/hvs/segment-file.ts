import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { SnapshotCorruptError } from '../core/errors.js';

/** A file named by a snapshot manifest: its base name, size and CRC-32. */
export interface FileRef {
  file: string;
  bytes: number;
  crc32: number;
}

/** A fresh, unique name for a segment's vectors file. */
export function newVectorsFileName(): string {
  return `vec-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}.f32`;
}

/** Writes `parts` to `path`, optionally fsync'd; returns size and CRC-32. */
export async function writeParts(
  path: string,
  parts: readonly Uint8Array[],
  sync: boolean,
): Promise<{ bytes: number; crc: number }> {
  const fh = await open(path, 'w');
  let bytes = 0;
  let crc = 0;
  try {
    for (const p of parts) {
      crc = crc32(p, crc);
      bytes += p.length;
      let off = 0;
      while (off < p.length) {
        const { bytesWritten } = await fh.write(p, off, p.length - off);
        off += bytesWritten;
      }
    }
    if (sync) await fh.sync();
  } finally {
    await fh.close();
  }
  return { bytes, crc };
}

/** fsyncs a file that was written without it. */
export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Reads a whole file and checks it against its manifest entry; corrupt → {@link SnapshotCorruptError}. */
export async function readChecked(dir: string, ref: FileRef): Promise<Buffer> {
  const path = join(dir, ref.file);
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new SnapshotCorruptError(`snapshot file ${path} cannot be read`, { cause: err });
  }
  if (buf.length !== ref.bytes) {
    throw new SnapshotCorruptError(`snapshot file ${path} is ${buf.length} bytes, the manifest says ${ref.bytes} (truncated?)`);
  }
  if (crc32(buf) !== ref.crc32) throw new SnapshotCorruptError(`snapshot file ${path} fails its CRC-32 check`);
  return buf;
}

/** Checks that a snapshot file exists with the size its manifest gives (not its contents). */
export async function checkSize(dir: string, ref: FileRef): Promise<void> {
  const path = join(dir, ref.file);
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new SnapshotCorruptError(`snapshot file ${path} cannot be read`, { cause: err });
  }
  if (size !== ref.bytes) {
    throw new SnapshotCorruptError(`snapshot file ${path} is ${size} bytes, the manifest says ${ref.bytes} (truncated?)`);
  }
}

/**
 * The vectors of a sealed segment on disk: `rows × dim` little-endian float32, immutable once
 * written. Sealed segments keep their vectors here rather than in RAM (the device index holds the
 * copy that searches use); reads by id and compaction read the file, snapshots name it.
 */
export class VectorsFile {
  private fd: number | undefined;
  private synced: boolean;

  private constructor(
    readonly dir: string,
    private _ref: FileRef,
    readonly dim: number,
    synced: boolean,
  ) {
    this.synced = synced;
    this.fd = openSync(join(dir, _ref.file), 'r');
  }

  /** Name, size and (once synced) CRC-32 of the file. */
  get ref(): FileRef {
    return this._ref;
  }

  /**
   * Writes `rows × dim` floats to a new file in `dir`. Neither fsync'd nor checksummed yet: both
   * wait until a snapshot names the file ({@link sync}), off the write path.
   */
  static async create(dir: string, vectors: Float32Array, rows: number, dim: number): Promise<VectorsFile> {
    const file = newVectorsFileName();
    const bytes = new Uint8Array(vectors.buffer, vectors.byteOffset, rows * dim * 4);
    const fh = await open(join(dir, file), 'w');
    try {
      let off = 0;
      while (off < bytes.length) off += (await fh.write(bytes, off, bytes.length - off)).bytesWritten;
    } finally {
      await fh.close();
    }
    return new VectorsFile(dir, { file, bytes: bytes.length, crc32: -1 }, dim, false);
  }

  /** Adopts a file a snapshot named (already checked and fsync'd). */
  static adopt(dir: string, ref: FileRef, dim: number): VectorsFile {
    return new VectorsFile(dir, ref, dim, true);
  }

  get path(): string {
    return join(this.dir, this.ref.file);
  }

  /** Row `row`'s vector, read from the file (the page cache keeps hot rows in memory). */
  /**
   * The rows `rows` (ascending) in one buffer, `rows.length × dim` floats: runs of adjacent rows
   * are read in one go (the page cache usually holds the file: it was written or read recently).
   */
  readRows(rows: Int32Array): Float32Array {
    const out = new Float32Array(rows.length * this.dim);
    const bytes = new Uint8Array(out.buffer);
    const rowBytes = this.dim * 4;
    const fd = this.openFd();
    for (let i = 0; i < rows.length;) {
      let j = i + 1;
      while (j < rows.length && rows[j] === rows[j - 1] + 1) j++;
      const length = (j - i) * rowBytes;
      const n = readSync(fd, bytes, i * rowBytes, length, rows[i] * rowBytes);
      if (n !== length) throw new SnapshotCorruptError(`${this.path}: short read at row ${rows[i]}`);
      i = j;
    }
    return out;
  }

  readRow(row: number): Float32Array {
    const out = new Float32Array(this.dim);
    const bytes = new Uint8Array(out.buffer);
    const n = readSync(this.openFd(), bytes, 0, bytes.length, row * this.dim * 4);
    if (n !== bytes.length) throw new SnapshotCorruptError(`${this.path}: short read at row ${row}`);
    return out;
  }

  /** The whole file as floats (compaction). */
  async readAll(): Promise<Float32Array> {
    const buf = await readFile(this.path);
    if (buf.byteOffset % 4 === 0) return new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  }

  /** Makes the file durable and computes its CRC-32 before a manifest names it. */
  async sync(): Promise<FileRef> {
    if (this.synced) return this.ref;
    await syncFile(this.path);
    this._ref = { ...this._ref, crc32: crc32(await readFile(this.path)) };
    this.synced = true;
    return this.ref;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private openFd(): number {
    if (this.fd === undefined) throw new Error(`${this.path} is closed`);
    return this.fd;
  }
}
