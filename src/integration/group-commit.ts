import { UnavailableError } from '../core/errors.js';
import type { NvmStore, UnitOfWork } from '../nvm/nvm-store.js';
import type { PreparedBlock } from './item-input.js';
import type { PreparedOp } from './transaction.js';

/** What one committed write (a member of a group) did. */
export interface CommitOutcome {
  /** The newest lsn among its own changes (0 when it changed nothing). */
  lsn: number;
  /** Blocks its deletes removed. */
  deleted: number;
  /** Per op: the new version of each stored block (`undefined` for a delete). */
  versions: (Map<string, number> | undefined)[];
}

interface Member {
  ops: readonly PreparedOp[];
  resolve: (out: CommitOutcome) => void;
  reject: (err: unknown) => void;
}

/** Upserts of one collection gathered from several members, written by one statement. */
interface PendingUpserts {
  blocks: PreparedBlock[];
  ids: Set<string>;
  owners: { member: number; op: number; ids: string[] }[];
}

/** The most vectors one group writes; a member is never split, so one large write may exceed it. */
const GROUP_VECTORS = 8192;

/**
 * Group commit: every NVM write takes the one write lock (so change-log rows commit in lsn
 * order), which serialises writers. Writes that arrive while a commit is in flight wait for it and
 * then commit together in one transaction, and each collection's upserts in one statement: one
 * lock, one round of statements and one fsync for many writers, instead of one each.
 *
 * Order is kept: members apply in arrival order, and an upsert that touches an id already
 * waiting in the statement being gathered, or a delete, first writes what was gathered. A member
 * that fails (its collection dropped meanwhile, say) would roll the whole group back, so the group
 * is then committed again member by member and only that one fails; an unreachable database fails
 * them all at once.
 */
export class GroupCommitter {
  private readonly queue: Member[] = [];
  /** A transaction is started and waits for the write lock; it takes the queue once it has it. */
  private waiting = false;

  constructor(private readonly nvm: NvmStore) {}

  /** Commits `ops` (one write, or a transaction's writes) atomically, with whatever else is waiting. */
  commit(ops: readonly PreparedOp[]): Promise<CommitOutcome> {
    return new Promise<CommitOutcome>((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      this.pump();
    });
  }

  /**
   * Starts the next group's transaction unless one already waits for the lock. It begins while
   * the group before it still holds the lock, and takes its members only once it holds it, so
   * the lock passes from one group to the next without a round trip between them and each
   * group gathers everything that arrived meanwhile.
   */
  private pump(): void {
    if (this.waiting || this.queue.length === 0) return;
    this.waiting = true;
    void this.commitGroup();
  }

  /** The waiting members up to {@link GROUP_VECTORS} (at least one). */
  private takeGroup(): Member[] {
    let vectors = 0;
    let n = 0;
    while (n < this.queue.length) {
      const size = vectorCount(this.queue[n].ops);
      if (n > 0 && vectors + size > GROUP_VECTORS) break;
      vectors += size;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async commitGroup(): Promise<void> {
    let group: Member[] | undefined;
    let outcomes: CommitOutcome[] | undefined;
    let failure: unknown;
    try {
      // Set only once the transaction has committed.
      outcomes = (
        await this.nvm.unitOfWork(async (uow) => {
          this.waiting = false;
          group = this.takeGroup();
          this.pump();
          return writeMembers(uow, group);
        })
      ).result;
    } catch (err) {
      failure = err;
    }
    if (!group) {
      // The transaction failed before it held the lock (the database is unreachable, say): the
      // writers waiting now would meet the same; they fail with it rather than wait.
      this.waiting = false;
      group = this.queue.splice(0);
    }
    if (outcomes) {
      group.forEach((m, i) => m.resolve(outcomes[i]));
      return;
    }
    if (group.length === 1 || failure instanceof UnavailableError) {
      for (const m of group) m.reject(failure);
      return;
    }
    // One member's error rolled the group back: each again alone, so only that one fails.
    for (const m of group) {
      try {
        const alone = await this.nvm.unitOfWork((uow) => writeMembers(uow, [m]));
        m.resolve(alone.result[0]);
      } catch (err) {
        m.reject(err);
      }
    }
  }
}

/** Writes `members` in the unit of work `uow`; their outcomes, in order. */
async function writeMembers(uow: UnitOfWork, members: readonly Member[]): Promise<CommitOutcome[]> {
  const outcomes: CommitOutcome[] = members.map((m) => ({ lsn: 0, deleted: 0, versions: m.ops.map(() => undefined) }));
  const pending = new Map<string, PendingUpserts>();
  const flush = (collection: string): Promise<void> => flushUpserts(uow, collection, pending, outcomes);
  for (const [m, member] of members.entries()) {
    for (const [o, op] of member.ops.entries()) {
      const collection = op.state.name;
      if (op.type === 'delete') {
        await flush(collection);
        const { deleted, lsn } = await uow.deleteBlocks(collection, op.ids);
        outcomes[m].deleted += deleted;
        outcomes[m].lsn = Math.max(outcomes[m].lsn, lsn);
        continue;
      }
      const ids = op.blocks.map((b) => b.id);
      if (ids.some((id) => pending.get(collection)?.ids.has(id))) await flush(collection);
      let p = pending.get(collection);
      if (!p) pending.set(collection, (p = { blocks: [], ids: new Set(), owners: [] }));
      p.blocks.push(...op.blocks);
      for (const id of ids) p.ids.add(id);
      p.owners.push({ member: m, op: o, ids });
    }
  }
  for (const collection of [...pending.keys()]) await flush(collection);
  return outcomes;
}

/** Writes the upserts gathered for `collection` and hands each owner its versions and lsn. */
async function flushUpserts(
  uow: UnitOfWork,
  collection: string,
  pending: Map<string, PendingUpserts>,
  outcomes: CommitOutcome[],
): Promise<void> {
  const p = pending.get(collection);
  if (!p) return;
  pending.delete(collection);
  const out = await uow.writeBlocks(collection, p.blocks);
  for (const owner of p.owners) {
    const versions = new Map<string, number>();
    let lsn = outcomes[owner.member].lsn;
    for (const id of owner.ids) {
      const version = out.versions.get(id);
      if (version !== undefined) versions.set(id, version);
      lsn = Math.max(lsn, out.lsns.get(id) ?? 0);
    }
    outcomes[owner.member].versions[owner.op] = versions;
    outcomes[owner.member].lsn = lsn;
  }
}

function vectorCount(ops: readonly PreparedOp[]): number {
  let n = 0;
  for (const op of ops) {
    if (op.type === 'delete') n += op.ids.length;
    else for (const b of op.blocks) n += b.vectors.length;
  }
  return n;
}
