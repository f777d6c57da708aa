import { trainingPercent } from '../src/hvs/ivf/ivf-index.js';
import { parseJobData } from '../src/jobs/job-data.js';
import type { JobContext, JobRun } from '../src/jobs/processor.js';
import { requireReplies } from './replies.js';

/**
 * `index`: every HVS process trains the collection's IVF index over the rows it holds (k-means,
 * int8 codes, an nprobe calibrated on held-out rows), swaps it in, and writes the collection's
 * snapshot so a restart loads it. Queries stay exact meanwhile; writes go on, searched exactly
 * beside the lists until a compaction folds them in. Inline, progress follows the phases.
 */
export async function indexJob(run: JobRun, ctx: JobContext): Promise<unknown> {
  const data = parseJobData('index', run.data);
  const { collection } = data;
  await ctx.nvm.getCollection(collection); // CollectionNotFoundError: not worth a retry
  const t0 = performance.now();
  await run.progress({ phase: 'start', percent: 0 });
  let last = -1;
  const nodes = await ctx.fleet.run(
    {
      op: 'train-index',
      collection,
      ...(data.nlist !== undefined ? { nlist: data.nlist } : {}),
      ...(data.targetRecall !== undefined ? { targetRecall: data.targetRecall } : {}),
    },
    {
      signal: run.signal,
      timeoutMs: 60 * 60_000,
      onProgress: (p) => {
        const percent = trainingPercent({ phase: p.phase, done: p.rows, total: p.total });
        if (percent === last) return;
        last = percent;
        run.progress({ phase: p.phase, done: p.rows, total: p.total, percent }).catch(() => undefined);
      },
    },
  );
  requireReplies('index', nodes);
  await run.progress({ phase: 'done', percent: 100 });
  return {
    collection,
    nodes,
    ...(nodes.length === 0 ? { trained: false, reason: 'no HVS process answered' } : { trained: true }),
    ms: Math.round(performance.now() - t0),
  };
}
