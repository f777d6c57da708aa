import { writeToNvm } from '../src/integration/write-path.js';
import { parseJobData } from '../src/jobs/job-data.js';
import type { JobContext, JobRun } from '../src/jobs/processor.js';

/**
 * `embed`: encodes a large batch of texts on the worker's device, in steps of `batchSize`, and
 * stores them durably (one NVM transaction per step); HVS processes take them up from the change
 * log. Items without an id get `<job id>-<index>`, so a retried job rewrites the same blocks.
 */
export async function embedJob(run: JobRun, ctx: JobContext): Promise<unknown> {
  const data = parseJobData('embed', run.data);
  const c = await ctx.nvm.getCollection(data.collection);
  const t0 = performance.now();
  const total = data.items.length;
  let lsn = 0;
  for (let start = 0; start < total; start += data.batchSize) {
    run.signal.throwIfAborted();
    const batch = data.items.slice(start, start + data.batchSize).map((item, i) => ({
      ...item,
      id: item.id ?? `${run.id}-${start + i}`,
    }));
    ({ lsn } = await writeToNvm(ctx.nvm, ctx.encoders, c, batch));
    const done = Math.min(total, start + data.batchSize);
    await run.progress({ phase: 'embed', done, total, percent: (100 * done) / total });
  }
  const seconds = (performance.now() - t0) / 1000;
  return { collection: c.name, stored: total, lsn, textsPerSecond: Math.round(total / Math.max(seconds, 1e-3)) };
}
