import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, HyperSyncError, NotFoundError } from '../src/core/errors.js';
import type { JobContext } from '../src/jobs/processor.js';

/** The file of backup `name` (a checked file name) in the backup directory. */
export function backupFile(ctx: JobContext, name: string): string {
  if (ctx.backupDir === undefined)
    throw new ConfigError('backup and restore jobs need a backup directory (HYPERSYNC_BACKUP_DIR)');
  return join(ctx.backupDir, name);
}

/** The backup's size in bytes; {@link NotFoundError} naming it (not its path) when there is none. */
export async function backupSize(file: string, name: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`no backup ${JSON.stringify(name)}`);
    throw withoutPath(err, name);
  }
}

/**
 * A file-system error without the server path it carries (job results never show one): its code
 * and call, naming the backup instead. Other errors pass as they are.
 */
export function withoutPath(err: unknown, name: string): unknown {
  if (err instanceof HyperSyncError || !(err instanceof Error)) return err;
  const e = err as NodeJS.ErrnoException;
  if (typeof e.path !== 'string' && typeof e.syscall !== 'string') return err;
  return new Error(`backup ${JSON.stringify(name)}: ${e.code ?? 'error'} in ${e.syscall ?? 'file access'}`, { cause: err });
}
