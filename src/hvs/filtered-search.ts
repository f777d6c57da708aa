import type { RowMask, SearchKernel } from '../../kernels/search-kernel.js';
import { LRUCache } from 'lru-cache';
import { InvalidArgumentError } from '../core/errors.js';
import { filterKey, type FilterNode, matchesAll } from '../core/filter.js';
import type { SearchHit } from '../core/search-hit.js';
import type { QueryBatch } from '../core/vector.js';
import { SealedSegment } from './sealed-segment.js';
import { searchSegments } from './segment-search.js';
import type { IvfProbe } from './ivf/ivf-segment.js';

const NO_MASK = new Float32Array(0);
import type { MetadataColumns } from './metadata-columns.js';
import type { Segment } from './segment.js';

/**
 * At or below this share of a segment's rows matching, the kernel gathers and scores only the
 * matching rows; above it, it scans every row with the filter as a mask.
 */
export const GATHER_SHARE = 1 / 32;

/** How a filter ran over a collection's segments (for `explain` and the planner). */
export interface FilterRun {
  /** Live rows the filter matches. */
  matching: number;
  /** Live rows. */
  live: number;
  /** `matching / live` (0 for an empty collection). */
  selectivity: number;
  /** Segments whose matching rows were gathered and scored alone. */
  gathered: number;
  /** Segments scanned whole with the filter as a row mask. */
  masked: number;
  /** `gather`, `mask`, `mixed` (some of each), or `none` (nothing matches: no search runs). */
  mode: 'gather' | 'mask' | 'mixed' | 'none';
}

/**
 * Per segment, the rows a filter lets through: `matches` (per metadata slot, from
 * {@link MetadataColumns.evaluate}) and the segment's tombstones together. Segments without a
 * matching row are left out, so they are not searched at all.
 */
export function filterRowMasks(
  segments: Iterable<Segment>,
  columns: MetadataColumns,
  matches: Uint8Array,
): { masks: Map<Segment, RowMask>; run: FilterRun } {
  const masks = new Map<Segment, RowMask>();
  let matching = 0;
  let live = 0;
  let gathered = 0;
  let masked = 0;
  let scratch = new Int32Array(0);
  for (const seg of segments) {
    const rows = seg.rows;
    live += rows - seg.tombstones;
    if (rows - seg.tombstones === 0) continue;
    const slots = columns.slotsOf(seg);
    if (scratch.length < rows) scratch = new Int32Array(rows);
    let m = 0;
    for (let r = 0; r < rows; r++) {
      const s = slots[r];
      if (s >= 0 && matches[s] === 1 && seg.isLive(r)) scratch[m++] = r;
    }
    if (m === 0) continue;
    matching += m;
    const select = scratch.slice(0, m);
    if (m <= rows * GATHER_SHARE) {
      // Only the selected rows are scored: the segment's own tombstone mask stands in for the
      // mask (a kernel may need one of the segment's length; none of it is read).
      // A sealed segment's rows are read from its file once here: the cached masks keep them, so a
      // filter that repeats scores them again without reading.
      masks.set(
        seg,
        seg instanceof SealedSegment
          ? { mask: seg.mask, masked: rows - m, select, gathered: seg.file.readRows(select) }
          : { mask: NO_MASK, masked: rows - m, select },
      );
      gathered++;
    } else {
      const mask = new Float32Array(rows).fill(-Infinity);
      for (let i = 0; i < m; i++) mask[select[i]] = 0;
      masks.set(seg, { mask, masked: rows - m });
      masked++;
    }
  }
  const mode = gathered + masked === 0 ? 'none' : masked === 0 ? 'gather' : gathered === 0 ? 'mask' : 'mixed';
  return { masks, run: { matching, live, selectivity: live === 0 ? 0 : matching / live, gathered, masked, mode } };
}

/**
 * Batched search where queries may carry filters (none, one for the batch, or one per query): the
 * queries are grouped by filter, each filter is evaluated once over the metadata columns and
 * becomes row masks (or gathered rows) for the kernel, so each query's top-k is exact over the
 * rows that match it and never short while k of them exist.
 */
export async function searchFiltered(
  kernel: SearchKernel,
  segments: () => Iterable<Segment>,
  columns: MetadataColumns,
  cache: FilterMaskCache,
  q: QueryBatch,
  k: number,
  filter: FilterNode | readonly (FilterNode | undefined)[] | undefined,
  probe?: IvfProbe,
): Promise<{ hits: SearchHit[][]; runs: (FilterRun | undefined)[] }> {
  const { count, dim, metric } = q;
  const perQuery = Array.isArray(filter) ? (filter as readonly (FilterNode | undefined)[]) : undefined;
  if (perQuery && perQuery.length !== count) {
    throw new InvalidArgumentError(`filters: ${perQuery.length} filters for ${count} queries`);
  }
  const groups = new Map<string, { node: FilterNode; at: number[] }>();
  for (let i = 0; i < count; i++) {
    const node = (perQuery ? perQuery[i] : (filter as FilterNode)) ?? ALL;
    const key = filterKey(node);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { node, at: [] }));
    g.at.push(i);
  }
  const hits = new Array<SearchHit[]>(count);
  const runs = new Array<FilterRun | undefined>(count);
  for (const { node, at } of groups.values()) {
    const data = at.length === count ? q.data : gatherRows(q.data, at, dim);
    let found: SearchHit[][];
    let run: FilterRun | undefined;
    if (matchesAll(node)) {
      found = await searchSegments(kernel, segments(), data, at.length, k, metric, dim, undefined, probe);
    } else {
      const r = cache.masksOf(node, [...segments()], columns);
      run = r.run;
      found =
        r.masks.size === 0
          ? at.map(() => [])
          : await searchSegments(kernel, r.masks.keys(), data, at.length, k, metric, dim, r.masks, probe);
    }
    at.forEach((qi, j) => {
      hits[qi] = found[j];
      runs[qi] = run;
    });
  }
  return { hits, runs };
}

const ALL: FilterNode = { op: 'all' };

function gatherRows(data: Float32Array, at: readonly number[], dim: number): Float32Array {
  const out = new Float32Array(at.length * dim);
  at.forEach((qi, j) => out.set(data.subarray(qi * dim, (qi + 1) * dim), j * dim));
  return out;
}

/** How many live rows (`ids`) `filter` matches, and their share of all of them. */
export function estimateFilter(
  columns: MetadataColumns,
  ids: Iterable<string>,
  filter: FilterNode,
): { matching: number; live: number; selectivity: number } {
  const matches = columns.evaluate(filter);
  let matching = 0;
  let live = 0;
  for (const id of ids) {
    live++;
    const slot = columns.slotOf(id);
    if (slot >= 0 && matches[slot] === 1) matching++;
  }
  return { matching, live, selectivity: live === 0 ? 0 : matching / live };
}

/**
 * The row masks of recent filters, while the segments they were made for stand unchanged: a
 * filter that repeats (a tenant's, a language's) is evaluated once, not once per query. Any write,
 * delete, seal or compaction changes a segment's rows, tombstones or identity, and with them the
 * key the masks were stored under.
 */
export class FilterMaskCache {
  private readonly entries: LRUCache<string, { masks: Map<Segment, RowMask>; run: FilterRun }>;

  /** @param maxBytes what the cached masks may hold in all (default 64 MiB). */
  constructor(maxBytes = 64 * 2 ** 20) {
    this.entries = new LRUCache({ maxSize: maxBytes, sizeCalculation: (e) => Math.max(1, maskBytes(e.masks)) });
  }

  /** The masks of `node` over `segments` (see {@link filterRowMasks}), cached. */
  masksOf(
    node: FilterNode,
    segments: readonly Segment[],
    columns: MetadataColumns,
  ): { masks: Map<Segment, RowMask>; run: FilterRun } {
    let key = filterKey(node);
    for (const s of segments) key += `|${s.id}:${s.rows}:${s.tombstones}`;
    const hit = this.entries.get(key);
    // A sealed segment keeps the id of the growing one it replaces: the objects must be the same.
    if (hit && [...hit.masks.keys()].every((s) => segments.includes(s))) return hit;
    const r = filterRowMasks(segments, columns, columns.evaluate(node));
    this.entries.set(key, r);
    return r;
  }

  /** Drops every entry (the collection closed). */
  clear(): void {
    this.entries.clear();
  }
}

function maskBytes(masks: Map<Segment, RowMask>): number {
  let b = 0;
  for (const m of masks.values()) b += (m.select ? m.select.byteLength + (m.gathered?.byteLength ?? 0) : m.mask.byteLength) + 64;
  return b;
}
