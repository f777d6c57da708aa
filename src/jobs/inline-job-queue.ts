import { EventEmitter } from 'node:events';
import { ClosedError, InvalidArgumentError, UnavailableError } from '../core/errors.js';
import { parseJobData, prepareJob } from './job-data.js';
import {
  type AddJobOptions,
  FINISHED,
  type JobCounts,
  type JobInfo,
  type JobProgress,
  type JobType,
  JOB_TYPES,
  type JobQueue,
} from './job-queue.js';
import type { JobContext, Processor } from './processor.js';
import { backoffMs, isRetryable, reasonOf } from './run-job.js';
import { JobCancelledError, WorkerShutdownError } from '../core/errors.js';
import { withDefaults } from '../core/options.js';

/** Options of {@link InlineJobQueue}. */
export interface InlineJobQueueOptions {
  processors: Record<JobType, Processor>;
  context: JobContext;
  /** Jobs of a type run at once (default 1 each). */
  concurrency?: Partial<Record<JobType, number>>;
  /** Finished jobs kept for `get` (default 1,000; the oldest go first). */
  keepFinished?: number;
  /** How long close() lets running jobs finish before it aborts them (ms, default 30,000). */
  drainMs?: number;
}

interface Entry {
  info: JobInfo;
  data: Record<string, unknown>;
  backoffMs: number;
  controller?: AbortController;
  timer?: NodeJS.Timeout;
}

/**
 * Jobs run in this process (the embedded default, no Redis), with the same processors, retries,
 * progress, cancellation and per-type concurrency as under BullMQ. Jobs live in memory: a
 * restart forgets them (the work they do is idempotent and can be asked for again).
 */
export class InlineJobQueue implements JobQueue {
  readonly kind = 'inline';
  private readonly jobs = new Map<string, Entry>();
  private readonly waiting = new Map<JobType, string[]>();
  private readonly active = new Map<JobType, number>();
  private readonly events = new EventEmitter();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;

  private readonly opts: InlineJobQueueOptions & Required<Pick<InlineJobQueueOptions, 'drainMs' | 'keepFinished'>>;

  constructor(opts: InlineJobQueueOptions) {
    this.opts = withDefaults({ ...opts, drainMs: 30_000, keepFinished: 1000 }, opts);
    this.events.setMaxListeners(0);
  }

  add(type: JobType, data: Record<string, unknown>, opts: AddJobOptions = {}): Promise<{ id: string; created: boolean }> {
    try {
      return Promise.resolve(this.addNow(type, data, opts));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private addNow(type: JobType, data: Record<string, unknown>, opts: AddJobOptions): { id: string; created: boolean } {
    if (this.closing) throw new UnavailableError('the job queue is closed');
    const { id, data: parsed, attempts } = prepareJob(type, data, opts);
    if (opts.key !== undefined && this.jobs.has(id)) return { id, created: false };
    this.jobs.set(id, {
      info: { id, type, state: 'waiting', progress: 0, attempts: 0, maxAttempts: attempts, createdAt: new Date().toISOString() },
      data: parsed,
      backoffMs: opts.backoffMs ?? 1000,
    });
    this.enqueue(type, id);
    return { id, created: true };
  }

  get(id: string): Promise<JobInfo | undefined> {
    const e = this.jobs.get(id);
    return Promise.resolve(e ? structuredClone(e.info) : undefined);
  }

  async cancel(id: string): Promise<JobInfo | undefined> {
    const e = this.jobs.get(id);
    if (!e) return undefined;
    const { info } = e;
    if (info.state === 'waiting' || info.state === 'delayed') {
      if (e.timer) this.clearTimer(e.timer);
      const q = this.waiting.get(info.type) ?? [];
      const at = q.indexOf(id);
      if (at >= 0) q.splice(at, 1);
      this.finish(e, 'cancelled', { error: new JobCancelledError(id).message });
    } else if (info.state === 'active') {
      e.controller?.abort(new JobCancelledError(id));
    }
    return this.get(id);
  }

  counts(): Promise<JobCounts> {
    const out = {} as JobCounts;
    for (const t of JOB_TYPES) out[t] = { waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0 };
    for (const { info } of this.jobs.values()) {
      const s = info.state === 'cancelled' ? 'failed' : info.state;
      out[info.type][s]++;
    }
    return Promise.resolve(out);
  }

  repeat(name: string, type: JobType, data: Record<string, unknown>, everyMs: number): Promise<void> {
    try {
      this.repeatNow(name, type, data, everyMs);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private repeatNow(name: string, type: JobType, data: Record<string, unknown>, everyMs: number): void {
    if (!Number.isInteger(everyMs) || everyMs < 1000)
      throw new InvalidArgumentError(`a repeat interval must be at least 1000 ms, got ${String(everyMs)}`);
    parseJobData(type, data);
    const timer = setInterval(() => {
      // One run of a schedule at a time: the previous one's id is the key.
      const slot = Math.floor(Date.now() / everyMs);
      this.add(type, data, { key: `${name}-${slot}` }).catch(() => undefined);
    }, everyMs);
    timer.unref();
    this.timers.add(timer);
  }

  wait(id: string, opts: { timeoutMs?: number; onProgress?: (info: JobInfo) => void } = {}): Promise<JobInfo> {
    return waitFor(this, this.events, id, opts);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      for (const q of this.waiting.values()) q.length = 0;
      const drained = Promise.allSettled([...this.running]);
      const drainMs = this.opts.drainMs;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), drainMs).unref()));
      if ((await Promise.race([drained, late])) === 'late') {
        for (const e of this.jobs.values()) e.controller?.abort(new WorkerShutdownError());
        await drained;
      }
      clearTimeout(timer);
      // Jobs that never ran end here: nothing will run them.
      for (const e of this.jobs.values()) {
        if (!FINISHED.has(e.info.state)) this.finish(e, 'failed', { error: new ClosedError('the job queue').message });
      }
    })();
    return this.closing;
  }

  private enqueue(type: JobType, id: string): void {
    let q = this.waiting.get(type);
    if (!q) this.waiting.set(type, (q = []));
    q.push(id);
    this.pump(type);
  }

  private pump(type: JobType): void {
    const q = this.waiting.get(type) ?? [];
    const limit = this.opts.concurrency?.[type] ?? 1;
    while (!this.closing && q.length > 0 && (this.active.get(type) ?? 0) < limit) {
      const e = this.jobs.get(q.shift() ?? '');
      if (!e || e.info.state !== 'waiting') continue;
      this.active.set(type, (this.active.get(type) ?? 0) + 1);
      const run = this.runOnce(e).finally(() => {
        this.running.delete(run);
        this.active.set(type, (this.active.get(type) ?? 1) - 1);
        this.pump(type);
      });
      this.running.add(run);
    }
  }

  private async runOnce(e: Entry): Promise<void> {
    const { info } = e;
    const controller = new AbortController();
    e.controller = controller;
    info.state = 'active';
    info.attempts++;
    info.startedAt ??= new Date().toISOString();
    this.changed(info);
    const log = this.opts.context.log.child({ job: info.id });
    try {
      const result = await this.opts.processors[info.type](
        {
          id: info.id,
          type: info.type,
          data: e.data,
          attempt: info.attempts,
          signal: controller.signal,
          log,
          progress: (p: JobProgress) => {
            info.progress = p;
            this.changed(info);
            return Promise.resolve();
          },
        },
        this.opts.context,
      );
      this.finish(e, 'completed', { result });
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
      e.controller = undefined;
      if (reason instanceof JobCancelledError) this.finish(e, 'cancelled', { error: reason.message });
      else if (isRetryable(reason) && info.attempts < info.maxAttempts && !this.closing) {
        info.state = 'delayed';
        info.error = reasonOf(reason);
        log.warn({ err: info.error, attempt: info.attempts }, 'job attempt failed; retrying');
        const timer = setTimeout(
          () => {
            this.timers.delete(timer);
            e.timer = undefined;
            info.state = 'waiting';
            this.enqueue(info.type, info.id);
          },
          backoffMs(e.backoffMs, info.attempts),
        ).unref();
        e.timer = timer;
        this.timers.add(timer);
        this.changed(info);
      } else {
        log.error({ err: reasonOf(reason) }, 'job failed');
        this.finish(e, 'failed', { error: reasonOf(reason) });
      }
    }
  }

  private finish(e: Entry, state: 'completed' | 'failed' | 'cancelled', out: { result?: unknown; error?: string }): void {
    e.controller = undefined;
    e.info.state = state;
    e.info.finishedAt = new Date().toISOString();
    if (out.result !== undefined) e.info.result = out.result;
    if (state === 'completed') delete e.info.error;
    else if (out.error !== undefined) e.info.error = out.error;
    this.changed(e.info);
    this.prune();
  }

  private changed(info: JobInfo): void {
    this.events.emit(info.id, structuredClone(info));
  }

  private clearTimer(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.timers.delete(t);
  }

  private prune(): void {
    const keep = this.opts.keepFinished;
    const finished = [...this.jobs.values()].filter((x) => FINISHED.has(x.info.state));
    for (const x of finished.slice(0, Math.max(0, finished.length - keep))) this.jobs.delete(x.info.id);
  }
}

/**
 * Resolves with the job once it is finished. `events` emits the job's id with its info on each
 * change (progress included); the job is also read once a second, so an event missed (sent
 * before the subscription, or during a reconnect) delays nothing for long.
 */
export function waitFor(
  queue: Pick<JobQueue, 'get'>,
  events: EventEmitter,
  id: string,
  opts: { timeoutMs?: number; onProgress?: (info: JobInfo) => void },
): Promise<JobInfo> {
  return new Promise<JobInfo>((resolve, reject) => {
    let settled = false;
    const end = (err: Error | undefined, info?: JobInfo): void => {
      if (settled) return;
      settled = true;
      events.off(id, onChange);
      clearInterval(poller);
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(info as JobInfo);
    };
    const onChange = (info: JobInfo): void => {
      if (settled) return;
      opts.onProgress?.(info);
      if (FINISHED.has(info.state)) end(undefined, info);
    };
    const poll = (): void => {
      queue.get(id).then(
        (info) => (info ? onChange(info) : end(new InvalidArgumentError(`no job ${id}`))),
        () => undefined, // unreachable for now: the next poll or an event answers
      );
    };
    events.on(id, onChange);
    const poller = setInterval(poll, 1000);
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => end(new UnavailableError(`job ${id} did not finish within ${opts.timeoutMs} ms`)), opts.timeoutMs)
        : undefined;
    poll();
  });
}
