import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreLockedError } from '../core/errors.js';
import { processAlive } from '../core/process-alive.js';

const LOCK_FILE = 'hypersync.lock';

/**
 * An exclusive lock on a directory: a file created with O_EXCL holding the owner's pid. PGlite
 * is single-process; a second opener (in this process or another) gets {@link StoreLockedError}
 * instead of corrupting the database. A lock left by a process that died is taken over.
 */
export class DirLock {
  private released = false;

  private constructor(private readonly path: string) {}

  static async acquire(dir: string): Promise<DirLock> {
    const path = join(dir, LOCK_FILE);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await open(path, 'wx');
        try {
          await fh.writeFile(`${process.pid}\n`);
          await fh.sync();
        } finally {
          await fh.close();
        }
        return new DirLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
        throw new StoreLockedError(
          `the embedded database in ${dir} is in use by process ${owner}${owner === process.pid ? ' (this one)' : ''}; ` +
            'PGlite allows one process at a time: stop the other one, or set DATABASE_URL to share a PostgreSQL',
        );
      }
      // The owner is gone: the lock is stale.
      await rm(path, { force: true });
    }
    throw new StoreLockedError(`could not lock ${dir}: another process keeps taking it`);
  }

  /** Removes the lock; safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await rm(this.path, { force: true });
  }
}
