import { parseJobData } from '../src/jobs/job-data.js';
import type { JobContext, JobRun, NodeReply } from '../src/jobs/processor.js';
import { requireReplies } from './replies.js';

/**
 * `verify`: the consistency report of both tiers (per HVS process), optionally repaired; without
 * a collection, every collection (the repeatable schedule).
 */
export async function verifyJob(run: JobRun, ctx: JobContext): Promise<unknown> {
  const data = parseJobData('verify', run.data);
  const names = data.collection !== undefined ? [data.collection] : (await ctx.nvm.listCollections()).map((c) => c.name);
  if (data.collection !== undefined) await ctx.nvm.getCollection(data.collection);
  const collections: Record<string, NodeReply[]> = {};
  let consistent = true;
  for (const [i, name] of names.entries()) {
    run.signal.throwIfAborted();
    await run.progress({ phase: 'verify', collection: name, done: i, total: names.length, percent: (100 * i) / names.length });
    const nodes = await ctx.fleet.run(
      { op: 'verify', collection: name, repair: data.repair, ...(data.limit !== undefined ? { limit: data.limit } : {}) },
      { signal: run.signal, timeoutMs: 30 * 60_000 },
    );
    requireReplies('verify', nodes);
    collections[name] = nodes;
    for (const n of nodes) if (!(n.result as { consistent?: boolean } | undefined)?.consistent) consistent = false;
  }
  await run.progress({ phase: 'done', done: names.length, total: names.length, percent: 100 });
  return { consistent, repair: data.repair, collections };
}
