import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { crc32, createGunzip } from 'node:zlib';
import { z } from 'zod';
import { BackupCorruptError } from '../core/errors.js';
import { METRICS } from '../core/metric.js';
import type { StoredBlock } from '../nvm/nvm-store.js';
import {
  BACKUP_FORMAT,
  BACKUP_MAGIC,
  type BackupCollection,
  type BackupCollectionEnd,
  type BackupHeader,
  decodeBlocks,
  FRAME,
  FRAME_HEAD_BYTES,
  FRAME_TAIL_BYTES,
  type FrameType,
  MAX_FRAME_BYTES,
  parseJson,
  PREAMBLE_BYTES,
} from './backup-format.js';
import { DigestAccumulator } from './block-digest.js';

/** What {@link readBackup} yields, in file order. */
export type BackupEvent =
  | { kind: 'header'; header: BackupHeader }
  | { kind: 'collection'; collection: BackupCollection }
  | { kind: 'blocks'; collection: BackupCollection; blocks: StoredBlock[] }
  | { kind: 'collection-end'; collection: BackupCollection; end: BackupCollectionEnd }
  | { kind: 'end'; blocks: number };

const headerSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  createdAt: z.string(),
  lsn: z.number().int().min(0),
  collections: z.array(
    z.object({
      name: z.string().min(1),
      dim: z.number().int().min(1),
      metric: z.enum(METRICS),
      encoder: z.object({ name: z.string().min(1), version: z.string() }).optional(),
      blocks: z.number().int().min(0),
    }),
  ),
});
const collectionSchema = z.object({ name: z.string() });
const collectionEndSchema = z.object({ name: z.string(), blocks: z.number().int().min(0), digest: z.string() });
const endSchema = z.object({ collections: z.number().int().min(0), blocks: z.number().int().min(0) });

/**
 * Reads a backup file (plain or gzip'd) as a stream of events, checking everything on the way:
 * the magic and format, each frame's checksum, the order of frames, each collection's block count
 * and digest (recomputed from the blocks read), and the closing frame. Anything amiss (a
 * truncated file, a flipped byte) throws {@link BackupCorruptError} naming the file, not its
 * directory. Memory stays bounded by one frame.
 */
export async function* readBackup(file: string): AsyncGenerator<BackupEvent> {
  const name = basename(file);
  const src = await ByteSource.open(file);
  try {
    const pre = await src.take(PREAMBLE_BYTES);
    if (!pre || !pre.subarray(0, BACKUP_MAGIC.length).equals(BACKUP_MAGIC)) {
      throw new BackupCorruptError(`${name} is not a hypersync backup`);
    }
    const format = pre.readUInt32LE(BACKUP_MAGIC.length);
    if (format !== BACKUP_FORMAT) {
      throw new BackupCorruptError(`${name} is a backup of format ${format}; this build reads format ${BACKUP_FORMAT}`);
    }
    const next = async (): Promise<{ type: FrameType; payload: Buffer }> => {
      const at = src.offset;
      const head = await src.take(FRAME_HEAD_BYTES);
      if (!head) throw new BackupCorruptError(`${name} is truncated at byte ${at}`);
      const type = head.readUInt8(0);
      const length = head.readUInt32LE(1);
      if (!Object.values<number>(FRAME).includes(type) || length > MAX_FRAME_BYTES) {
        throw new BackupCorruptError(`${name} is corrupt: a malformed frame at byte ${at}`);
      }
      const rest = await src.take(length + FRAME_TAIL_BYTES);
      if (!rest) throw new BackupCorruptError(`${name} is truncated at byte ${at}`);
      const payload = rest.subarray(0, length);
      if (crc32(payload, crc32(head)) !== rest.readUInt32LE(length)) {
        throw new BackupCorruptError(`${name} is corrupt: checksum mismatch in the frame at byte ${at}`);
      }
      return { type: type as FrameType, payload };
    };
    const json = async <S extends z.ZodType>(type: FrameType, schema: S, what: string): Promise<z.output<S>> => {
      const f = await next();
      if (f.type !== type) throw new BackupCorruptError(`${name} is corrupt: expected ${what}`);
      const r = schema.safeParse(parseJson(f.payload.toString('utf8'), name));
      if (!r.success) throw new BackupCorruptError(`${name} is corrupt: malformed ${what}`);
      return r.data;
    };

    const header: BackupHeader = await json(FRAME.header, headerSchema, 'the header');
    yield { kind: 'header', header };
    let total = 0;
    for (const c of header.collections) {
      const begin = await json(FRAME.collection, collectionSchema, `collection ${c.name}`);
      if (begin.name !== c.name) throw new BackupCorruptError(`${name} is corrupt: expected collection ${c.name}`);
      yield { kind: 'collection', collection: c };
      const digest = new DigestAccumulator();
      for (;;) {
        const f = await next();
        if (f.type === FRAME.blocks) {
          const blocks = decodeBlocks(f.payload, c.dim, `${name}, collection ${c.name}`);
          for (const b of blocks) digest.add(b.id, b.version, b.vectors);
          yield { kind: 'blocks', collection: c, blocks };
          continue;
        }
        if (f.type !== FRAME.collectionEnd) throw new BackupCorruptError(`${name} is corrupt: a stray frame in ${c.name}`);
        const r = collectionEndSchema.safeParse(parseJson(f.payload.toString('utf8'), name));
        if (!r.success || r.data.name !== c.name) throw new BackupCorruptError(`${name} is corrupt: malformed end of ${c.name}`);
        const end = r.data;
        if (end.blocks !== digest.blocks || end.blocks !== c.blocks || end.digest !== digest.digest) {
          throw new BackupCorruptError(
            `${name} is corrupt: collection ${c.name} holds ${digest.blocks} blocks of digest ${digest.digest}; ` +
              `${end.blocks} of digest ${end.digest} were written`,
          );
        }
        total += end.blocks;
        yield { kind: 'collection-end', collection: c, end };
        break;
      }
    }
    const end = await json(FRAME.end, endSchema, 'the end of the backup');
    if (end.collections !== header.collections.length || end.blocks !== total) {
      throw new BackupCorruptError(`${name} is corrupt: its end does not match its contents`);
    }
    if (!(await src.atEnd())) throw new BackupCorruptError(`${name} is corrupt: bytes after its end`);
    yield { kind: 'end', blocks: total };
  } finally {
    src.close();
  }
}

/** Exact reads from a file's (gunzip'd) byte stream. */
class ByteSource {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes taken so far (of the uncompressed stream). */
  offset = 0;

  private constructor(
    private readonly stream: NodeJS.ReadableStream & { destroy(): void },
    private readonly it: AsyncIterator<Buffer>,
    private readonly name: string,
  ) {}

  static async open(file: string): Promise<ByteSource> {
    // Sniff the gzip magic (1f 8b); the file is opened here first so a missing one fails at once.
    const fh = await open(file, 'r');
    const magic = Buffer.alloc(2);
    try {
      await fh.read(magic, 0, 2, 0);
    } finally {
      await fh.close();
    }
    const raw = createReadStream(file);
    const stream = magic[0] === 0x1f && magic[1] === 0x8b ? raw.pipe(createGunzip()) : raw;
    if (stream !== raw) raw.on('error', (err) => stream.destroy(err));
    return new ByteSource(stream, stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>, basename(file));
  }

  /** The next `n` bytes, or undefined when the stream ends first. */
  async take(n: number): Promise<Buffer | undefined> {
    while (this.buffered < n) {
      const r = await this.pull();
      if (r === undefined) return undefined;
    }
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    this.offset += n;
    return out;
  }

  /** Whether every byte has been taken. */
  async atEnd(): Promise<boolean> {
    while (this.buffered === 0) if ((await this.pull()) === undefined) return true;
    return false;
  }

  close(): void {
    this.stream.destroy();
  }

  private async pull(): Promise<Buffer | undefined> {
    let r: IteratorResult<Buffer>;
    try {
      r = await this.it.next();
    } catch (err) {
      // zlib's errors (a damaged or cut gzip stream) mean a corrupt file; the file system's pass.
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('Z_')) {
        throw new BackupCorruptError(`${this.name} is corrupt or truncated (gzip: ${(err as Error).message})`, { cause: err });
      }
      throw err;
    }
    if (r.done) return undefined;
    this.chunks.push(r.value);
    this.buffered += r.value.length;
    return r.value;
  }
}
