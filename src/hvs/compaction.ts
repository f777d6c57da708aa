import { IvfSegment } from './ivf/ivf-segment.js';
import { loc } from './row-location.js';
import { SealedSegment } from './sealed-segment.js';
import type { Segment } from './segment.js';
import type { CollectionParts } from './types.js';

/** Fewer tombstones than this are not worth a background rewrite. */
const AUTO_COMPACT_MIN_TOMBSTONES = 1000;

/**
 * Whether tombstones (deleted or overwritten rows) make up `percent` of the sealed and indexed
 * rows, and at least {@link AUTO_COMPACT_MIN_TOMBSTONES}: then a collection compacts itself, or one
 * whose ids are overwritten would grow until someone ran the compaction job. `percent` 0: never.
 */
export function compactionDue(segments: Iterable<Segment>, percent: number): boolean {
  if (percent === 0) return false;
  let rows = 0;
  let dead = 0;
  for (const s of segments) {
    if (!(s instanceof SealedSegment || s instanceof IvfSegment)) continue;
    rows += s.rows;
    dead += s.tombstones;
  }
  return dead >= AUTO_COMPACT_MIN_TOMBSTONES && dead * 100 >= rows * percent;
}

/**
 * Groups sealed segments for a rewrite: neighbours with tombstones or under half of
 * `maxSegmentRows` are merged up to `maxSegmentRows` live rows; a clean large segment is left alone.
 */
export function planCompaction(sealed: readonly SealedSegment[], maxSegmentRows: number): SealedSegment[][] {
  const groups: SealedSegment[][] = [];
  let group: SealedSegment[] = [];
  let groupRows = 0;
  const flushGroup = (): void => {
    // A group of one clean segment gains nothing from a rewrite.
    if (group.length > 1 || (group.length === 1 && group[0].tombstones > 0)) groups.push(group);
    group = [];
    groupRows = 0;
  };
  for (const s of sealed) {
    const live = s.rows - s.tombstones;
    const small = s.rows < maxSegmentRows / 2;
    if (s.tombstones === 0 && !small) {
      flushGroup();
      continue;
    }
    if (groupRows + live > maxSegmentRows) flushGroup();
    group.push(s);
    groupRows += live;
  }
  flushGroup();
  return groups;
}

/**
 * Rewrites sealed segments without their tombstones, merging small neighbours (see
 * {@link planCompaction}). Searches keep running against the old segments until the switch;
 * rows deleted or replaced meanwhile stay dead in the new one.
 */
export async function compactSegments(
  t: CollectionParts,
  maxSegmentRows: number,
): Promise<{ rewritten: number; dropped: number }> {
  const sealed = [...t.segments.values()].filter((s): s is SealedSegment => s instanceof SealedSegment);
  const groups = planCompaction(sealed, maxSegmentRows);
  const { dim } = t;
  let rewritten = 0;
  let dropped = 0;
  for (const g of groups) {
    if (t.isClosed()) break;
    const sources: { seg: SealedSegment; row: number }[] = [];
    for (const s of g) for (let r = 0; r < s.rows; r++) if (s.isLive(r)) sources.push({ seg: s, row: r });
    const id = t.newSegmentId();
    const vectors = new Float32Array(sources.length * dim);
    const versions = new Float64Array(sources.length);
    const ids: string[] = new Array<string>(sources.length);
    const contents = new Map<SealedSegment, Float32Array>();
    for (const s of g) contents.set(s, await s.file.readAll());
    sources.forEach(({ seg, row }, i) => {
      vectors.set(contents.get(seg)!.subarray(row * dim, (row + 1) * dim), i * dim);
      versions[i] = seg.versions[row];
      ids[i] = seg.ids[row];
    });
    contents.clear();
    const merged =
      sources.length > 0
        ? await SealedSegment.create({ id, dim, metric: t.metric, vectors, ids, versions, dir: t.dir }, t.kernel)
        : undefined;
    // Rows deleted or replaced while the new index was built stay dead in it.
    sources.forEach(({ seg, row }, i) => {
      if (!merged) return;
      if (seg.isLive(row)) t.locations.set(ids[i], loc(id, i));
      else merged.tombstone(i);
    });
    if (merged) t.segments.set(id, merged);
    for (const s of g) {
      dropped += s.tombstones;
      t.segments.delete(s.id);
      await s.retire();
    }
    rewritten += g.length;
  }
  return { rewritten, dropped };
}
