import type { EncoderSet } from './item-input.js';
import { checkMetadata, compileFilter, type Filter, isCleanString } from '../core/filter.js';
import { InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { assertBlockId } from '../core/ids.js';
import { LIMITS } from '../core/limits.js';
import type { BlockPatch, NvmCollection, NvmStore } from '../nvm/nvm-store.js';
import { reconcile } from './sync-manager.js';
import type { CollectionRegistry } from './collection-registry.js';
import { CollectionState } from './collection-state.js';
import { GroupCommitter } from './group-commit.js';
import { checkIds, prepareItems } from './item-input.js';
import type { Tiers } from './tiers.js';
import { Transaction, type PreparedDelete, type PreparedOp, type PreparedUpsert, type TransactionHost } from './transaction.js';
import type { ItemPatch, StoreItem, StoreOptions, StoreResult } from './types.js';
import type { WalUpsertItem } from './wal-format.js';

/** What the write path needs of the sync manager. */
export interface WalPersister {
  /** Persists WAL-only writes to the NVM; returns how many blocks it wrote. */
  persistWal(): Promise<number>;
  /** The change-log tail should run now. */
  wake(): void;
}

/**
 * Every write: checked (and its texts encoded) in full first, then either committed to the NVM in
 * one transaction and applied to the HVS, or (`persist: false`) appended to the local
 * write-ahead log (fsync'd) and applied to the HVS until a sync persists it.
 */
export class WritePath implements TransactionHost {
  private readonly committer: GroupCommitter;

  constructor(
    private readonly tiers: Tiers,
    private readonly registry: CollectionRegistry,
    private readonly syncer: WalPersister,
  ) {
    this.committer = new GroupCommitter(tiers.nvm);
  }

  /**
   * Stores items (upserts: an existing id gets a new version). With `persist` (default) one
   * PostgreSQL transaction writes the blocks, their vectors and change-log rows, then the HVS
   * applies them; without, the local write-ahead log (fsync'd) and the HVS hold them until a sync.
   */
  async store(collection: string, items: readonly StoreItem[], opts: StoreOptions = {}): Promise<StoreResult> {
    await this.registry.stateOf(collection);
    const { ids, op } = await this.prepareStore(collection, items);
    if (opts.persist === false) {
      await this.applyLocalWrite(op);
      return { ids, lsn: op.state.lsn, persisted: false };
    }
    const { lsn } = await this.commit([op]);
    return { ids, lsn, persisted: true };
  }

  /** Deletes blocks from both tiers (or, with `persist: false`, from the HVS and the WAL first). */
  async delete(collection: string, ids: readonly string[], opts: StoreOptions = {}): Promise<{ deleted: number; lsn: number }> {
    await this.registry.stateOf(collection);
    const op = this.prepareDelete(collection, ids);
    if (opts.persist === false) {
      const deleted = await this.applyLocalWrite(op);
      return { deleted, lsn: op.state.lsn };
    }
    const { lsn, deleted } = await this.commit([op]);
    return { deleted, lsn };
  }

  /**
   * Deletes the blocks whose metadata match `filter` from both tiers: one NVM transaction finds
   * and deletes them (with their change-log rows), then the HVS drops them. WAL-only writes of the
   * collection are persisted first, so the filter sees them.
   */
  async deleteWhere(collection: string, filter: Filter): Promise<{ deleted: number; lsn: number }> {
    const state = await this.registry.stateOf(collection);
    const node = compileFilter(filter, 'filter');
    if (state.walEntries.size > 0) await this.syncer.persistWal();
    const { deleted, lsn, ids } = await this.tiers.nvm.deleteWhere(collection, node);
    if (ids.length > 0) await this.applyCommitted({ type: 'delete', state, ids }, lsn, undefined);
    return { deleted, lsn };
  }

  /**
   * Changes a block's metadata and/or content; its vectors stay. The block gets a new version
   * (logged like any write) and the HVS re-reads it, so filters see the new metadata.
   * {@link NotFoundError} when the block does not exist.
   */
  async patch(collection: string, id: string, patch: ItemPatch): Promise<{ id: string; version: number; lsn: number }> {
    const state = await this.registry.stateOf(collection);
    assertBlockId(id, 'patch');
    const change = checkPatch(patch);
    if (state.walEntries.has(id)) await this.syncer.persistWal();
    const done = await this.tiers.nvm.patchBlock(collection, id, change);
    if (!done) throw new NotFoundError(`no item ${JSON.stringify(id)} in collection ${collection}`);
    this.tiers.cache.invalidate(collection, [id]);
    // The HVS takes the patch from the change log, a moment later: cached answers go now.
    this.tiers.results.invalidate(collection);
    if (state.loadingHvs) {
      try {
        await state.lock.runExclusive(async () => {
          if (state.lsn < done.lsn) await reconcile(this.tiers, state, [id]);
        });
      } catch (err) {
        this.tiers.fail(err as Error);
        this.syncer.wake();
      }
    }
    return { id, version: done.version, lsn: done.lsn };
  }

  /**
   * Runs `work` with a {@link Transaction}: its stores and deletes (any collections) commit in
   * one NVM transaction and then reach the HVS, or, if `work` throws, reach neither tier.
   */
  async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<{ result: T; lsn: number }> {
    const tx = new Transaction(this);
    let result: T;
    try {
      result = await work(tx);
    } catch (err) {
      tx.seal(); // nothing was written; later calls on tx are refused
      throw err;
    }
    const ops = tx.seal();
    const lsn = ops.length > 0 ? (await this.commit(ops)).lsn : 0;
    return { result, lsn };
  }

  /** Checks and encodes a store (see {@link Transaction}). */
  async prepareStore(collection: string, items: readonly StoreItem[]): Promise<{ ids: string[]; op: PreparedUpsert }> {
    const state = this.registry.state(collection);
    const { ids, blocks } = await prepareItems(state, items, this.tiers.encoders);
    return { ids, op: { type: 'upsert', state, blocks } };
  }

  /** Checks a delete (see {@link Transaction}). */
  prepareDelete(collection: string, ids: readonly string[]): PreparedDelete {
    const state = this.registry.state(collection);
    checkIds(ids);
    return { type: 'delete', state, ids: [...new Set(ids)] };
  }

  /**
   * Commits writes to the NVM in one transaction (with other writers' that wait at the same
   * time: {@link GroupCommitter}), then applies them to the HVS; returns the lsn and how many
   * blocks the deletes removed.
   */
  private async commit(ops: readonly PreparedOp[]): Promise<{ lsn: number; deleted: number }> {
    // An id with a WAL-only write is persisted first, so the NVM sees its writes in order.
    const walHeld = ops.some((op) =>
      (op.type === 'upsert' ? op.blocks.map((b) => b.id) : op.ids).some((id) => op.state.walEntries.has(id)),
    );
    if (walHeld) await this.syncer.persistWal();
    const { lsn, deleted, versions } = await this.committer.commit(ops);
    for (const [i, op] of ops.entries()) await this.applyCommitted(op, lsn, versions[i]);
    return { lsn, deleted };
  }

  /**
   * Applies a committed write to the HVS unless the change-log tail got there first (it then
   * applied this state or a newer one). A failure here loses nothing: the NVM has the write and
   * the tail brings the HVS to it.
   */
  private async applyCommitted(op: PreparedOp, lsn: number, versions: Map<string, number> | undefined): Promise<void> {
    const { state } = op;
    this.tiers.cache.invalidate(state.name, op.type === 'upsert' ? op.blocks.map((b) => b.id) : op.ids);
    if (!state.loadingHvs) return;
    try {
      await state.lock.runExclusive(async () => {
        if (state.lsn >= lsn) return;
        if (op.type === 'delete') state.deleteBlocks(op.ids);
        else
          await state.upsertBlocks(
            op.blocks.map((b) => ({ id: b.id, version: versions?.get(b.id) ?? 1, vectors: b.vectors, metadata: b.metadata })),
          );
      });
    } catch (err) {
      this.tiers.fail(err as Error);
      this.syncer.wake();
    }
  }

  /** A `persist: false` write: appended to the WAL (fsync'd), then applied to the HVS. */
  private async applyLocalWrite(op: PreparedOp): Promise<number> {
    const { state } = op;
    const { wal, cache } = this.tiers;
    await state.whenReady();
    return state.lock.runExclusive(async () => {
      if (op.type === 'delete') {
        const seq = await wal.append({ type: 'delete', collection: state.name, ids: op.ids });
        for (const id of op.ids) state.walEntries.set(id, { seq, item: null });
        cache.invalidate(state.name, op.ids);
        return state.deleteBlocks(op.ids);
      }
      const items: WalUpsertItem[] = op.blocks.map((b) => {
        const e = state.walEntries.get(b.id);
        const previous = e ? e.item?.version : state.versionOf(b.id);
        return { id: b.id, version: (previous ?? 0) + 1, vectors: b.vectors, content: b.content, metadata: b.metadata };
      });
      const seq = await wal.append({ type: 'upsert', collection: state.name, items });
      for (const item of items) state.walEntries.set(item.id, { seq, item });
      cache.invalidate(
        state.name,
        op.blocks.map((b) => b.id),
      );
      await state.upsertBlocks(items);
      return items.length;
    });
  }
}

/** Checks a patch: at least one of metadata (checked like an item's) and content. */
function checkPatch(patch: ItemPatch): BlockPatch {
  if (typeof patch !== 'object' || patch === null) throw new InvalidArgumentError('patch must be an object');
  const { metadata, content } = patch;
  if (metadata === undefined && content === undefined) {
    throw new InvalidArgumentError('patch needs metadata or content (the vector stays as it is)');
  }
  const out: BlockPatch = {};
  if (metadata !== undefined) out.metadata = checkMetadata(metadata, 'metadata');
  if (content !== undefined) {
    if (content !== null && (typeof content !== 'string' || content.length > LIMITS.textChars || !isCleanString(content))) {
      throw new InvalidArgumentError(
        `content must be null or well-formed text without NUL characters, at most ${LIMITS.textChars} characters`,
      );
    }
    out.content = content;
  }
  return out;
}

/**
 * The durable half of the write path, for a process without an HVS (an `embed` worker): checks
 * and encodes items for a collection of the NVM's catalogue and writes them in one NVM
 * transaction; HVS processes take them up from the change log.
 */
export async function writeToNvm(
  nvm: NvmStore,
  encoders: EncoderSet,
  c: NvmCollection,
  items: readonly StoreItem[],
): Promise<{ lsn: number }> {
  const { blocks } = await prepareItems(new CollectionState(c.name, c.dim, c.metric, c.encoder), items, encoders);
  return nvm.unitOfWork((uow) => uow.writeBlocks(c.name, blocks));
}
