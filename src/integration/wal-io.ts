import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDir } from '../core/sync-dir.js';

/** File I/O of the write-ahead log: whole reads and writes, chunked copies, durable directory entries. */

/** Reads during recovery and checkpoint copies go in chunks of this size. */
export const IO_CHUNK = 4 << 20;

/** Sequential reads of a file region through a buffer, so recovery does not do two reads per frame. */
export class ChunkReader {
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

export async function readInto(fh: FileHandle, target: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < target.length) {
    const { bytesRead } = await fh.read(target, off, target.length - off, position + off);
    if (bytesRead === 0) throw new Error(`unexpected end of file at ${position + off}`);
    off += bytesRead;
  }
}

export async function readExactly(fh: FileHandle, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  await readInto(fh, buf, position);
  return buf;
}

export async function writeFully(fh: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    off += bytesWritten;
  }
}

export async function copyRange(from: FileHandle, to: FileHandle, position: number, length: number): Promise<void> {
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
export async function syncNewEntries(dir: string, firstCreated: string | undefined): Promise<number> {
  await syncDir(dir);
  let syncs = 1;
  for (let d = dir; firstCreated !== undefined; d = dirname(d)) {
    await syncDir(dirname(d));
    syncs++;
    if (d === firstCreated || dirname(d) === d) break;
  }
  return syncs;
}
