import { InvalidArgumentError } from '../core/errors.js';
import { assertId, isArray } from '../core/ids.js';
import { loc } from './row-location.js';
import { SealedSegment } from './sealed-segment.js';
import type { Segment } from './segment.js';
import type { CollectionParts, MemoryUsage } from './types.js';

/**
 * Every live row of a collection, a segment at a time (a sealed segment's vectors are read from
 * its file in one go).
 */
export async function* scanLiveRows(
  c: Pick<CollectionParts, 'dim' | 'segments' | 'locations'>,
): AsyncGenerator<{ ids: string[]; versions: number[]; vectors: Float32Array }> {
  for (const seg of [...c.segments.values()]) {
    const rows: number[] = [];
    for (let r = 0; r < seg.rows; r++) if (c.locations.get(seg.ids[r]) === loc(seg.id, r)) rows.push(r);
    if (rows.length === 0) continue;
    const all = seg instanceof SealedSegment ? await seg.file.readAll() : undefined;
    const vectors = new Float32Array(rows.length * c.dim);
    const ids: string[] = [];
    const versions: number[] = [];
    rows.forEach((r, i) => {
      ids.push(seg.ids[r]);
      versions.push(seg.versions[r]);
      vectors.set(all ? all.subarray(r * c.dim, (r + 1) * c.dim) : seg.readRow(r), i * c.dim);
    });
    yield { ids, versions, vectors };
  }
}

/** Tombstones and sealed segments among `segments`. */
export function segmentCounts(segments: Iterable<Segment>): { tombstones: number; sealed: number } {
  let tombstones = 0;
  let sealed = 0;
  for (const s of segments) {
    tombstones += s.tombstones;
    if (s instanceof SealedSegment) sealed++;
  }
  return { tombstones, sealed };
}

/** Bytes `segments` hold per place, plus `extraHostBytes` (maps, columns) of the collection. */
export function memoryOf(segments: Iterable<Segment>, extraHostBytes: number): MemoryUsage {
  let hostBytes = extraHostBytes;
  let deviceBytes = 0;
  let diskBytes = 0;
  for (const s of segments) {
    hostBytes += s.hostBytes();
    deviceBytes += s.deviceBytes();
    diskBytes += s.diskBytes();
  }
  return { hostBytes, deviceBytes, diskBytes };
}

/** Checks an upsert's ids, versions and metadata list (not the metadata's contents: the caller's). */
export function checkUpsert(ids: readonly string[], versions?: readonly number[], metadata?: readonly unknown[]): void {
  if (!isArray(ids) || ids.length === 0) throw new InvalidArgumentError('upsert: ids must be a non-empty array');
  for (let i = 0; i < ids.length; i++) assertId(ids[i], `ids[${i}]`);
  for (const [name, list] of [
    ['versions', versions],
    ['metadata', metadata],
  ] as const) {
    if (list !== undefined && (!isArray(list) || list.length !== ids.length)) {
      throw new InvalidArgumentError(`upsert: ${name} and ids differ in length`);
    }
  }
  for (const v of versions ?? []) {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new InvalidArgumentError(`upsert: version must be a non-negative integer, got ${v}`);
  }
}
