import { parseJobData } from '../src/jobs/job-data.js';
import type { JobContext, JobRun } from '../src/jobs/processor.js';
import { requireReplies } from './replies.js';

/**
 * `compact`: every HVS process merges segments and drops tombstones (one collection or all),
 * then persists WAL-only writes and rewrites its write-ahead log without what is persisted.
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
  await run.progress({ phase: 'done', percent: 100 });
  return { nodes };
}
