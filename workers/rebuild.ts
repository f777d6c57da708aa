import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseJobData } from '../src/jobs/job-data.js';
import type { JobContext, JobRun } from '../src/jobs/processor.js';
import { requireReplies } from './replies.js';

/**
 * `rebuild`: the collection's index is built from the NVM off to the side (in a worker: a
 * snapshot in the shared data directory), then every HVS process switches to it atomically and
 * replays the change-log tail; queries are answered by the old index until then.
 */
export async function rebuildJob(run: JobRun, ctx: JobContext): Promise<unknown> {
  const { collection } = parseJobData('rebuild', run.data);
  await ctx.nvm.getCollection(collection); // CollectionNotFoundError: not worth a retry
  const t0 = performance.now();
  let built: { dir: string; lsn: number; rows: number; ms: number } | undefined;
  const dir = join(ctx.rebuildDir, `${collection}-${run.id.replace(/[^\w.-]/g, '_')}`);
  try {
    if (ctx.buildSnapshot) {
      // A killed earlier attempt may have left a partial build here.
      await rm(dir, { recursive: true, force: true });
      const b = await ctx.buildSnapshot(collection, dir, {
        signal: run.signal,
        onProgress: (p) =>
          run.progress({ phase: 'build', rows: p.rows, total: p.total, percent: p.total > 0 ? (80 * p.rows) / p.total : 0 }),
      });
      built = { ...b, ms: Math.round(performance.now() - t0) };
      await run.progress({ phase: 'install', rows: b.rows, total: b.rows, percent: 80 });
    }
    let last = 0;
    const nodes = await ctx.fleet.run(
      { op: 'install', collection, ...(built ? { snapshotDir: built.dir } : {}) },
      {
        signal: run.signal,
        timeoutMs: 30 * 60_000,
        onProgress: (p) => {
          // Inline, the HVS process streams the NVM itself: that is the long part.
          const percent = p.phase === 'stream' && p.total > 0 ? (90 * p.rows) / p.total : p.phase === 'switch' ? 95 : 90;
          if (percent - last >= 1 || p.phase !== 'stream') {
            last = percent;
            run.progress({ phase: p.phase, rows: p.rows, total: p.total, percent }).catch(() => undefined);
          }
        },
      },
    );
    requireReplies('rebuild', nodes);
    await run.progress({ phase: 'done', percent: 100 });
    // Where the build waited is the server's business, not the job's result.
    const summary = built && (({ dir: _dir, ...rest }) => rest)(built);
    return { collection, built: summary, nodes, ms: Math.round(performance.now() - t0) };
  } finally {
    if (built) await rm(dir, { recursive: true, force: true });
  }
}
