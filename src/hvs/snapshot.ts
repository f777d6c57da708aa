import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import type { Metric } from '../core/metric.js';
import { SnapshotCorruptError } from '../core/errors.js';
import { GrowingSegment } from './growing-segment.js';
import { SealedSegment } from './sealed-segment.js';
import type { Segment } from './segment.js';
import { checkSize, type FileRef, newVectorsFileName, readChecked, writeParts } from './segment-file.js';
import { syncDir } from '../core/sync-dir.js';
import { decodeIvfFile, encodeIvfFile, type IvfFileContents } from './ivf/ivf-file.js';
import { IvfSegment } from './ivf/ivf-segment.js';

/**
 * Snapshot format written by this version (4: segments may carry an IVF index); format 3 (no
 * IVF) is read as well; others are refused, not guessed at.
 */
export const SNAPSHOT_FORMAT_VERSION = 4;
const READABLE_FORMATS = [3, 4];
const MANIFEST = 'manifest.json';
const META_MAGIC = 'HSMETA02';
const HEADER_BYTES = 32;

/** One segment of a snapshot: its vectors file and its metadata file (ids, versions, live rows). */
export interface SnapshotSegment {
  rows: number;
  vectors: FileRef;
  meta: FileRef;
  /** An IVF segment's lists (its vectors file is in list order), since format 4. */
  ivf?: FileRef;
}

/** The manifest of a collection snapshot. */
export interface SnapshotManifest {
  formatVersion: number;
  collection: { name: string; dim: number; metric: Metric };
  /** Last change-log position contained in the snapshot. */
  lsn: number;
  createdAt: string;
  segments: SnapshotSegment[];
  /** The live ids' metadata for filters (msgpack of `[ids, metadata]`), since format 3. */
  metadata: FileRef;
  /** CRC-32 of this manifest's JSON with `checksum` left out. */
  checksum?: number;
}

/** One segment read back from a snapshot. */
export interface RestoredSegment {
  ids: string[];
  /** The vectors, CRC-checked; undefined when read with `vectors: false` (the kernel checks them). */
  vectors: Float32Array | undefined;
  versions: Float64Array;
  live: Uint8Array;
  /** The vectors file, adopted as is by the restored sealed segment. */
  vectorsRef: FileRef;
  /** The trained lists of an IVF segment (its rows are in list order). */
  ivf?: IvfFileContents;
}

/** What {@link readSnapshot} returns. */
export interface LoadedSnapshot {
  manifest: SnapshotManifest;
  segments: RestoredSegment[];
  /** Each live id's metadata. */
  metadata: Map<string, Record<string, unknown>>;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** The metadata file's bytes: `[ids, metadata]`, one entry per live id. */
export function encodeSnapshotMetadata(entries: Iterable<[string, Record<string, unknown>]>): Buffer {
  const ids: string[] = [];
  const values: Record<string, unknown>[] = [];
  for (const [id, m] of entries) {
    ids.push(id);
    values.push(m);
  }
  return packr.pack([ids, values]);
}

function decodeSnapshotMetadata(buf: Buffer, file: string): Map<string, Record<string, unknown>> {
  let decoded: unknown;
  try {
    decoded = packr.unpack(buf);
  } catch (err) {
    throw new SnapshotCorruptError(`snapshot file ${file}: metadata is not valid msgpack`, { cause: err });
  }
  const ok = Array.isArray(decoded) && decoded.length === 2 && Array.isArray(decoded[0]) && Array.isArray(decoded[1]);
  const [ids, values] = ok ? (decoded as [unknown[], unknown[]]) : [[], []];
  if (!ok || ids.length !== values.length) throw new SnapshotCorruptError(`snapshot file ${file}: bad metadata layout`);
  const out = new Map<string, Record<string, unknown>>();
  ids.forEach((id, i) => out.set(String(id), (values[i] ?? {}) as Record<string, unknown>));
  return out;
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/**
 * Metadata file layout (little-endian, 8-byte aligned sections):
 * magic "HSMETA02" | u32 rows | u32 dim | u32 idsBytes | 12 reserved | f64 versions[rows]
 * | u8 live[rows] (padded) | utf-8 JSON array of ids.
 */
function encodeMeta(seg: Segment, rows: number): Buffer[] {
  const ids = Buffer.from(JSON.stringify(seg.ids.slice(0, rows)), 'utf8');
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(META_MAGIC, 0, 'latin1');
  header.writeUInt32LE(rows, 8);
  header.writeUInt32LE(seg.dim, 12);
  header.writeUInt32LE(ids.length, 16);
  const versions = Buffer.from(seg.versions.slice(0, rows).buffer);
  const live = Buffer.alloc(align8(rows));
  for (let r = 0; r < rows; r++) live[r] = seg.isLive(r) ? 1 : 0;
  return [header, versions, live, ids];
}

function decodeMeta(buf: Buffer, file: string, dim: number): Omit<RestoredSegment, 'vectors' | 'vectorsRef'> {
  const bad = (why: string): SnapshotCorruptError => new SnapshotCorruptError(`snapshot file ${file}: ${why}`);
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, 8) !== META_MAGIC) throw bad('bad magic');
  const rows = buf.readUInt32LE(8);
  if (buf.readUInt32LE(12) !== dim) throw bad(`dimension ${buf.readUInt32LE(12)} differs from the manifest's ${dim}`);
  const idsBytes = buf.readUInt32LE(16);
  const liveOff = HEADER_BYTES + rows * 8;
  const idsOff = liveOff + align8(rows);
  if (idsOff + idsBytes !== buf.length) throw bad(`size ${buf.length} does not match its header`);
  const versions = new Float64Array(buf.buffer.slice(buf.byteOffset + HEADER_BYTES, buf.byteOffset + liveOff));
  const live = new Uint8Array(buf.buffer.slice(buf.byteOffset + liveOff, buf.byteOffset + liveOff + rows));
  let ids: unknown;
  try {
    ids = JSON.parse(buf.toString('utf8', idsOff, idsOff + idsBytes));
  } catch (err) {
    throw new SnapshotCorruptError(`snapshot file ${file}: id list is not valid JSON`, { cause: err });
  }
  if (!Array.isArray(ids) || ids.length !== rows || !ids.every((x) => typeof x === 'string')) {
    throw bad('id list does not match the row count');
  }
  return { ids: ids, versions, live };
}

function manifestChecksum(m: SnapshotManifest): number {
  const { checksum: _omit, ...rest } = m;
  return crc32(JSON.stringify(rest));
}

/**
 * Writes a collection snapshot into `dir`. Sealed segments' vectors files are already there and
 * are only fsync'd and named; the growing segment's rows are written to a new file; each segment
 * gets a metadata file; the manifest goes last (temp file, fsync, atomic rename). Files that
 * neither the new manifest nor `inUse()` names are removed afterwards.
 *
 * The caller must keep sealing and compaction from running meanwhile (the HVS collection runs
 * this on its structural queue); writes and deletes may go on.
 */
export async function writeSnapshot(
  dir: string,
  collection: { name: string; dim: number; metric: Metric },
  segments: readonly Segment[],
  lsn: number,
  inUse: () => Iterable<string>,
  metadata: () => Buffer,
): Promise<SnapshotManifest> {
  await mkdir(dir, { recursive: true });
  // Capture every segment's state before the first await: writes that land while the files are
  // written must not make one snapshot hold an id live in two segments. Growing vectors are
  // views: rows are append-only, so the captured rows do not change.
  const metadataBytes = metadata();
  const captured = segments
    .filter((s) => s.rows - s.tombstones > 0)
    .map((seg) => ({
      seg,
      rows: seg.rows,
      meta: encodeMeta(seg, seg.rows),
      growing: seg instanceof GrowingSegment ? seg.vectors.subarray(0, seg.rows * seg.dim) : undefined,
      ivf: seg instanceof IvfSegment ? encodeIvfFile(seg.fileContents()) : undefined,
    }));
  const metadataFile = `metadata-${randomBytes(8).toString('hex')}.bin`;
  const md = await writeParts(join(dir, metadataFile), [metadataBytes], true);
  const manifest: SnapshotManifest = {
    formatVersion: SNAPSHOT_FORMAT_VERSION,
    collection,
    lsn,
    createdAt: new Date().toISOString(),
    segments: [],
    metadata: { file: metadataFile, bytes: md.bytes, crc32: md.crc },
  };
  for (const c of captured) {
    let vectors: FileRef;
    if (c.seg instanceof SealedSegment || c.seg instanceof IvfSegment) {
      vectors = await c.seg.file.sync();
    } else if (c.growing) {
      const file = newVectorsFileName();
      const bytes = new Uint8Array(c.growing.buffer, c.growing.byteOffset, c.growing.byteLength);
      const w = await writeParts(join(dir, file), [bytes], true);
      vectors = { file, bytes: w.bytes, crc32: w.crc };
    } else {
      throw new Error('unknown segment kind');
    }
    const metaFile = `meta-${randomBytes(8).toString('hex')}.bin`;
    const m = await writeParts(join(dir, metaFile), c.meta, true);
    const entry: SnapshotSegment = { rows: c.rows, vectors, meta: { file: metaFile, bytes: m.bytes, crc32: m.crc } };
    if (c.ivf) {
      const ivfFile = `ivf-${randomBytes(8).toString('hex')}.bin`;
      const w = await writeParts(join(dir, ivfFile), c.ivf, true);
      entry.ivf = { file: ivfFile, bytes: w.bytes, crc32: w.crc };
    }
    manifest.segments.push(entry);
  }
  manifest.checksum = manifestChecksum(manifest);
  const tmp = join(dir, `${MANIFEST}.tmp`);
  await writeParts(tmp, [Buffer.from(JSON.stringify(manifest, null, 1))], true);
  await rename(tmp, join(dir, MANIFEST));
  await syncDir(dir);
  const named = manifest.segments.flatMap((s) => [s.vectors.file, s.meta.file, ...(s.ivf ? [s.ivf.file] : [])]);
  const keep = new Set([MANIFEST, metadataFile, ...named, ...inUse()]);
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
  if (!READABLE_FORMATS.includes(m.formatVersion)) {
    throw new SnapshotCorruptError(
      `snapshot manifest ${path} has format ${m.formatVersion}; this build reads ${READABLE_FORMATS.join(' and ')}`,
    );
  }
  return m;
}

/**
 * Reads a snapshot, checking every file's size and CRC-32 before anything is decoded; a missing,
 * truncated or altered file throws {@link SnapshotCorruptError}. With `vectors: false` the
 * vectors files are only checked for their size: a kernel that reads them itself checks their
 * CRC-32 as it builds the index (one read of the bytes, beside the event loop).
 */
export async function readSnapshot(dir: string, opts: { vectors?: boolean } = {}): Promise<LoadedSnapshot> {
  const manifest = await readManifest(dir);
  const { dim } = manifest.collection;
  const segments: RestoredSegment[] = [];
  for (const s of manifest.segments) {
    const metaBuf = await readChecked(dir, s.meta);
    const meta: Omit<RestoredSegment, 'vectors' | 'vectorsRef'> = decodeMeta(metaBuf, s.meta.file, dim);
    if (s.ivf) meta.ivf = decodeIvfFile(await readChecked(dir, s.ivf), s.ivf.file, dim, s.rows);
    if (meta.ids.length !== s.rows)
      throw new SnapshotCorruptError(`snapshot file ${s.meta.file}: row count differs from the manifest`);
    if (s.vectors.bytes !== s.rows * dim * 4) {
      throw new SnapshotCorruptError(
        `snapshot file ${s.vectors.file}: ${s.vectors.bytes} bytes for ${s.rows} rows of dimension ${dim}`,
      );
    }
    if (opts.vectors === false) {
      await checkSize(dir, s.vectors);
      segments.push({ ...meta, vectors: undefined, vectorsRef: s.vectors });
      continue;
    }
    const vecBuf = await readChecked(dir, s.vectors);
    if (vecBuf.length !== s.rows * dim * 4) {
      throw new SnapshotCorruptError(
        `snapshot file ${s.vectors.file}: ${vecBuf.length} bytes for ${s.rows} rows of dimension ${dim}`,
      );
    }
    const vectors =
      vecBuf.byteOffset % 4 === 0
        ? new Float32Array(vecBuf.buffer, vecBuf.byteOffset, s.rows * dim)
        : new Float32Array(vecBuf.buffer.slice(vecBuf.byteOffset, vecBuf.byteOffset + vecBuf.length));
    segments.push({ ...meta, vectors, vectorsRef: s.vectors });
  }
  const metadata = decodeSnapshotMetadata(await readChecked(dir, manifest.metadata), manifest.metadata.file);
  return { manifest, segments, metadata };
}
