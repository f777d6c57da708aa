import { constants, createReadStream } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { createInterface } from 'node:readline';
import { InvalidArgumentError } from '../core/errors.js';
import type { StoreItem } from '../integration/types.js';

/** A file of vectors read in batches: its dimension (when the format says), size and items. */
export interface VectorFile {
  /** Vectors per row, when the file's format fixes it (`.npy`, `.fvecs`). */
  dim: number | undefined;
  /** Items in the file, when known without reading it all. */
  total: number | undefined;
  /** Items in batches; ids are given, or made from the file name and row, so an import can resume. */
  batches(size: number): AsyncGenerator<StoreItem[]>;
}

/** Opens a `.jsonl`, `.npy` (float32, 2-D, C order) or `.fvecs` file. */
export async function openVectorFile(path: string): Promise<VectorFile> {
  await checkReadableFile(path);
  const ext = extname(path).toLowerCase();
  const stem = basename(path, extname(path));
  if (ext === '.jsonl' || ext === '.ndjson') return jsonl(path, stem);
  if (ext === '.npy') return npy(path, stem);
  if (ext === '.fvecs') return fvecs(path, stem);
  throw new InvalidArgumentError(`${path}: unknown format ${ext || '(none)'}; use .jsonl, .npy or .fvecs`);
}

/**
 * Throws {@link InvalidArgumentError} with one line unless `path` is a regular file this process
 * can read; `hint` follows the reason when it is not a file (what to give instead).
 */
export async function checkReadableFile(path: string, hint = '; give a .jsonl, .npy or .fvecs file'): Promise<void> {
  try {
    const st = await stat(path);
    if (!st.isFile())
      throw new InvalidArgumentError(`${path}: ${st.isDirectory() ? 'a directory' : 'not a regular file'}${hint}`);
    await access(path, constants.R_OK);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'not readable (permission denied)'
          : (err as Error).message;
    throw new InvalidArgumentError(`${path}: ${why}`, { cause: err });
  }
}

function jsonl(path: string, stem: string): VectorFile {
  return {
    dim: undefined,
    total: undefined,
    async *batches(size) {
      const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
      let batch: StoreItem[] = [];
      let n = 0;
      for await (const line of lines) {
        n++;
        if (line.trim() === '') continue;
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new InvalidArgumentError(`${path}:${n}: not valid JSON`);
        }
        const item: StoreItem = { id: typeof rec.id === 'string' ? rec.id : `${stem}:${n}` };
        if (Array.isArray(rec.vector)) item.vector = Float32Array.from(rec.vector as number[]);
        if (typeof rec.text === 'string') item.text = rec.text;
        if (typeof rec.content === 'string') item.content = rec.content;
        if (rec.metadata && typeof rec.metadata === 'object') item.metadata = rec.metadata as Record<string, unknown>;
        batch.push(item);
        if (batch.length === size) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
    },
  };
}

/** Rows of `dim` float32s from `offset`, `rowBytes` apart (a header of `skip` bytes per row). */
function rowFile(path: string, stem: string, dim: number, rows: number, offset: number, skip: number): VectorFile {
  const rowBytes = skip + dim * 4;
  return {
    dim,
    total: rows,
    async *batches(size) {
      const fh = await open(path, 'r');
      try {
        for (let first = 0; first < rows; first += size) {
          const count = Math.min(size, rows - first);
          const buf = Buffer.alloc(count * rowBytes);
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset + first * rowBytes);
          if (bytesRead !== buf.length) throw new InvalidArgumentError(`${path}: truncated at row ${first}`);
          yield Array.from({ length: count }, (_, r) => {
            const v = new Float32Array(dim);
            new Uint8Array(v.buffer).set(buf.subarray(r * rowBytes + skip, (r + 1) * rowBytes));
            return { id: `${stem}:${first + r}`, vector: v };
          });
        }
      } finally {
        await fh.close();
      }
    },
  };
}

async function npy(path: string, stem: string): Promise<VectorFile> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(10);
    await fh.read(head, 0, 10, 0);
    if (head.toString('latin1', 0, 6) !== '\x93NUMPY') throw new InvalidArgumentError(`${path}: not a .npy file`);
    const major = head[6];
    const lenBytes = major === 1 ? 2 : 4;
    const lenBuf = Buffer.alloc(4);
    await fh.read(lenBuf, 0, lenBytes, 8);
    const headerLen = major === 1 ? lenBuf.readUInt16LE(0) : lenBuf.readUInt32LE(0);
    const header = Buffer.alloc(headerLen);
    await fh.read(header, 0, headerLen, 8 + lenBytes);
    const text = header.toString('latin1');
    const descr = /'descr':\s*'([^']+)'/.exec(text)?.[1];
    const fortran = /'fortran_order':\s*(True|False)/.exec(text)?.[1];
    const shape = /'shape':\s*\((\d+),\s*(\d+)\s*\)/.exec(text);
    if (descr !== '<f4' || fortran !== 'False' || !shape) {
      throw new InvalidArgumentError(`${path}: need a 2-D little-endian float32 array in C order, found ${text.trim()}`);
    }
    return rowFile(path, stem, Number(shape[2]), Number(shape[1]), 8 + lenBytes + headerLen, 0);
  } finally {
    await fh.close();
  }
}

async function fvecs(path: string, stem: string): Promise<VectorFile> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const d = Buffer.alloc(4);
    await fh.read(d, 0, 4, 0);
    const dim = d.readInt32LE(0);
    const rowBytes = 4 + dim * 4;
    if (dim < 1 || size % rowBytes !== 0)
      throw new InvalidArgumentError(`${path}: not an .fvecs file (dimension ${dim}, ${size} bytes)`);
    return rowFile(path, stem, dim, size / rowBytes, 0, 4);
  } finally {
    await fh.close();
  }
}
