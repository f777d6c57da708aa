import type { Logger } from 'pino';
import type { EncoderSet } from '../integration/item-input.js';
import type { StreamProgress } from '../integration/rebuild.js';
import type { NvmStore } from '../nvm/nvm-store.js';
import type { JobProgress, JobType } from './job-queue.js';

/** One attempt of a job, as its processor sees it. */
export interface JobRun<D = Record<string, unknown>> {
  id: string;
  type: JobType;
  data: D;
  /** 1 for the first attempt, 2 for the first retry, … */
  attempt: number;
  /** Aborted when the job is cancelled or the worker shuts down: stop soon and throw. */
  signal: AbortSignal;
  progress(p: JobProgress): Promise<void>;
  log: Logger;
}

/** What an HVS process is asked to do by a job (see `src/jobs/node-ops.ts`). */
export type NodeOp =
  | { op: 'sync'; direction: 'both' | 'hvs-to-nvm' | 'nvm-to-hvs' }
  | { op: 'verify'; collection: string; repair: boolean; limit?: number }
  | { op: 'compact'; collection?: string }
  | { op: 'train-index'; collection: string; nlist?: number; targetRecall?: number }
  | { op: 'install'; collection: string; snapshotDir?: string };

/** One HVS process's answer. */
export interface NodeReply {
  node: string;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/**
 * Every process that holds an HVS: this one (inline), or those subscribed to the control channel
 * on Redis. An op runs on each and the replies come back; no HVS process running means no reply.
 */
export interface HvsFleet {
  run(
    op: NodeOp,
    opts?: { signal?: AbortSignal; timeoutMs?: number; onProgress?: (p: StreamProgress & { phase: string }) => void },
  ): Promise<NodeReply[]>;
  close(): Promise<void>;
}

/** What processors work with, wherever they run. */
export interface JobContext {
  nvm: NvmStore;
  encoders: EncoderSet;
  fleet: HvsFleet;
  /**
   * Builds a collection's snapshot from the NVM into `dir`, off to the side (a worker process);
   * absent where the HVS process is this one and rebuilds in place (inline).
   */
  buildSnapshot?: (
    collection: string,
    dir: string,
    opts: { signal: AbortSignal; onProgress: (p: StreamProgress) => Promise<void> },
  ) => Promise<{ dir: string; lsn: number; rows: number }>;
  /** Where built snapshots wait for the HVS processes (shared with them: same data directory). */
  rebuildDir: string;
  /**
   * Where `backup` jobs write and `restore` jobs read backups, by name (`HYPERSYNC_BACKUP_DIR`);
   * without one those jobs fail.
   */
  backupDir?: string;
  log: Logger;
}

/** Runs one attempt of a job; what it returns is the job's result. */
export type Processor = (run: JobRun, ctx: JobContext) => Promise<unknown>;
