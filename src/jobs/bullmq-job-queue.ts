import { EventEmitter } from 'node:events';
import { type Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { HyperSyncError, InvalidArgumentError, UnavailableError } from '../core/errors.js';
import { waitFor } from './inline-job-queue.js';
import { parseJobData, prepareJob } from './job-data.js';
import {
  type AddJobOptions,
  type JobCounts,
  type JobInfo,
  type JobProgress,
  type JobState,
  type JobType,
  JOB_TYPES,
  type JobQueue,
  typeOfJobId,
} from './job-queue.js';
import { JobCancelledError } from '../core/errors.js';

/** Redis keys and channels of one deployment, all under the queue prefix. */
export function redisNames(prefix: string): {
  cancelChannel: string;
  controlChannel: string;
  cancelled: (id: string) => string;
  key: (id: string) => string;
} {
  return {
    key: (id) => `${prefix}:key:${id}`,
    cancelChannel: `${prefix}:cancel`,
    controlChannel: `${prefix}:control`,
    cancelled: (id) => `${prefix}:cancelled:${id}`,
  };
}

/** Finished jobs BullMQ keeps (the oldest go first). */
const KEEP_COMPLETED = 1000;
const KEEP_FAILED = 5000;
/** How long a command waits for the first connection (ms), and for a lost one to come back. */
const CONNECT_WAIT_MS = 2000;
const RECONNECT_WAIT_MS = 250;
/** How long an idempotency key is remembered (s). */
const KEY_TTL_S = 7 * 24 * 3600;
/** How long a cancelled job's record is kept (s). */
const CANCELLED_TTL_S = 7 * 24 * 3600;

/**
 * Jobs on Redis through BullMQ, one queue per job type (so each type has its own concurrency in
 * the workers), named `<prefix>:<type>`. The producer side: the API adds, reads and cancels jobs;
 * `hypersync worker` processes run them ({@link JobWorkers}). Commands fail at once while Redis
 * is unreachable (no offline queue): callers get a 503 instead of a hung request.
 */
export class BullJobQueue implements JobQueue {
  readonly kind = 'bullmq';
  private readonly connection: Redis;
  private readonly queues: Map<JobType, Queue>;
  private readonly names: ReturnType<typeof redisNames>;
  private events: { emitter: EventEmitter; queueEvents: QueueEvents[]; connections: Redis[] } | undefined;
  private closing: Promise<void> | undefined;
  private everReady = false;

  constructor(
    private readonly redisUrl: string,
    readonly prefix = 'hypersync',
  ) {
    this.names = redisNames(prefix);
    this.connection = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false });
    // Errors surface on the commands that fail; the connection retries by itself.
    this.connection.on('error', () => undefined);
    this.connection.on('ready', () => (this.everReady = true));
    this.queues = new Map(
      JOB_TYPES.map((t) => [
        t,
        new Queue(t, {
          connection: this.connection,
          prefix,
          defaultJobOptions: {
            removeOnComplete: { count: KEEP_COMPLETED },
            removeOnFail: { count: KEEP_FAILED },
          },
        }),
      ]),
    );
    for (const q of this.queues.values()) q.on('error', () => undefined);
  }

  /** The BullMQ queues (for a dashboard). */
  bullQueues(): Queue[] {
    return [...this.queues.values()];
  }

  /** Resolves once Redis answers (or rejects with {@link UnavailableError}). */
  async ping(): Promise<void> {
    await this.redis(() => this.connection.ping());
  }

  async add(type: JobType, data: Record<string, unknown>, opts: AddJobOptions = {}): Promise<{ id: string; created: boolean }> {
    const queue = this.queue(type);
    const { id, data: parsed, attempts } = prepareJob(type, data, opts);
    return this.redis(async () => {
      // SET NX decides which of two concurrent adds with one key creates the job.
      if (opts.key !== undefined && (await this.connection.set(this.names.key(id), '1', 'EX', KEY_TTL_S, 'NX')) !== 'OK') {
        return { id, created: false };
      }
      await queue.add(type, parsed, {
        jobId: id,
        attempts,
        backoff: { type: 'exponential', delay: opts.backoffMs ?? 1000 },
      });
      return { id, created: true };
    });
  }

  async get(id: string): Promise<JobInfo | undefined> {
    const type = typeOfJobId(id);
    if (!type) return undefined;
    return this.redis(async () => {
      // The state first: a job read after it would never look finished without its result.
      const state = await this.queue(type).getJobState(id);
      const job = await this.queue(type).getJob(id);
      if (!job) {
        const cancelled = await this.connection.get(this.names.cancelled(id));
        return cancelled ? (JSON.parse(cancelled) as JobInfo) : undefined;
      }
      return infoOf(job, type, state);
    });
  }

  async cancel(id: string): Promise<JobInfo | undefined> {
    const type = typeOfJobId(id);
    if (!type) return undefined;
    return this.redis(async () => {
      const job = await this.queue(type).getJob(id);
      if (!job) return this.get(id);
      const state = await job.getState();
      if (state === 'completed' || state === 'failed') return infoOf(job, type, state);
      const marker = this.names.cancelled(id);
      if (state !== 'active') {
        try {
          // A job that is not running is removed; its record says it was cancelled.
          await job.remove();
          const info: JobInfo = {
            ...infoOf(job, type, 'cancelled'),
            error: new JobCancelledError(id).message,
            finishedAt: new Date().toISOString(),
          };
          await this.connection.set(marker, JSON.stringify(info), 'EX', CANCELLED_TTL_S);
          return info;
        } catch {
          // It became active meanwhile (a locked job cannot be removed): stop it instead.
        }
      }
      // The worker running it aborts its signal; the marker also stops a retry from starting.
      await this.connection.set(marker, '', 'EX', CANCELLED_TTL_S);
      await this.connection.publish(this.names.cancelChannel, id);
      return infoOf(job, type, await job.getState());
    });
  }

  async counts(): Promise<JobCounts> {
    return this.redis(async () => {
      const out = {} as JobCounts;
      for (const [t, q] of this.queues) {
        const c = await q.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
        out[t] = {
          waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
          active: c.active ?? 0,
          delayed: c.delayed ?? 0,
          completed: c.completed ?? 0,
          failed: c.failed ?? 0,
        };
      }
      return out;
    });
  }

  async repeat(name: string, type: JobType, data: Record<string, unknown>, everyMs: number): Promise<void> {
    if (!Number.isInteger(everyMs) || everyMs < 1000)
      throw new InvalidArgumentError(`a repeat interval must be at least 1000 ms, got ${String(everyMs)}`);
    const parsed = parseJobData(type, data) as Record<string, unknown>;
    await this.redis(() =>
      this.queue(type).upsertJobScheduler(`${type}-${name}`, { every: everyMs }, { name: type, data: parsed }),
    );
  }

  async wait(id: string, opts: { timeoutMs?: number; onProgress?: (info: JobInfo) => void } = {}): Promise<JobInfo> {
    const emitter = await this.subscribe();
    return waitFor(this, emitter, id, opts);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const qe of this.events?.queueEvents ?? []) await qe.close().catch(() => undefined);
      for (const c of this.events?.connections ?? []) c.disconnect();
      for (const q of this.queues.values()) await q.close().catch(() => undefined);
      this.connection.disconnect();
    })();
    return this.closing;
  }

  /** Job events of every queue, re-emitted by job id with the job's info. */
  private async subscribe(): Promise<EventEmitter> {
    if (this.events) return this.events.emitter;
    const emitter = new EventEmitter();
    emitter.setMaxListeners(0);
    const connections: Redis[] = [];
    const queueEvents = JOB_TYPES.map((t) => {
      const connection = new Redis(this.redisUrl, { maxRetriesPerRequest: null });
      connection.on('error', () => undefined);
      const qe = new QueueEvents(t, { connection, prefix: this.prefix });
      qe.on('error', () => undefined);
      connections.push(connection);
      const forward = ({ jobId: id }: { jobId: string }): void => {
        if (emitter.listenerCount(id) === 0) return;
        this.get(id)
          .then((info) => info && emitter.emit(id, info))
          .catch(() => undefined);
      };
      for (const ev of ['progress', 'completed', 'failed', 'active', 'delayed', 'removed'] as const) qe.on(ev, forward);
      return qe;
    });
    this.events = { emitter, queueEvents, connections };
    await Promise.all(queueEvents.map((qe) => qe.waitUntilReady()));
    return emitter;
  }

  private queue(type: JobType): Queue {
    const q = this.queues.get(type);
    if (!q) throw new InvalidArgumentError(`unknown job type ${JSON.stringify(type)}; one of ${JOB_TYPES.join(', ')}`);
    return q;
  }

  /**
   * Waits (briefly) for the connection to be ready: commands are not queued while it is not, so
   * right after start or during a reconnect they would fail at once.
   */
  private async connected(): Promise<void> {
    const c = this.connection;
    if (c.status === 'ready') return;
    // At start the first connection may take a moment; a lost one is not waited for long.
    const waitMs = this.everReady ? RECONNECT_WAIT_MS : CONNECT_WAIT_MS;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.off('ready', onReady);
        reject(new Error(`no connection to Redis within ${waitMs} ms (status ${c.status})`));
      }, waitMs);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      c.once('ready', onReady);
    });
  }

  /** Runs Redis commands; connection failures become {@link UnavailableError} (503). */
  private async redis<T>(work: () => Promise<T>): Promise<T> {
    if (this.closing) throw new UnavailableError('the job queue is closed');
    try {
      await this.connected();
      return await work();
    } catch (err) {
      if (err instanceof HyperSyncError) throw err;
      const msg = (err as Error).message;
      throw new UnavailableError(`the job queue (Redis) is unavailable: ${msg}`, { cause: err });
    }
  }
}

/** A BullMQ job as {@link JobInfo}. */
function infoOf(job: Job, type: JobType, state: string): JobInfo {
  const failedReason = job.failedReason as string | undefined;
  let s: JobState;
  if (state === 'failed' && failedReason?.startsWith('JobCancelledError')) s = 'cancelled';
  else if (state === 'active' || state === 'delayed' || state === 'completed' || state === 'failed' || state === 'cancelled')
    s = state;
  else s = 'waiting';
  const info: JobInfo = {
    id: job.id ?? '',
    type,
    state: s,
    progress: (job.progress ?? 0) as JobProgress,
    attempts: job.attemptsStarted ?? job.attemptsMade,
    maxAttempts: job.opts.attempts ?? 1,
    createdAt: new Date(job.timestamp).toISOString(),
  };
  if (job.processedOn) info.startedAt = new Date(job.processedOn).toISOString();
  if (job.finishedOn && (s === 'completed' || s === 'failed' || s === 'cancelled'))
    info.finishedAt = new Date(job.finishedOn).toISOString();
  if (s === 'completed') info.result = job.returnvalue;
  else if (failedReason) info.error = failedReason;
  return info;
}
