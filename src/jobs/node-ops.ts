import { hostname } from 'node:os';
import { definedOnly } from '../core/options.js';
import type { HyperSync } from '../integration/hyper-sync.js';
import type { StreamProgress } from '../integration/rebuild.js';
import type { HvsFleet, NodeOp, NodeReply } from './processor.js';

/** This process's name in job results: host and pid. */
export const NODE_NAME = `${hostname()}:${process.pid}`;

/** Runs an op a job asks of this HVS process. */
export async function handleNodeOp(
  hs: HyperSync,
  op: NodeOp,
  opts: { signal?: AbortSignal; onProgress?: (p: StreamProgress & { phase: string }) => void } = {},
): Promise<unknown> {
  switch (op.op) {
    case 'sync':
      return hs.sync({ direction: op.direction });
    case 'verify': {
      const limit = op.limit !== undefined ? { limit: op.limit } : {};
      if (!op.repair) return hs.verifyConsistency(op.collection, limit);
      const r = await hs.repair(op.collection);
      return {
        consistent: r.after.consistent,
        repaired: { upserted: r.upserted, deleted: r.deleted },
        before: r.before,
        after: r.after,
      };
    }
    case 'compact':
      return hs.compact(op.collection);
    case 'train-index': {
      const { collection, nlist, targetRecall } = op;
      return hs.trainIndex(collection, {
        ...definedOnly({ nlist, targetRecall, signal: opts.signal }),
        ...(opts.onProgress ? { onProgress: (p) => opts.onProgress?.({ phase: p.phase, rows: p.done, total: p.total }) } : {}),
      });
    }
    case 'install':
      return hs.rebuild(op.collection, {
        ...(op.snapshotDir !== undefined ? { snapshotDir: op.snapshotDir } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      });
  }
}

/** The fleet of one: this process's HyperSync (inline jobs). */
export class LocalFleet implements HvsFleet {
  constructor(private readonly hs: HyperSync) {}

  async run(
    op: NodeOp,
    opts: { signal?: AbortSignal; onProgress?: (p: StreamProgress & { phase: string }) => void } = {},
  ): Promise<NodeReply[]> {
    try {
      return [{ node: NODE_NAME, ok: true, result: await handleNodeOp(this.hs, op, opts) }];
    } catch (err) {
      // A cancelled job is not an HVS failure: let the abort through.
      if (opts.signal?.aborted) throw err;
      return [{ node: NODE_NAME, ok: false, error: (err as Error).message }];
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
