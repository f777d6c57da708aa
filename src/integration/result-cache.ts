import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { FilterNode } from '../core/filter.js';
import type { QueryBatch } from '../core/vector.js';
import type { AnnOptions } from '../hvs/ivf/ivf-types.js';
import { approxBytes } from './tiered-cache.js';
import type { Include, QueryHit, ResultCacheCounts } from './types.js';

/** Options of {@link ResultCache}. */
export interface ResultCacheOptions {
  /** Byte budget of the cached answers (0 disables the cache). */
  maxBytes: number;
}

/** What, besides the collection and the query vectors, decides a query call's answer. */
export interface ResultKeyParts {
  k: number;
  include: readonly Include[];
  /** The checked filter of the batch, or one per query, or none. */
  filter: FilterNode | readonly (FilterNode | undefined)[] | undefined;
  minScore: number | undefined;
  ann: AnnOptions;
}

/** The whole cache's counters: a collection's, summed since start, with the budget and the evictions. */
export interface ResultCacheStats extends ResultCacheCounts {
  maxBytes: number;
  /** Answers evicted to keep within the budget. */
  evictions: number;
}

interface Entry {
  collection: string;
  stamp: string;
  results: QueryHit[][];
  bytes: number;
}

interface Held {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  /** The newest stamp seen: entries stored under another are stale. */
  stamp: string | undefined;
  keys: Set<string>;
}

/** A number per object, never reused in this process (a dropped collection's successor gets another). */
const serials = new WeakMap<object, number>();
let nextSerial = 0;
function serialOf(o: object): number {
  let n = serials.get(o);
  if (n === undefined) serials.set(o, (n = ++nextSerial));
  return n;
}

/**
 * What a collection's answers depend on besides the query: which collection object this process
 * holds (dropped and re-created, it is another), which HVS index serves it (a rebuild or reload
 * switches it) and that index's change count, which every write, delete, index swap and
 * compaction moves (local writes, the change-log tail, repairs alike).
 */
export function resultStamp(state: object, hvs: object & { readonly changes: number }): string {
  return `${serialOf(state)}:${serialOf(hvs)}:${hvs.changes}`;
}

/**
 * The cache key of a query call: the collection and a SHA-256 of everything that decides the
 * answer — k, include (as a set), the checked filter(s), minScore, exact/nprobe/targetRecall and
 * the query vectors' exact bytes (as checked, normalised for cosine; texts after encoding).
 */
export function resultKey(collection: string, vectors: QueryBatch, p: ResultKeyParts): string {
  const filter = Array.isArray(p.filter) ? p.filter.map((f: FilterNode | undefined) => f ?? null) : (p.filter ?? null);
  const parts = {
    n: vectors.count,
    dim: vectors.dim,
    k: p.k,
    include: [...new Set(p.include)].sort(),
    filter,
    minScore: p.minScore ?? null,
    exact: p.ann.exact === true,
    nprobe: p.ann.nprobe ?? null,
    targetRecall: p.ann.targetRecall ?? null,
  };
  const { data } = vectors;
  const hash = createHash('sha256')
    .update(JSON.stringify(parts))
    .update('\u0000')
    .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    .digest('base64');
  return `${collection}\u0000${hash}`;
}

/** Rough bytes of an answer as cached. */
function answerBytes(key: string, results: readonly (readonly QueryHit[])[]): number {
  let n = 2 * key.length + 96;
  for (const list of results) {
    n += 32;
    for (const h of list) {
      n += 64 + 2 * h.id.length;
      if (h.content !== undefined) n += approxBytes(h.content);
      if (h.metadata !== undefined) n += approxBytes(h.metadata);
      if (h.vector !== undefined) n += h.vector.byteLength + 64;
    }
  }
  return n;
}

/**
 * Answers of repeated identical query calls (the planner's `cache_result` step), in one LRU
 * within a byte budget. An answer is served only while its collection's {@link resultStamp} is
 * the one it was stored under, so any change to the collection makes its older answers unusable
 * (and they are dropped when the change is first seen). Only answers the HVS gave are cached
 * (not pgvector's, while a collection loads or lags). Hits keep the `source` of the answer that
 * filled the cache; callers get copies, so they cannot change the cached hits.
 */
export class ResultCache {
  private readonly lru: LRUCache<string, Entry> | undefined;
  private readonly held = new Map<string, Held>();
  private readonly invalidations = new Map<string, number>();
  private readonly totals = { hits: 0, misses: 0, evictions: 0 };
  readonly maxBytes: number;

  constructor(opts: ResultCacheOptions) {
    const { maxBytes } = opts;
    if (!Number.isFinite(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be ≥ 0, got ${maxBytes}`);
    this.maxBytes = Math.floor(maxBytes);
    if (this.maxBytes > 0) {
      this.lru = new LRUCache<string, Entry>({
        maxSize: this.maxBytes,
        sizeCalculation: (e) => e.bytes,
        dispose: (e, key, reason) => this.dropped(e, key, reason),
      });
    }
  }

  /** False with a budget of 0: nothing is looked up or stored. */
  get enabled(): boolean {
    return this.lru !== undefined;
  }

  /** A copy of the answer stored for `key` under `stamp`, counted as a hit; otherwise a miss. */
  get(collection: string, key: string, stamp: string): QueryHit[][] | undefined {
    if (!this.lru) return undefined;
    const c = this.observe(collection, stamp);
    const e = this.lru.get(key);
    if (e && e.stamp === stamp) {
      c.hits++;
      this.totals.hits++;
      return structuredClone(e.results);
    }
    c.misses++;
    this.totals.misses++;
    return undefined;
  }

  /**
   * Stores a copy of an answer computed under `stamp` (which the caller saw unchanged from before
   * its search to now); an answer larger than the whole budget is not stored.
   */
  set(collection: string, key: string, stamp: string, results: readonly (readonly QueryHit[])[]): void {
    if (!this.lru) return;
    const c = this.observe(collection, stamp);
    const entry: Entry = {
      collection,
      stamp,
      results: structuredClone(results) as QueryHit[][],
      bytes: answerBytes(key, results),
    };
    this.lru.set(key, entry);
    if (this.lru.peek(key) !== entry) return;
    c.entries++;
    c.bytes += entry.bytes;
    c.keys.add(key);
  }

  /**
   * `stamp` (the collection's {@link resultStamp}) with the collection's invalidation count: a
   * change the HVS does not see at once (a patch's content, applied to the HVS by the change
   * log) calls {@link invalidate}, which this moves on.
   */
  stampOf(collection: string, stamp: string): string {
    return `${stamp}:${this.invalidations.get(collection) ?? 0}`;
  }

  /** Makes the collection's answers stale now (they go when its next stamp is seen). */
  invalidate(collection: string): void {
    this.invalidations.set(collection, (this.invalidations.get(collection) ?? 0) + 1);
  }

  /** Drops the collection's answers and counters (dropped here or elsewhere). */
  forget(collection: string): void {
    const c = this.held.get(collection);
    if (!c) return;
    for (const key of [...c.keys]) this.lru?.delete(key);
    this.held.delete(collection);
  }

  /** The collection's counters (zeros for one never queried). */
  collectionStats(collection: string): ResultCacheCounts {
    const c = this.held.get(collection);
    if (!c) return { hits: 0, misses: 0, hitRatio: 0, entries: 0, bytes: 0 };
    return { hits: c.hits, misses: c.misses, hitRatio: ratio(c.hits, c.misses), entries: c.entries, bytes: c.bytes };
  }

  /** Hits and misses since start (dropped collections included), entries, bytes, budget and evictions. */
  stats(): ResultCacheStats {
    const { hits, misses, evictions } = this.totals;
    return {
      hits,
      misses,
      hitRatio: ratio(hits, misses),
      entries: this.lru?.size ?? 0,
      bytes: this.lru?.calculatedSize ?? 0,
      maxBytes: this.maxBytes,
      evictions,
    };
  }

  /** The collection's record; a stamp not seen before makes every answer it holds stale, so they go. */
  private observe(collection: string, stamp: string): Held {
    let c = this.held.get(collection);
    if (!c) {
      c = { hits: 0, misses: 0, entries: 0, bytes: 0, stamp, keys: new Set() };
      this.held.set(collection, c);
    } else if (c.stamp !== stamp) {
      c.stamp = stamp;
      for (const key of [...c.keys]) this.lru?.delete(key);
    }
    return c;
  }

  private dropped(e: Entry, key: string, reason: LRUCache.DisposeReason): void {
    if (reason === 'evict') this.totals.evictions++;
    const c = this.held.get(e.collection);
    if (!c?.keys.delete(key)) return;
    c.entries--;
    c.bytes -= e.bytes;
  }
}

function ratio(hits: number, misses: number): number {
  return hits + misses === 0 ? 0 : hits / (hits + misses);
}
