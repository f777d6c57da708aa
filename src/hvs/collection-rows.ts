import { InvalidArgumentError } from '../core/errors.js';
import { assertId, isArray } from '../core/ids.js';
import type { GrowingSegment } from './growing-segment.js';
import { loc, locRow, locSegment, ROW_BITS } from './row-location.js';
import type { CheckedBatch } from '../core/vector.js';
import { SealedSegment } from './sealed-segment.js';
import { IvfSegment } from './ivf/ivf-segment.js';
import type { Segment } from './segment.js';
import type { CollectionParts, HvsCollectionOptions, MemoryUsage } from './types.js';

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
    const all =
      seg instanceof SealedSegment ? await seg.file.readAll() : seg instanceof IvfSegment ? seg.index.arrays.vectors : undefined;
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

/**
 * Appends checked rows to the growing segment (sealing it whenever it fills), tombstoning each
 * id's previous row; an id given twice keeps its last row. Versions default to the previous + 1.
 */
export function appendRows(
  c: Pick<CollectionParts, 'segments' | 'locations'>,
  growing: { current(): GrowingSegment; seal(): void },
  ids: readonly string[],
  batch: CheckedBatch,
  versions: readonly number[] | undefined,
): void {
  for (let i = 0; i < ids.length;) {
    if (growing.current().full) growing.seal();
    const g = growing.current();
    const take = Math.min(ids.length - i, g.free);
    const base = g.rows;
    const runVersions = new Float64Array(take);
    const deadInRun: number[] = [];
    for (let t = 0; t < take; t++) {
      const id = ids[i + t];
      const previous = c.locations.get(id);
      let version = versions?.[i + t];
      if (previous !== undefined) {
        const segId = locSegment(previous);
        const row = locRow(previous);
        if (segId === g.id && row >= base) {
          // The same id earlier in this run: its row is not written yet.
          version ??= runVersions[row - base] + 1;
          deadInRun.push(row);
        } else {
          const seg = c.segments.get(segId);
          if (seg) {
            version ??= seg.versions[row] + 1;
            seg.tombstone(row);
          }
        }
      }
      runVersions[t] = version ?? 1;
      c.locations.set(id, loc(g.id, base + t));
    }
    g.appendRun(ids, batch, i, take, runVersions);
    for (const row of deadInRun) g.tombstone(row);
    i += take;
  }
}

/** `opts` with their defaults, each checked (an integer in its range). */
export function collectionOptions(opts: HvsCollectionOptions): Required<HvsCollectionOptions> {
  const all = { sealThreshold: 32_768, maxSegmentRows: 262_144, ivfMinRows: 50_000, compactTombstonePercent: 20, ...opts };
  for (const [k, v] of Object.entries(all)) {
    const min = k === 'ivfMinRows' || k === 'compactTombstonePercent' ? 0 : 1;
    const max = k === 'compactTombstonePercent' ? 100 : ROW_BITS - 1;
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new InvalidArgumentError(`${k} must be an integer in [${min}, ${max}], got ${String(v)}`);
    }
  }
  return all;
}
