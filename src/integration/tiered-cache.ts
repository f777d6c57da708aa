import { LRUCache } from 'lru-cache';

/** A block's content as cached (vectors are cached apart). */
export interface CachedBlock {
  content: string | null;
  metadata: Record<string, unknown>;
  version: number;
}

/** A vector as cached. */
export interface CachedVector {
  vector: Float32Array;
  version: number;
}

/** Options of {@link TieredCache}. */
export interface TieredCacheOptions {
  /** Total byte budget (0 disables the cache). */
  maxBytes: number;
  /** Share of the budget for vectors (default 0.25); blocks get the rest. */
  vectorShare?: number;
}

/** Hit and miss counters of one tier of the cache. */
export interface CacheTierStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  maxBytes: number;
}

const key = (collection: string, id: string): string => `${collection}\u0000${id}`;

/** Rough bytes of a JSON-like value (strings as UTF-16, numbers as 8). */
export function approxBytes(v: unknown): number {
  if (v === null || v === undefined) return 8;
  if (typeof v === 'string') return 2 * v.length + 16;
  if (typeof v !== 'object') return 8;
  let n = 16;
  if (Array.isArray(v)) for (const x of v) n += approxBytes(x);
  else for (const [k, x] of Object.entries(v as Record<string, unknown>)) n += 2 * k.length + approxBytes(x);
  return n;
}

/**
 * The read cache in front of the NVM: one LRU for block contents and one for vectors, each with
 * a byte budget. Every write and delete (local, or seen in the change log) invalidates its ids.
 */
export class TieredCache {
  private readonly blocks: LRUCache<string, CachedBlock> | undefined;
  private readonly vectors: LRUCache<string, CachedVector> | undefined;
  private readonly counters = { blockHits: 0, blockMisses: 0, vectorHits: 0, vectorMisses: 0 };
  private readonly budgets: { blocks: number; vectors: number };

  constructor(opts: TieredCacheOptions) {
    const share = opts.vectorShare ?? 0.25;
    if (!Number.isFinite(opts.maxBytes) || opts.maxBytes < 0) throw new RangeError(`maxBytes must be ≥ 0, got ${opts.maxBytes}`);
    if (!(share >= 0 && share <= 1)) throw new RangeError(`vectorShare must be in [0, 1], got ${share}`);
    this.budgets = { vectors: Math.floor(opts.maxBytes * share), blocks: Math.floor(opts.maxBytes * (1 - share)) };
    if (this.budgets.blocks > 0) {
      this.blocks = new LRUCache<string, CachedBlock>({
        maxSize: this.budgets.blocks,
        sizeCalculation: (b, k) => 2 * k.length + approxBytes(b.content) + approxBytes(b.metadata) + 48,
      });
    }
    if (this.budgets.vectors > 0) {
      this.vectors = new LRUCache<string, CachedVector>({
        maxSize: this.budgets.vectors,
        sizeCalculation: (v, k) => 2 * k.length + v.vector.byteLength + 64,
      });
    }
  }

  getBlock(collection: string, id: string): CachedBlock | undefined {
    const b = this.blocks?.get(key(collection, id));
    if (b) this.counters.blockHits++;
    else this.counters.blockMisses++;
    return b;
  }

  setBlock(collection: string, id: string, block: CachedBlock): void {
    this.blocks?.set(key(collection, id), block);
  }

  getVector(collection: string, id: string): CachedVector | undefined {
    const v = this.vectors?.get(key(collection, id));
    if (v) this.counters.vectorHits++;
    else this.counters.vectorMisses++;
    return v;
  }

  setVector(collection: string, id: string, v: CachedVector): void {
    this.vectors?.set(key(collection, id), v);
  }

  /** Forgets these ids of the collection (after a write or a delete). */
  invalidate(collection: string, ids: Iterable<string>): void {
    if (!this.blocks && !this.vectors) return;
    for (const id of ids) {
      const k = key(collection, id);
      this.blocks?.delete(k);
      this.vectors?.delete(k);
    }
  }

  /** Forgets the whole collection (dropped, or rebuilt). */
  invalidateCollection(collection: string): void {
    const prefix = `${collection}\u0000`;
    for (const c of [this.blocks, this.vectors]) {
      if (!c) continue;
      for (const k of [...c.keys()]) if (k.startsWith(prefix)) c.delete(k);
    }
  }

  stats(): { blocks: CacheTierStats; vectors: CacheTierStats; hitRatio: number } {
    const c = this.counters;
    const lookups = c.blockHits + c.blockMisses + c.vectorHits + c.vectorMisses;
    return {
      blocks: {
        hits: c.blockHits,
        misses: c.blockMisses,
        entries: this.blocks?.size ?? 0,
        bytes: this.blocks?.calculatedSize ?? 0,
        maxBytes: this.budgets.blocks,
      },
      vectors: {
        hits: c.vectorHits,
        misses: c.vectorMisses,
        entries: this.vectors?.size ?? 0,
        bytes: this.vectors?.calculatedSize ?? 0,
        maxBytes: this.budgets.vectors,
      },
      hitRatio: lookups === 0 ? 0 : (c.blockHits + c.vectorHits) / lookups,
    };
  }
}
