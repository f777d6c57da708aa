import type { JobType } from '../src/jobs/job-queue.js';
import type { Processor } from '../src/jobs/processor.js';
import { backupJob } from './backup.js';
import { compactJob } from './compact.js';
import { embedJob } from './embed.js';
import { indexJob } from './train-index.js';
import { rebuildJob } from './rebuild.js';
import { reindexJob } from './reindex.js';
import { restoreJob } from './restore.js';
import { syncJob } from './sync.js';
import { verifyJob } from './verify.js';

/** The processor of each job type: the same code under BullMQ and inline. */
export const PROCESSORS: Record<JobType, Processor> = {
  sync: syncJob,
  rebuild: rebuildJob,
  verify: verifyJob,
  reindex: reindexJob,
  embed: embedJob,
  compact: compactJob,
  index: indexJob,
  backup: backupJob,
  restore: restoreJob,
};

/**
 * Jobs of a type one worker process runs at once: rebuilds and re-indexes hold a collection's
 * worth of memory or a PostgreSQL backend each; backups and restores a backend and a file; syncs are small.
 */
export const DEFAULT_CONCURRENCY: Record<JobType, number> = {
  sync: 4,
  rebuild: 1,
  verify: 1,
  reindex: 1,
  embed: 1,
  compact: 1,
  index: 1,
  backup: 1,
  restore: 1,
};
