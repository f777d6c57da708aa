import { CollectionNotFoundError, DimensionMismatchError, InvalidArgumentError } from '../core/errors.js';
import type { Metric } from '../core/metric.js';
import type { EncoderRef } from '../nvm/nvm-store.js';
import type { WalRecord } from './wal-format.js';
import { loadCollection, type LoadResult } from './collection-loader.js';
import { CollectionState } from './collection-state.js';
import type { Tiers } from './tiers.js';
import type { CollectionInfo, CollectionStatus } from './types.js';

/**
 * The collections this process holds, one {@link CollectionState} each: taken up from the NVM's
 * catalogue at open, when a change names one created elsewhere, or by `createCollection`; loaded
 * into the HVS one after another in the background; forgotten when dropped here or elsewhere.
 */
export class CollectionRegistry {
  private readonly states = new Map<string, CollectionState>();
  private loading: Promise<void> = Promise.resolve();

  constructor(
    private readonly tiers: Tiers,
    private readonly onLoaded: (name: string, result: LoadResult) => void,
    /** The change-log tail should run now. */
    private readonly wake: () => void,
  ) {}

  /**
   * Creates a collection in both tiers. Naming an `encoder` (the default one's name, or one of
   * the encoders by name) records it with its version: the collection's texts are then always
   * encoded by it, and `dim` defaults to its dimension.
   */
  async create(name: string, spec: { dim?: number; metric?: Metric; encoder?: string }): Promise<CollectionInfo> {
    const { nvm, hvs, encoders } = this.tiers;
    const metric = spec.metric ?? 'cosine';
    let encoder: EncoderRef | undefined;
    let dim = spec.dim;
    if (spec.encoder !== undefined) {
      const e = encoders.byName.get(spec.encoder);
      if (!e) {
        const known = [...encoders.byName.keys()];
        throw new InvalidArgumentError(
          `unknown encoder ${JSON.stringify(spec.encoder)}; this process has ${known.length > 0 ? known.join(', ') : 'none'}`,
        );
      }
      if (dim !== undefined && dim !== e.dim) throw new DimensionMismatchError(e.dim, dim, `encoder ${e.name}`);
      dim ??= e.dim;
      encoder = { name: e.name, version: e.version };
    }
    if (dim === undefined) throw new InvalidArgumentError('dim is required unless an encoder is named');
    const lsn = await nvm.lastLsn();
    const c = await nvm.createCollection(name, { dim, metric, ...(encoder ? { encoder } : {}) });
    const state = new CollectionState(c.name, c.dim, c.metric, c.encoder);
    if (hvs.has(name)) await hvs.dropCollection(name);
    const h = hvs.createCollection(name, { dim: c.dim, metric: c.metric });
    h.advanceLsn(lsn);
    state.attach(h);
    this.states.set(name, state);
    state.markReady();
    // Writes by others between lastLsn() and now are in the change log after `lsn`.
    this.wake();
    return infoOf(state);
  }

  /** Drops the collection from both tiers, with its snapshot, cache entries and WAL-only writes. */
  async drop(name: string): Promise<void> {
    const state = await this.stateOf(name);
    await state.lock.runExclusive(async () => {
      await this.tiers.nvm.dropCollection(name);
      await this.forget(state);
    });
  }

  /** Counts across both tiers. */
  async stats(name: string): Promise<CollectionStatus> {
    const s = await this.stateOf(name);
    const counts = await this.tiers.nvm.counts(name);
    const h = s.hvs;
    const mem = h?.memoryUsage();
    const hvs: CollectionStatus['hvs'] = {
      count: h?.count ?? 0,
      bytes: mem ? mem.hostBytes + mem.deviceBytes : 0,
      device: this.tiers.hvs.deviceInfo.device,
      ready: s.status === 'ready',
      state: s.status,
    };
    if (s.error) hvs.error = s.error.message;
    if (h) hvs.index = h.stats().index;
    return {
      ...infoOf(s),
      count: counts.blocks,
      hvs,
      nvm: { count: counts.blocks, vectors: counts.vectors },
      lsn: s.lsn,
      walPending: s.walEntries.size,
      resultCache: this.tiers.results.collectionStats(name),
    };
  }

  /** Every collection held, by name (the sync manager tails these). */
  get all(): ReadonlyMap<string, CollectionState> {
    return this.states;
  }

  /** The collection's state; {@link CollectionNotFoundError} if this process does not hold it. */
  state(name: string): CollectionState {
    const s = this.states.get(name);
    if (!s) throw new CollectionNotFoundError(name);
    return s;
  }

  /**
   * The collection's state; one this process does not hold yet (created by another process) is
   * looked up in the NVM and starts loading.
   */
  async stateOf(name: string): Promise<CollectionState> {
    if (!this.states.has(name)) await this.discover(name);
    return this.state(name);
  }

  list(): CollectionInfo[] {
    return [...this.states.values()].map(infoOf);
  }

  /** Resolves when the collection (default: every collection) is served by the HVS. */
  async ready(collection?: string): Promise<void> {
    if (collection !== undefined) return (await this.stateOf(collection)).whenReady();
    await this.loading;
    for (const s of this.states.values()) await s.whenReady();
  }

  /** Whether every collection is served by the HVS, and each collection's state. */
  readiness(): { ready: boolean; collections: Record<string, CollectionState['status']> } {
    const collections: Record<string, CollectionState['status']> = {};
    for (const s of this.states.values()) collections[s.name] = s.status;
    return { ready: Object.values(collections).every((st) => st === 'ready'), collections };
  }

  /** Takes up every collection of the NVM's catalogue and puts pending WAL records back in memory. */
  async takeUp(pending: readonly WalRecord[]): Promise<void> {
    for (const c of await this.tiers.nvm.listCollections()) {
      this.states.set(c.name, new CollectionState(c.name, c.dim, c.metric, c.encoder));
    }
    // In seq order, so the sync persists them as they were written.
    for (const r of pending) {
      const state = this.states.get(r.op.collection);
      if (!state) continue;
      if (r.op.type === 'upsert') for (const item of r.op.items) state.walEntries.set(item.id, { seq: r.seq, item });
      else for (const id of r.op.ids) state.walEntries.set(id, { seq: r.seq, item: null });
    }
  }

  /** Starts loading every collection held into the HVS, one after another. */
  loadAll(): void {
    const states = [...this.states.values()];
    this.loading = (async () => {
      for (const s of states) await this.load(s);
    })();
  }

  /** Resolves when the loads started so far have ended (for close). */
  async settled(): Promise<void> {
    await this.loading.catch(() => undefined);
  }

  /**
   * Forgets a collection (dropped here or elsewhere): its state, HVS index, cache entries and
   * WAL-only writes. The caller holds the collection's lock.
   */
  async forget(state: CollectionState): Promise<void> {
    const { hvs, cache, wal } = this.tiers;
    this.states.delete(state.name);
    state.cancelWaiters();
    if (hvs.has(state.name)) await hvs.dropCollection(state.name);
    cache.invalidateCollection(state.name);
    this.tiers.results.forget(state.name);
    const seqs = [...state.walEntries.values()].map((e) => e.seq);
    state.walEntries.clear();
    if (seqs.length > 0) await wal.complete(seqs);
  }

  /** Releases every waiter (close). */
  cancelWaiters(): void {
    for (const s of this.states.values()) s.cancelWaiters();
  }

  /**
   * Takes up collections another process created and forgets those it dropped (the change log
   * says nothing of drops: a dropped collection's rows go with it).
   */
  async refreshCatalogue(): Promise<void> {
    const { nvm, log } = this.tiers;
    if (this.tiers.closing()) return;
    const asOf = performance.now();
    const names = new Set((await nvm.listCollections()).map((c) => c.name));
    for (const name of names) if (!this.states.has(name)) await this.discover(name);
    for (const state of [...this.states.values()]) {
      // A collection taken up after the catalogue was read may simply be newer than it.
      if (names.has(state.name) || state.since >= asOf || this.tiers.closing()) continue;
      await state.lock.runExclusive(async () => {
        if (this.states.get(state.name) !== state) return;
        await this.forget(state);
        log.info({ collection: state.name }, 'collection %s was dropped elsewhere; forgotten', state.name);
      });
    }
  }

  /** A change named a collection created by another process: load it. */
  async discover(name: string): Promise<void> {
    if (this.states.has(name) || this.tiers.closing()) return;
    let c;
    try {
      c = await this.tiers.nvm.getCollection(name);
    } catch (err) {
      if (err instanceof CollectionNotFoundError) return;
      throw err;
    }
    if (this.states.has(name)) return;
    const state = new CollectionState(c.name, c.dim, c.metric, c.encoder);
    this.states.set(name, state);
    const previous = this.loading;
    this.loading = previous.then(() => this.load(state));
  }

  private async load(state: CollectionState): Promise<void> {
    const { hvs, nvm, cache, log } = this.tiers;
    try {
      const r = await loadCollection({ hvs, nvm, cache, log, closing: () => this.tiers.closing() }, state);
      this.onLoaded(state.name, r);
    } catch (err) {
      if (this.tiers.closing()) return;
      state.markFailed(err as Error);
      this.tiers.fail(err as Error);
    }
  }
}

/** The public description of a collection (held here, or a catalogue row). */
export function infoOf(s: Pick<CollectionState, 'name' | 'dim' | 'metric' | 'encoder'>): CollectionInfo {
  return { name: s.name, dim: s.dim, metric: s.metric, ...(s.encoder ? { encoder: s.encoder } : {}) };
}
