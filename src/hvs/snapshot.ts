import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Metric } from '../../kernels/types.js';
import { SnapshotCorruptError } from '../errors.js';
import type { RestoredSegment } from './hvs-collection.js';
import type { Segment } from './segment.js';

/** Snapshot format written by this version; older or newer formats are refused, not guessed at. */
export const SNAPSHOT_FORMAT_VERSION = 1;
const MANIFEST = 'manifest.json';
const SEGMENT_MAGIC = 'HSSEG001';
const HEADER_BYTES = 32;

/** The manifest of a collection snapshot: the file list with sizes and CRC-32s, and the `lsn`. */
export interface SnapshotManifest {
  formatVersion: number;
  collection: { name: string; dim: number; metric: Metric };
  /** Last change-log position contained in the snapshot. */
  lsn: number;
  createdAt: string;
  segments: { file: string; rows: number; bytes: number; crc32: number }[];
  /** CRC-32 of this manifest's JSON with `checksum` left out. */
  checksum?: number;
}

/** What {@link readSnapshot} returns. */
export interface LoadedSnapshot {
  manifest: SnapshotManifest;
  segments: RestoredSegment[];
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/**
 * Segment file layout (little-endian, sections 8-byte aligned so they can be viewed in place):
 * magic "HSSEG001" | u32 rows | u32 dim | u32 idsBytes | 12 reserved | f32 vectors[rows × dim]
 * | f64 versions[rows] | u8 live[rows] | utf-8 JSON array of ids.
 */
function encodeSegment(seg: Segment): Buffer[] {
  const rows = seg.rows;
  const ids = Buffer.from(JSON.stringify(seg.ids.slice(0, rows)), 'utf8');
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(SEGMENT_MAGIC, 0, 'latin1');
  header.writeUInt32LE(rows, 8);
  header.writeUInt32LE(seg.dim, 12);
  header.writeUInt32LE(ids.length, 16);
  const vectors = Buffer.from(seg.vectors.buffer, seg.vectors.byteOffset, rows * seg.dim * 4);
  const versions = Buffer.from(seg.versions.buffer, seg.versions.byteOffset, rows * 8);
  const live = Buffer.alloc(align8(rows));
  for (let r = 0; r < rows; r++) live[r] = seg.isLive(r) ? 1 : 0;
  const pad = Buffer.alloc(align8(vectors.length) - vectors.length);
  return [header, vectors, pad, versions, live, ids];
}

function decodeSegment(buf: Buffer, file: string, dim: number): RestoredSegment {
  const bad = (why: string): SnapshotCorruptError => new SnapshotCorruptError(`snapshot segment ${file}: ${why}`);
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, 8) !== SEGMENT_MAGIC) throw bad('bad magic');
  const rows = buf.readUInt32LE(8);
  if (buf.readUInt32LE(12) !== dim) throw bad(`dimension ${buf.readUInt32LE(12)} differs from the manifest's ${dim}`);
  const idsBytes = buf.readUInt32LE(16);
  const vecOff = HEADER_BYTES;
  const verOff = vecOff + align8(rows * dim * 4);
  const liveOff = verOff + rows * 8;
  const idsOff = liveOff + align8(rows);
  if (idsOff + idsBytes !== buf.length) throw bad(`size ${buf.length} does not match its header`);
  // Views when the buffer is aligned (it is for a whole-file read); a copy otherwise.
  const aligned = buf.byteOffset % 8 === 0;
  const vectors = aligned
    ? new Float32Array(buf.buffer, buf.byteOffset + vecOff, rows * dim)
    : new Float32Array(buf.buffer.slice(buf.byteOffset + vecOff, buf.byteOffset + vecOff + rows * dim * 4));
  const versions = aligned
    ? new Float64Array(buf.buffer, buf.byteOffset + verOff, rows)
    : new Float64Array(buf.buffer.slice(buf.byteOffset + verOff, buf.byteOffset + verOff + rows * 8));
  const live = new Uint8Array(buf.buffer, buf.byteOffset + liveOff, rows);
  let ids: unknown;
  try {
    ids = JSON.parse(buf.toString('utf8', idsOff, idsOff + idsBytes));
  } catch (err) {
    throw new SnapshotCorruptError(`snapshot segment ${file}: id list is not valid JSON`, { cause: err });
  }
  if (!Array.isArray(ids) || ids.length !== rows || !ids.every((x) => typeof x === 'string')) {
    throw bad('id list does not match the row count');
  }
  return { ids: ids, vectors, versions, live };
}

function manifestChecksum(m: SnapshotManifest): number {
  const { checksum: _omit, ...rest } = m;
  return crc32(JSON.stringify(rest));
}

async function writeFileSynced(path: string, parts: readonly Uint8Array[]): Promise<{ bytes: number; crc: number }> {
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
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { bytes, crc };
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes a collection snapshot into `dir`: one file per segment, then the manifest, atomically
 * (temp file + fsync + rename). Files of older snapshots are removed afterwards.
 */
export async function writeSnapshot(
  dir: string,
  collection: { name: string; dim: number; metric: Metric },
  segments: readonly Segment[],
  lsn: number,
): Promise<SnapshotManifest> {
  await mkdir(dir, { recursive: true });
  const generation = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const manifest: SnapshotManifest = {
    formatVersion: SNAPSHOT_FORMAT_VERSION,
    collection,
    lsn,
    createdAt: new Date().toISOString(),
    segments: [],
  };
  // Encode every segment before the first await: writes that land while the files are written
  // must not make one snapshot hold an id live in two segments. (Vectors are views: rows are
  // append-only, so the captured rows do not change.)
  const encoded = segments.filter((s) => s.rows - s.tombstones > 0).map((seg) => ({ rows: seg.rows, parts: encodeSegment(seg) }));
  for (const [i, e] of encoded.entries()) {
    const file = `seg-${generation}-${i}.bin`;
    const { bytes, crc } = await writeFileSynced(join(dir, file), e.parts);
    manifest.segments.push({ file, rows: e.rows, bytes, crc32: crc });
  }
  manifest.checksum = manifestChecksum(manifest);
  const tmp = join(dir, `${MANIFEST}.${generation}.tmp`);
  await writeFileSynced(tmp, [Buffer.from(JSON.stringify(manifest, null, 1))]);
  await rename(tmp, join(dir, MANIFEST));
  await syncDir(dir);
  const keep = new Set([MANIFEST, ...manifest.segments.map((s) => s.file)]);
  for (const f of await readdir(dir)) if (!keep.has(f)) await rm(join(dir, f), { force: true });
  return manifest;
}

/** True when `dir` holds a snapshot manifest. */
export async function hasSnapshot(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, MANIFEST))).isFile();
  } catch {
    return false;
  }
}

/** Reads and validates the manifest alone. */
export async function readManifest(dir: string): Promise<SnapshotManifest> {
  const path = join(dir, MANIFEST);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new SnapshotCorruptError(`snapshot manifest ${path} cannot be read`, { cause: err });
  }
  let m: SnapshotManifest;
  try {
    m = JSON.parse(text) as SnapshotManifest;
  } catch (err) {
    throw new SnapshotCorruptError(`snapshot manifest ${path} is not valid JSON (truncated?)`, { cause: err });
  }
  if (typeof m !== 'object' || m === null || m.checksum !== manifestChecksum(m)) {
    throw new SnapshotCorruptError(`snapshot manifest ${path} fails its checksum`);
  }
  if (m.formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    throw new SnapshotCorruptError(
      `snapshot manifest ${path} has format ${m.formatVersion}; this build reads ${SNAPSHOT_FORMAT_VERSION}`,
    );
  }
  return m;
}

/**
 * Reads a snapshot and checks every file's size and CRC-32 before anything is decoded; a
 * missing, truncated or altered file throws {@link SnapshotCorruptError}.
 */
export async function readSnapshot(dir: string): Promise<LoadedSnapshot> {
  const manifest = await readManifest(dir);
  const segments: RestoredSegment[] = [];
  for (const s of manifest.segments) {
    const path = join(dir, s.file);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      throw new SnapshotCorruptError(`snapshot segment ${path} cannot be read`, { cause: err });
    }
    if (buf.length !== s.bytes) {
      throw new SnapshotCorruptError(
        `snapshot segment ${path} is ${buf.length} bytes, the manifest says ${s.bytes} (truncated?)`,
      );
    }
    if (crc32(buf) !== s.crc32) throw new SnapshotCorruptError(`snapshot segment ${path} fails its CRC-32 check`);
    const seg = decodeSegment(buf, s.file, manifest.collection.dim);
    if (seg.ids.length !== s.rows)
      throw new SnapshotCorruptError(`snapshot segment ${path}: row count differs from the manifest`);
    segments.push(seg);
  }
  return { manifest, segments };
}
