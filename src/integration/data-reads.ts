import { InvalidArgumentError } from '../core/errors.js';
import { compileFilter, type Filter, matchesAll } from '../core/filter.js';
import { isArray } from '../core/ids.js';
import type { StoredBlock } from '../nvm/nvm-store.js';
import type { CollectionState } from './collection-state.js';
import { checkIds } from './item-input.js';
import type { Tiers } from './tiers.js';
import type { Include, ListedItem, ScrollOptions, ScrollPage } from './types.js';

const INCLUDES: readonly Include[] = ['content', 'metadata', 'vector'];
/** What scroll and getMany return besides id and version when `include` is not given. */
const DEFAULT_INCLUDE: readonly Include[] = ['content', 'metadata'];
/** Largest page of a scroll and most ids of one getMany. */
export const MAX_PAGE = 10_000;

/**
 * Reads of the data API over the NVM, the source of truth: counts, pages in id order, several
 * items by id. Writes only this process's WAL holds so far are not seen until a sync persists
 * them (a `get` by id sees them).
 */
export class DataReads {
  constructor(private readonly tiers: Tiers) {}

  /** Items whose metadata match `filter` (every item without one). */
  async count(state: CollectionState, filter?: Filter): Promise<number> {
    const node = filter === undefined ? undefined : compileFilter(filter, 'filter');
    return this.tiers.nvm.count(state.name, node && !matchesAll(node) ? node : undefined);
  }

  /**
   * A page of the items that match, in a stable id order (code-point order): pass `nextCursor`
   * back as `cursor` for the next page. Items written or deleted meanwhile may or may not appear,
   * but no item is listed twice and none present throughout is missed.
   */
  async scroll(state: CollectionState, opts: ScrollOptions = {}): Promise<ScrollPage> {
    const limit = opts.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new InvalidArgumentError(`limit must be an integer between 1 and ${MAX_PAGE}, got ${String(limit)}`);
    }
    if (opts.cursor !== undefined && (typeof opts.cursor !== 'string' || opts.cursor.length === 0)) {
      throw new InvalidArgumentError('cursor must be a nextCursor a scroll returned');
    }
    const include = checkInclude(opts.include);
    const node = opts.filter === undefined ? undefined : compileFilter(opts.filter, 'filter');
    const page = await this.tiers.nvm.scroll(state.name, {
      limit,
      vectors: include.includes('vector'),
      ...(node && !matchesAll(node) ? { filter: node } : {}),
      ...(opts.cursor === undefined ? {} : { after: opts.cursor }),
    });
    return { items: page.blocks.map((b) => listed(b, include)), nextCursor: page.next };
  }

  /** The items that exist among `ids`, in the order asked (each once), in one NVM read. */
  async getMany(
    state: CollectionState,
    ids: readonly string[],
    opts: { include?: readonly Include[] } = {},
  ): Promise<ListedItem[]> {
    checkIds(ids, 'ids');
    if (ids.length > MAX_PAGE) throw new InvalidArgumentError(`at most ${MAX_PAGE} ids per call, got ${ids.length}`);
    const include = checkInclude(opts.include);
    const unique = [...new Set(ids)];
    const blocks = await this.tiers.nvm.getBlocks(state.name, unique, { vectors: include.includes('vector') });
    const out: ListedItem[] = [];
    for (const id of unique) {
      const b = blocks.get(id);
      if (b) out.push(listed(b, include));
    }
    return out;
  }
}

function listed(b: StoredBlock, include: readonly Include[]): ListedItem {
  const item: ListedItem = { id: b.id, version: b.version, source: 'nvm' };
  if (include.includes('content')) item.content = b.content;
  if (include.includes('metadata')) item.metadata = b.metadata;
  if (include.includes('vector') && b.vectors.length > 0) item.vector = b.vectors[0];
  return item;
}

function checkInclude(include: readonly Include[] | undefined): readonly Include[] {
  if (include === undefined) return DEFAULT_INCLUDE;
  if (!isArray(include)) throw new InvalidArgumentError('include must be an array');
  for (const f of include) {
    if (!INCLUDES.includes(f)) {
      throw new InvalidArgumentError(`include: unknown field ${JSON.stringify(f)}; one of ${INCLUDES.join(', ')}`);
    }
  }
  return include;
}
