import { parseJobData } from '../src/jobs/job-data.js';
import type { JobContext, JobRun } from '../src/jobs/processor.js';
import { requireReplies } from './replies.js';

/**
 * `sync`: every HVS process persists its WAL-only writes to the NVM (`hvs-to-nvm`) and/or
 * catches up with the change log (`nvm-to-hvs`); default both.
 */
export async function syncJob(run: JobRun, ctx: JobContext): Promise<unknown> {
  const data = parseJobData('sync', run.data);
  await run.progress({ percent: 0, phase: 'sync' });
  const nodes = await ctx.fleet.run({ op: 'sync', direction: data.direction }, { signal: run.signal });
  requireReplies('sync', nodes);
  await run.progress({ percent: 100, phase: 'done' });
  return { direction: data.direction, lsn: await ctx.nvm.lastLsn(), nodes };
}
