/** Long-running work, run by workers (BullMQ on Redis) or inline in the process. */
export type JobType = 'sync' | 'rebuild' | 'verify' | 'reindex' | 'embed' | 'compact';

/** Where a job is in its life. */
export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'delayed' | 'cancelled';

/** A job as {@link JobQueue.get} reports it. */
export interface JobInfo {
  id: string;
  type: JobType;
  state: JobState;
  /** 0–100, or a processor-defined object. */
  progress: number | Record<string, unknown>;
  result?: unknown;
  /** Why it failed. */
  error?: string;
}

/** Options of {@link JobQueue.add}. */
export interface AddJobOptions {
  /** Idempotent id: adding a job whose id exists returns the existing one. */
  jobId?: string;
}

/** The seam between the API and whatever runs jobs: BullMQ (Redis) or inline. */
export interface JobQueue {
  add(type: JobType, data: Record<string, unknown>, opts?: AddJobOptions): Promise<{ id: string }>;
  /** The job, or undefined when no job has that id. */
  get(id: string): Promise<JobInfo | undefined>;
  /** Safe to call twice. */
  close(): Promise<void>;
}
