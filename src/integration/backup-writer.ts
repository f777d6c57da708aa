import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { link, mkdir, open, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { basename, dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { BackupExistsError } from '../core/errors.js';
import { syncDir } from '../core/sync-dir.js';
import { frame, type FrameType, preamble } from './backup-format.js';

/**
 * Writes a backup file frame by frame, with backpressure, into a temporary file beside it; only
 * {@link finish} puts it in place (fsync'd, then linked to its name, which never replaces an
 * existing file), so a backup that fails or is aborted leaves nothing under its name.
 */
export class BackupWriter {
  private failure: Error | undefined;
  private closed = false;

  private constructor(
    private readonly file: string,
    private readonly tmp: string,
    private readonly file$: WriteStream,
    private readonly out: Writable,
    private readonly done: Promise<void>,
  ) {
    // Seen by the next write or by finish(); never an unhandled rejection meanwhile.
    done.catch((err: unknown) => (this.failure ??= err instanceof Error ? err : new Error(String(err))));
  }

  /** Starts a backup at `file` (gzip'd with `gzip`); {@link BackupExistsError} if the file exists. */
  static async create(file: string, opts: { gzip?: boolean } = {}): Promise<BackupWriter> {
    if (await exists(file)) throw new BackupExistsError(basename(file));
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.partial-${randomUUID().slice(0, 8)}`;
    const file$ = createWriteStream(tmp, { flags: 'wx' });
    await once(file$, 'open');
    const gzip = opts.gzip ? createGzip() : undefined;
    const done = gzip ? pipeline(gzip, file$) : finished(file$);
    const w = new BackupWriter(file, tmp, file$, gzip ?? file$, done);
    await w.write(preamble());
    return w;
  }

  /** Appends one frame. */
  writeFrame(type: FrameType, payload: Buffer): Promise<void> {
    return this.write(frame(type, payload));
  }

  /** Appends a JSON frame. */
  writeJson(type: FrameType, value: unknown): Promise<void> {
    return this.writeFrame(type, Buffer.from(JSON.stringify(value), 'utf8'));
  }

  /** Ends the file, makes it durable and puts it under its name; resolves to its size in bytes. */
  async finish(): Promise<number> {
    this.closed = true;
    this.out.end();
    await this.done;
    if (this.failure !== undefined) throw this.failure;
    const fh = await open(this.tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      // A link fails where the name is taken: a backup written meanwhile is never replaced.
      await link(this.tmp, this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BackupExistsError(basename(this.file), { cause: err });
      throw err;
    } finally {
      await rm(this.tmp, { force: true });
    }
    await syncDir(dirname(this.file));
    return (await stat(this.file)).size;
  }

  /** Drops the partial file; safe to call after {@link finish} or twice. */
  async abort(): Promise<void> {
    this.closed = true;
    this.out.destroy();
    this.file$.destroy();
    await this.done.catch(() => undefined);
    await rm(this.tmp, { force: true });
  }

  private async write(buf: Buffer): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new Error('backup writer is closed');
    if (!this.out.write(buf)) await once(this.out, 'drain');
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
