import { InvalidArgumentError } from '../core/errors.js';

/**
 * Long-running work (sync, rebuild, verify, re-index, embed, compaction, IVF training, backup, restore), run by BullMQ workers on
 * Redis or inline in the process, through one interface and the same processor code.
 */
export const JOB_TYPES = ['sync', 'rebuild', 'verify', 'reindex', 'embed', 'compact', 'index', 'backup', 'restore'] as const;
export type JobType = (typeof JOB_TYPES)[number];

/** Where a job is in its life. `delayed`: waiting for its retry (backoff) or its start time. */
export const JOB_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** What a processor reports while it works: a percentage, or an object with a `percent` field. */
export type JobProgress = number | ({ percent?: number } & Record<string, unknown>);

/** A job as {@link JobQueue.get} reports it. */
export interface JobInfo {
  id: string;
  type: JobType;
  state: JobState;
  progress: JobProgress;
  /** The processor's answer, once completed. */
  result?: unknown;
  /** Why it failed (the last attempt's error) or why it was cancelled. */
  error?: string;
  /** Attempts started so far (a retry is a new attempt). */
  attempts: number;
  /** Attempts allowed in all. */
  maxAttempts: number;
  /** ISO-8601 times. */
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

/** Options of {@link JobQueue.add}. */
export interface AddJobOptions {
  /**
   * Idempotency key: adding a job of the same type with the same key while one is known (in any
   * state, until it is removed by retention) returns that job instead of adding another.
   */
  key?: string;
  /** Attempts in all (default 3); retries wait 1 s, 2 s, 4 s, … (exponential backoff). */
  attempts?: number;
  /** First retry's delay in ms (default 1000). */
  backoffMs?: number;
}

/** Jobs per state, per type (for metrics and dashboards). */
export type JobCounts = Record<JobType, Record<'waiting' | 'active' | 'delayed' | 'completed' | 'failed', number>>;

/** The seam between the API and whatever runs jobs: BullMQ (Redis) or inline. */
export interface JobQueue {
  /** `bullmq` when jobs go through Redis, `inline` when this process runs them. */
  readonly kind: 'bullmq' | 'inline';
  /**
   * Queues a job; `created` is false when `opts.key` named a known job. Throws
   * {@link InvalidArgumentError} for an unknown type and {@link UnavailableError} (503) when the
   * queue cannot be reached.
   */
  add(type: JobType, data: Record<string, unknown>, opts?: AddJobOptions): Promise<{ id: string; created: boolean }>;
  /** The job, or undefined when no job has that id. */
  get(id: string): Promise<JobInfo | undefined>;
  /**
   * Cancels a job: a waiting or delayed one never runs, an active one is signalled to stop (its
   * processor sees an aborted signal) and ends `cancelled`. Finished jobs are left as they are.
   * Returns the job as it stands, or undefined when no job has that id.
   */
  cancel(id: string): Promise<JobInfo | undefined>;
  /** Jobs per type and state. */
  counts(): Promise<JobCounts>;
  /** Adds a `type` job every `everyMs` (one schedule per `name`; adding it again replaces it). */
  repeat(name: string, type: JobType, data: Record<string, unknown>, everyMs: number): Promise<void>;
  /** Waits until the job is finished (completed, failed or cancelled) and returns it. */
  wait(id: string, opts?: { timeoutMs?: number; onProgress?: (info: JobInfo) => void }): Promise<JobInfo>;
  /** Safe to call twice. */
  close(): Promise<void>;
}

export const FINISHED: ReadonlySet<JobState> = new Set(['completed', 'failed', 'cancelled']);

/** Checks an idempotency key: 1 to 200 characters, no ":" (BullMQ's rule for job ids). */
export function checkKey(key: string | undefined): void {
  if (key === undefined) return;
  if (typeof key !== 'string' || key.length === 0 || key.length > 200 || key.includes(':')) {
    throw new InvalidArgumentError('key must be 1 to 200 characters without ":"');
  }
}

/** Job ids carry their type (`rebuild-…`), so `get(id)` finds the queue without a lookup. */
export function jobId(type: JobType, rest: string): string {
  return `${type}-${rest}`;
}

/** The type a job id names, or undefined. */
export function typeOfJobId(id: string): JobType | undefined {
  // Jobs of a repeatable schedule are named `repeat:<type>-<schedule>:<time>` by BullMQ.
  const name = id.startsWith('repeat:') ? id.slice('repeat:'.length) : id;
  const t = name.slice(0, name.indexOf('-'));
  return (JOB_TYPES as readonly string[]).includes(t) ? (t as JobType) : undefined;
}

/** The percentage a progress value carries (0 when it carries none). */
export function percentOf(p: JobProgress): number {
  return typeof p === 'number' ? p : typeof p.percent === 'number' ? p.percent : 0;
}
