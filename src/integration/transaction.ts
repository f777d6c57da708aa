import { ClosedError } from '../core/errors.js';
import type { CollectionState } from './collection-state.js';
import type { PreparedBlock } from './item-input.js';
import type { StoreItem } from './types.js';

/** A store checked in full and waiting for its commit. */
export interface PreparedUpsert {
  type: 'upsert';
  state: CollectionState;
  blocks: PreparedBlock[];
}

/** A delete checked in full and waiting for its commit. */
export interface PreparedDelete {
  type: 'delete';
  state: CollectionState;
  ids: string[];
}

/** A write checked in full and waiting for its commit. */
export type PreparedOp = PreparedUpsert | PreparedDelete;

/** What a transaction needs from HyperSync to check its writes. */
export interface TransactionHost {
  prepareStore(collection: string, items: readonly StoreItem[]): Promise<{ ids: string[]; op: PreparedUpsert }>;
  prepareDelete(collection: string, ids: readonly string[]): PreparedDelete;
}

/**
 * The writes of one {@link HyperSync.transaction}. Each store or delete is checked (and its texts
 * encoded) when called, so bad input throws inside the callback; nothing reaches either tier
 * until the callback returns, and then everything commits in one NVM transaction before the HVS
 * applies it. Reads inside the callback do not see its own writes.
 */
export class Transaction {
  private readonly ops: PreparedOp[] = [];
  private done = false;

  constructor(private readonly host: TransactionHost) {}

  /** Queues a store; resolves to the item ids (generated where missing). */
  async store(collection: string, items: readonly StoreItem[]): Promise<string[]> {
    this.assertOpen();
    const { ids, op } = await this.host.prepareStore(collection, items);
    this.assertOpen();
    this.ops.push(op);
    return ids;
  }

  /** Queues a delete. */
  delete(collection: string, ids: readonly string[]): void {
    this.assertOpen();
    this.ops.push(this.host.prepareDelete(collection, ids));
  }

  /** Ends the transaction and hands over its writes (HyperSync calls this). */
  seal(): PreparedOp[] {
    this.done = true;
    return this.ops;
  }

  private assertOpen(): void {
    if (this.done) throw new ClosedError('transaction');
  }
}
