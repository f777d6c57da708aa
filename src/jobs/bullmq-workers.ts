import { type Job, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { redisNames } from './bullmq-job-queue.js';
import { type JobProgress, type JobType, JOB_TYPES } from './job-queue.js';
import type { JobContext, Processor } from './processor.js';
import { isRetryable, reasonOf } from './run-job.js';
import { JobCancelledError, WorkerShutdownError } from '../core/errors.js';
import { withDefaults } from '../core/options.js';

/** Options of {@link JobWorkers}. */
export interface JobWorkersOptions {
  redisUrl: string;
  prefix?: string;
  processors: Record<JobType, Processor>;
  context: JobContext;
  concurrency: Record<JobType, number>;
  /**
   * How long a job's lock lasts without renewal (ms, default 30,000): a worker killed mid-job is
   * noticed after about this long, and its job goes back to waiting for another attempt.
   */
  lockMs?: number;
  /** How long close() lets running jobs finish before it hands them back (ms, default 30,000). */
  drainMs?: number;
  log: Logger;
}

/**
 * The consuming side: one BullMQ worker per job type (each with its concurrency), running the
 * processors. Cancellation reaches a running job through a pub/sub channel (the worker holding it
 * aborts its signal); a graceful close lets running jobs finish for `drainMs`, then hands the
 * rest back to the queue (moved to waiting, no attempt spent).
 */
export class JobWorkers {
  private readonly workers: Worker[] = [];
  private readonly connections: Redis[] = [];
  private shuttingDown = false;
  private closing: Promise<void> | undefined;

  private readonly opts: JobWorkersOptions & Required<Pick<JobWorkersOptions, 'prefix' | 'lockMs' | 'drainMs'>>;

  private constructor(opts: JobWorkersOptions) {
    this.opts = withDefaults({ ...opts, prefix: 'hypersync', lockMs: 30_000, drainMs: 30_000 }, opts);
  }

  static async start(opts: JobWorkersOptions): Promise<JobWorkers> {
    const w = new JobWorkers(opts);
    await w.startAll();
    return w;
  }

  private async startAll(): Promise<void> {
    const { redisUrl, log } = this.opts;
    const prefix = this.opts.prefix;
    const names = redisNames(prefix);
    const lockDuration = this.opts.lockMs;
    const redis = (): Redis => {
      const c = new Redis(redisUrl, { maxRetriesPerRequest: null });
      c.on('error', (err: Error) => log.debug({ err: err.message }, 'worker: Redis error'));
      this.connections.push(c);
      return c;
    };
    const cmd = redis();
    for (const type of JOB_TYPES) {
      const worker = new Worker(
        type,
        (job: Job, token?: string, signal?: AbortSignal) => this.process(type, cmd, job, token, signal),
        {
          connection: redis(),
          prefix,
          concurrency: this.opts.concurrency[type],
          lockDuration,
          stalledInterval: Math.max(1000, Math.round(lockDuration / 2)),
          maxStalledCount: 2,
          autorun: true,
        },
      );
      worker.on('error', (err) => this.reportError(err, type));
      worker.on('failed', (job, err) => log.warn({ job: job?.id, err: err.message }, 'job attempt failed'));
      worker.on('completed', (job) => log.info({ job: job.id }, 'job completed'));
      this.workers.push(worker);
    }
    const sub = redis();
    sub.on('message', (_channel: string, id: string) => {
      for (const w of this.workers) w.cancelJob(id, 'cancelled');
    });
    await sub.subscribe(names.cancelChannel);
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
    log.info({ prefix, concurrency: this.opts.concurrency, lockMs: lockDuration }, 'job workers ready');
  }

  private lastErrorLog = 0;

  /** Worker errors (mostly Redis going away): one log line per 10 s, not one per worker per retry. */
  private reportError(err: Error, type: JobType): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 10_000) return;
    this.lastErrorLog = now;
    this.opts.log.warn({ err: err.message, type }, 'job worker error (Redis unreachable?); it reconnects by itself');
  }

  private async process(type: JobType, cmd: Redis, job: Job, token: string | undefined, signal?: AbortSignal): Promise<unknown> {
    const id = job.id ?? '';
    const names = redisNames(this.opts.prefix);
    if ((await cmd.exists(names.cancelled(id))) === 1) throw new UnrecoverableError(reasonOf(new JobCancelledError(id)));
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(this.shuttingDown ? new WorkerShutdownError() : new JobCancelledError(id));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const log = this.opts.log.child({ job: id });
    try {
      return await this.opts.processors[type](
        {
          id,
          type,
          data: job.data as Record<string, unknown>,
          attempt: job.attemptsStarted ?? job.attemptsMade + 1,
          signal: controller.signal,
          log,
          progress: (p: JobProgress) => job.updateProgress(p),
        },
        this.opts.context,
      );
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
      if (reason instanceof WorkerShutdownError && token !== undefined) {
        // Handed back: another worker (or this one, restarted) takes it up from the start.
        log.info('worker shutting down: job handed back to the queue');
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (!isRetryable(reason)) throw new UnrecoverableError(reasonOf(reason));
      throw reason instanceof Error ? reason : new Error(String(reason));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Stops taking jobs; running ones finish within `drainMs` or are handed back. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = Promise.allSettled(this.workers.map((w) => w.close()));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), this.opts.drainMs)));
      if ((await Promise.race([closed, late])) === 'late') {
        this.shuttingDown = true;
        for (const w of this.workers) w.cancelAllJobs('shutdown');
        await closed;
      }
      clearTimeout(timer);
      for (const c of this.connections) c.disconnect();
    })();
    return this.closing;
  }
}
