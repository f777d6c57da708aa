import { restoreBackup } from '../src/integration/restore.js';
import { parseJobData } from '../src/jobs/job-data.js';
import type { JobContext, JobRun } from '../src/jobs/processor.js';
import { backupFile, backupSize, withoutPath } from './backup-files.js';
import { requireReplies } from './replies.js';

/**
 * `restore`: backup `name` of the backup directory is checked in full, then restored into
 * collections that do not exist yet (every one in it, or those named) with their versions, so
 * their digests equal the source's; then every HVS process takes them up and verifies them.
 */
export async function restoreJob(run: JobRun, ctx: JobContext): Promise<unknown> {
  const data = parseJobData('restore', run.data);
  const file = backupFile(ctx, data.name);
  const bytes = await backupSize(file, data.name);
  const t0 = performance.now();
  let r;
  try {
    r = await restoreBackup(ctx.nvm, file, {
      ...(data.collections ? { collections: data.collections } : {}),
      signal: run.signal,
      onProgress: (p) => {
        const share = p.total > 0 ? p.blocks / p.total : 1;
        const percent = Math.floor(p.phase === 'verify' ? 45 * share : 45 + 45 * share);
        run.progress({ ...p, percent }).catch(() => undefined);
      },
    });
  } catch (err) {
    throw withoutPath(err, data.name);
  }
  let consistent = true;
  const nodes: Record<string, unknown> = {};
  for (const c of r.collections) {
    await run.progress({ phase: 'verify-hvs', collection: c.name, percent: 90 });
    const replies = await ctx.fleet.run(
      { op: 'verify', collection: c.name, repair: false },
      { signal: run.signal, timeoutMs: 30 * 60_000 },
    );
    requireReplies('restore', replies);
    nodes[c.name] = replies;
    for (const n of replies) if (!(n.result as { consistent?: boolean } | undefined)?.consistent) consistent = false;
  }
  await run.progress({ phase: 'done', percent: 100 });
  return { name: data.name, bytes, ...r, consistent, nodes, ms: Math.round(performance.now() - t0) };
}
