import { writeBackup } from '../src/integration/backup.js';
import { parseJobData } from '../src/jobs/job-data.js';
import type { JobContext, JobRun } from '../src/jobs/processor.js';
import { backupFile, withoutPath } from './backup-files.js';
import { requireReplies } from './replies.js';

/**
 * `backup`: every HVS process persists its WAL-only writes, then one NVM snapshot of the
 * collections (one, those named, or every one) is written as backup `name` in the backup
 * directory. The result names the backup, never its path.
 */
export async function backupJob(run: JobRun, ctx: JobContext): Promise<unknown> {
  const data = parseJobData('backup', run.data);
  const file = backupFile(ctx, data.name);
  const collections = data.collection !== undefined ? [data.collection] : data.collections;
  await run.progress({ phase: 'persist', percent: 0 });
  // Acknowledged writes the local WAL of a serving process holds are in the copy too.
  requireReplies('backup', await ctx.fleet.run({ op: 'sync', direction: 'hvs-to-nvm' }, { signal: run.signal }));
  const t0 = performance.now();
  try {
    const r = await writeBackup(ctx.nvm, file, {
      ...(collections ? { collections } : {}),
      signal: run.signal,
      onProgress: (p) =>
        run.progress({ ...p, percent: p.total > 0 ? Math.floor((99 * p.blocks) / p.total) : 99 }).catch(() => undefined),
    });
    await run.progress({ phase: 'done', percent: 100 });
    return { name: data.name, ...r, ms: Math.round(performance.now() - t0) };
  } catch (err) {
    throw withoutPath(err, data.name);
  }
}
