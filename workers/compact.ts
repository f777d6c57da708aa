import { parseJobData } from '../src/jobs/job-data.js';
import type { JobContext, JobRun } from '../src/jobs/processor.js';
import { requireReplies } from './replies.js';

/**
 * `compact`: every HVS process merges segments, drops tombstones and writes snapshots (one
 * collection or all), then persists WAL-only writes and rewrites its write-ahead log without what
 * is persisted. Over all collections, the change log is then pruned up to the lowest position
 * any process reported (the oldest snapshot any would restart from): rows below it are needed by
 * no one that answered. A process that did not answer (down, or cut off) and restarts from an
 * older snapshot finds the gap and rebuilds that collection from the tables.
 */
export async function compactJob(run: JobRun, ctx: JobContext): Promise<unknown> {
  const data = parseJobData('compact', run.data);
  if (data.collection !== undefined) await ctx.nvm.getCollection(data.collection);
  await run.progress({ phase: 'compact', percent: 0 });
  const nodes = await ctx.fleet.run(
    { op: 'compact', ...(data.collection !== undefined ? { collection: data.collection } : {}) },
    { signal: run.signal, timeoutMs: 30 * 60_000 },
  );
  requireReplies('compact', nodes);
  let changeLog: { prunedThrough: number; deleted: number } | { pruned: false; reason: string };
  if (data.collection !== undefined) {
    changeLog = { pruned: false, reason: 'the change log is pruned by a compact job over every collection' };
  } else if (nodes.length === 0) {
    changeLog = { pruned: false, reason: 'no HVS process answered' };
  } else {
    const positions = nodes.map((n) => (n.result as { changeLogPosition?: unknown } | undefined)?.changeLogPosition);
    if (positions.every((p): p is number => typeof p === 'number' && Number.isSafeInteger(p) && p >= 0)) {
      await run.progress({ phase: 'prune', percent: 90 });
      changeLog = await ctx.nvm.pruneChanges(Math.min(...positions));
    } else {
      changeLog = { pruned: false, reason: 'a process did not report its change-log position' };
    }
  }
  await run.progress({ phase: 'done', percent: 100 });
  return { nodes, changeLog };
}
