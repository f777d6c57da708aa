import type { NativeIvfKernel } from '../../../kernels/native-ivf.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { loc, ROW_BITS } from '../row-location.js';
import { SealedSegment } from '../sealed-segment.js';
import { type FileRef, readChecked, VectorsFile } from '../segment-file.js';
import type { IvfFileContents } from './ivf-file.js';
import type { Segment } from '../segment.js';
import type { CollectionParts } from '../types.js';
import { calibrate, DEFAULT_RERANK, DEFAULT_TARGET_RECALL } from './calibrate.js';
import { defaultNlist, defaultThreads, IvfIndex, type IvfBuildOptions, mulberry32, samplePicks } from './ivf-index.js';
import { IvfSegment } from './ivf-segment.js';

/** Options of a training run (see {@link IvfBuildOptions}). */
export interface IvfTrainOptions extends Omit<IvfBuildOptions, 'reuse' | 'heldOut'> {
  /** Recall@10 the calibrated default `nprobe` must reach (default 0.95). */
  targetRecall?: number;
  /**
   * Keep the current index's centroids and codes' range and only place the rows (a fold after
   * writes); ignored when there is no index yet or when the rows have outgrown its lists.
   */
  reuse?: boolean;
}

/** The rows a training run takes: every live row of the sealed and IVF segments. */
interface Input {
  segments: (SealedSegment | IvfSegment)[];
  vectors: Float32Array;
  ids: string[];
  versions: Float64Array;
  /** Source of each input row: its segment (index into `segments`) and row there. */
  fromSegment: Int32Array;
  fromRow: Int32Array;
  /** With `reuse`: each row's list in the current index, or −1 for a row not in it. */
  labels?: Int32Array;
}

const isIndexed = (s: Segment): s is SealedSegment | IvfSegment => s instanceof SealedSegment || s instanceof IvfSegment;

/** Gathers the live rows of the sealed and IVF segments (the caller holds the structural lock). */
async function gather(t: CollectionParts, reuse: IvfSegment | undefined): Promise<Input | undefined> {
  const segments = [...t.segments.values()].filter(isIndexed);
  // Files are read first: rows counted and copied after the last await are the rows live then.
  const contents = new Map<Segment, Float32Array>();
  for (const s of segments) contents.set(s, s instanceof SealedSegment ? await s.file.readAll() : s.index.arrays.vectors);
  let rows = 0;
  for (const s of segments) rows += s.rows - s.tombstones;
  if (rows === 0) return undefined;
  if (rows >= ROW_BITS)
    throw new InvalidArgumentError(`an IVF segment holds fewer than ${ROW_BITS} rows; this collection has ${rows}`);
  const { dim } = t;
  const vectors = new Float32Array(rows * dim);
  const ids = new Array<string>(rows);
  const versions = new Float64Array(rows);
  const fromSegment = new Int32Array(rows);
  const fromRow = new Int32Array(rows);
  const labels = reuse ? new Int32Array(rows).fill(-1) : undefined;
  let i = 0;
  for (const [si, s] of segments.entries()) {
    const all = contents.get(s)!;
    const listOf = s === reuse ? listsOfEntries(s.index) : undefined;
    for (let r = 0; r < s.rows; r++) {
      if (!s.isLive(r)) continue;
      vectors.set(all.subarray(r * dim, (r + 1) * dim), i * dim);
      ids[i] = s.ids[r];
      versions[i] = s.versions[r];
      fromSegment[i] = si;
      fromRow[i] = r;
      if (labels && listOf) labels[i] = listOf[r];
      i++;
    }
  }
  return { segments, vectors, ids, versions, fromSegment, fromRow, labels };
}

function listsOfEntries(index: IvfIndex): Int32Array {
  const out = new Int32Array(index.rows);
  const { offsets, nlist } = index.arrays;
  for (let l = 0; l < nlist; l++) out.fill(l, offsets[l], offsets[l + 1]);
  return out;
}

/**
 * Trains an IVF segment over every live row of the collection's sealed and IVF segments and
 * swaps it in for them; the growing segment and segments sealed meanwhile stay as they are (the
 * delta, searched exactly beside the index). Rows deleted or replaced while training ran are
 * dead in the new segment. Searches go on against the old segments until the swap.
 * @param exclusive runs work on the collection's structural queue (no seal or compaction meanwhile).
 * @returns the new segment, or undefined when there was nothing to index.
 */
export async function trainIvfSegment(
  t: CollectionParts,
  native: { kernel: NativeIvfKernel; isa: string },
  exclusive: <T>(work: () => Promise<T>) => Promise<T>,
  opts: IvfTrainOptions = {},
): Promise<IvfSegment | undefined> {
  const started = performance.now();
  const current = [...t.segments.values()].find((s): s is IvfSegment => s instanceof IvfSegment);
  const input = await exclusive(() => gather(t, opts.reuse ? current : undefined));
  if (!input) return undefined;
  const rows = input.ids.length;
  const cancelled = (): boolean => t.isClosed() || opts.cancelled?.() === true;
  // A fold keeps the lists while the rows have not outgrown them (half the lists they would get).
  const reuse = opts.reuse && current && current.index.nlist >= defaultNlist(rows) / 2 ? current : undefined;
  // Calibration's queries are rows k-means does not train on, so they are as new to the centroids
  // as real queries (rows it trained on find their neighbours in their own list more often).
  const queries = rows > 200_000 ? 300 : 500;
  const heldOutRows = reuse ? undefined : samplePicks(rows, Math.min(queries, Math.floor(rows / 10)), mulberry32(7));
  const heldOut = heldOutRows ? new Uint8Array(rows) : undefined;
  heldOutRows?.forEach((r) => (heldOut![r] = 1));
  const index = await IvfIndex.build(native.kernel, input.vectors, rows, t.dim, t.metric, {
    ...opts,
    cancelled,
    reuse: reuse && input.labels ? { from: reuse.index, labels: input.labels } : undefined,
    ...(heldOut ? { heldOut } : {}),
  });
  const entryOf = new Int32Array(rows);
  index.order.forEach((r, e) => (entryOf[r] = e));
  opts.onProgress?.({ phase: 'calibrate', done: 0, total: 1 });
  const calibration =
    reuse && reuse.calibration.queries > 0
      ? reuse.calibration
      : await calibrate(index, {
          targetRecall: opts.targetRecall ?? DEFAULT_TARGET_RECALL,
          rerank: DEFAULT_RERANK,
          queries,
          ...(heldOutRows ? { entries: heldOutRows.map((r) => entryOf[r]) } : {}),
          threads: opts.threads,
        });
  opts.onProgress?.({ phase: 'calibrate', done: 1, total: 1 });
  if (cancelled()) throw Object.assign(new Error('IVF training cancelled'), { name: 'AbortError' });
  const file = await VectorsFile.create(t.dir, index.arrays.vectors, rows, t.dim);
  const ids = Array.from(index.order, (r) => input.ids[r]);
  const versions = Float64Array.from(index.order, (r) => input.versions[r]);
  return exclusive(async () => {
    const id = t.newSegmentId();
    const seg = new IvfSegment(id, t.metric, index, file, ids, versions, calibration, performance.now() - started, native.isa);
    for (let e = 0; e < rows; e++) {
      const r = index.order[e];
      const src = input.segments[input.fromSegment[r]];
      const row = input.fromRow[r];
      // Rows deleted or replaced while training ran stay dead in the new segment.
      if (t.segments.get(src.id) === src && src.isLive(row)) t.locations.set(ids[e], loc(id, e));
      else index.delete(e);
    }
    t.segments.set(id, seg);
    for (const s of input.segments) {
      if (t.segments.get(s.id) !== s) continue;
      t.segments.delete(s.id);
      if (s instanceof SealedSegment) await s.retire();
      else if (s instanceof IvfSegment) s.retire();
    }
    return seg;
  });
}

/**
 * An IVF segment from a snapshot: the lists as trained, the vectors from its file (list order),
 * the codes encoded again with the stored range; no k-means runs.
 */
export async function restoreIvfSegment(
  t: CollectionParts,
  native: { kernel: NativeIvfKernel; isa: string },
  id: number,
  p: {
    ids: string[];
    versions: Float64Array;
    live: Uint8Array;
    vectors: Float32Array | undefined;
    vectorsRef: FileRef;
    ivf: IvfFileContents;
  },
): Promise<IvfSegment> {
  const rows = p.ids.length;
  let vectors = p.vectors;
  if (!vectors) {
    const buf = await readChecked(t.dir, p.vectorsRef);
    vectors = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer);
  }
  const { ivf } = p;
  const codes = new Uint8Array(ivf.blocks[ivf.nlist] * Math.ceil(t.dim / 4) * 4 * 16);
  const threads = defaultThreads();
  await native.kernel.encode(vectors, rows, t.dim, ivf.offsets, ivf.blocks, ivf.nlist, ivf.scale, ivf.offset, threads, codes);
  const bias = new Float32Array(rows);
  for (let r = 0; r < rows; r++) if (!p.live[r]) bias[r] = -Infinity;
  const index = new IvfIndex(
    native.kernel,
    t.metric,
    {
      dim: t.dim,
      nlist: ivf.nlist,
      rows,
      score: ivf.score,
      centroids: ivf.centroids,
      offsets: ivf.offsets,
      blocks: ivf.blocks,
      vectors,
      codes,
      scale: ivf.scale,
      offset: ivf.offset,
      bias,
    },
    new Int32Array(0),
  );
  const file = VectorsFile.adopt(t.dir, p.vectorsRef, t.dim);
  return new IvfSegment(id, t.metric, index, file, p.ids, p.versions, ivf.calibration, ivf.trainMs, native.isa);
}
