import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { BullJobQueue } from '../../src/jobs/bullmq-job-queue.js';
import { JobWorkers } from '../../src/jobs/bullmq-workers.js';
import { InlineJobQueue } from '../../src/jobs/inline-job-queue.js';
import { type JobInfo, type JobQueue, type JobType, JOB_TYPES } from '../../src/jobs/job-queue.js';
import type { JobContext, JobRun, Processor } from '../../src/jobs/processor.js';
import { dropPrefix } from '../fixtures/redis.js';
import { redisProblem, servicesRequired, testRedisUrl } from '../fixtures/services.js';
import { sleep } from '../fixtures/wait.js';

const redisDown = await redisProblem();
if (redisDown && !servicesRequired) console.warn(`skipping the BullMQ job queue contract: ${redisDown}`);

/** What the test processors saw. */
class Probe {
  runs = new Map<string, number>();
  running = new Map<string, number>();
  maxRunning = new Map<string, number>();
  aborted = new Set<string>();
  tag(run: JobRun): string {
    const c = run.data.collection;
    return typeof c === 'string' ? c : '';
  }
}

/**
 * Test processors: `sync` and `compact` jobs behave as their `collection` field says (the data
 * must pass each type's schema, and `collection` is a free string).
 */
function processors(probe: Probe): Record<JobType, Processor> {
  const p: Processor = async (run) => {
    const tag = probe.tag(run);
    const key = `${run.type}:${tag}`;
    probe.runs.set(run.id, (probe.runs.get(run.id) ?? 0) + 1);
    probe.running.set(key, (probe.running.get(key) ?? 0) + 1);
    probe.maxRunning.set(key, Math.max(probe.maxRunning.get(key) ?? 0, probe.running.get(key) ?? 0));
    try {
      if (tag.startsWith('ok')) {
        await run.progress({ percent: 50, phase: 'half' });
        await sleep(400, run.signal);
        await run.progress(100);
        return { ok: tag, attempt: run.attempt };
      }
      if (tag === 'flaky') {
        if (run.attempt < 3) throw new Error(`flaky attempt ${run.attempt}`);
        return { attempt: run.attempt };
      }
      if (tag === 'bad') throw new InvalidArgumentError('this input will never work');
      if (tag === 'broken') throw new Error('always broken');
      if (tag === 'slow') {
        await sleep(300, run.signal);
        return 'slow done';
      }
      if (tag === 'forever' || tag === 'handback') {
        try {
          await sleep(60_000, run.signal);
        } catch (err) {
          probe.aborted.add(run.id);
          throw err;
        }
        return 'never';
      }
      return { tag };
    } finally {
      probe.running.set(key, (probe.running.get(key) ?? 1) - 1);
    }
  };
  const out = {} as Record<JobType, Processor>;
  for (const t of JOB_TYPES) out[t] = p;
  return out;
}

const concurrency = { sync: 2, rebuild: 1, verify: 1, reindex: 1, embed: 1, compact: 1, index: 1, backup: 1, restore: 1 };
const log = pino({ level: 'silent' });
const context = { log, rebuildDir: '/nonexistent' } as unknown as JobContext;

interface Harness {
  queue: JobQueue;
  probe: Probe;
  /** Stops whatever runs jobs (workers or the inline queue) with a short drain. */
  stopRunners(): Promise<void>;
  /** Starts runners again (BullMQ only: the inline queue's jobs die with it). */
  restartRunners?(): Promise<void>;
  close(): Promise<void>;
}

function inlineHarness(): Promise<Harness> {
  const probe = new Probe();
  const queue = new InlineJobQueue({ processors: processors(probe), context, concurrency, drainMs: 200 });
  return Promise.resolve({ queue, probe, stopRunners: () => queue.close(), close: () => queue.close() });
}

async function bullHarness(): Promise<Harness> {
  const probe = new Probe();
  const prefix = `hs-test-${randomUUID().slice(0, 8)}`;
  const queue = new BullJobQueue(testRedisUrl, prefix);
  await queue.ping();
  const start = (): Promise<JobWorkers> =>
    JobWorkers.start({
      redisUrl: testRedisUrl,
      prefix,
      processors: processors(probe),
      context,
      concurrency,
      lockMs: 2000,
      drainMs: 200,
      log,
    });
  let workers = await start();
  return {
    queue,
    probe,
    stopRunners: () => workers.close(),
    restartRunners: async () => {
      workers = await start();
    },
    close: async () => {
      await workers.close();
      await queue.close();
      await dropPrefix(testRedisUrl, prefix);
    },
  };
}

const impls: { name: string; make: () => Promise<Harness>; skip: boolean }[] = [
  { name: 'inline', make: inlineHarness, skip: false },
  { name: 'bullmq', make: bullHarness, skip: redisDown !== null && !servicesRequired },
];

for (const impl of impls) {
  describe.skipIf(impl.skip)(`JobQueue contract: ${impl.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await impl.make();
    });
    afterAll(async () => {
      await h.close();
    });

    it('runs a job to completion, reporting progress and the result', async () => {
      const { id, created } = await h.queue.add('sync', { collection: 'ok-1' });
      expect(created).toBe(true);
      expect(id.startsWith('sync-')).toBe(true);
      const seen: JobInfo[] = [];
      const done = await h.queue.wait(id, { timeoutMs: 15_000, onProgress: (i) => seen.push(i) });
      expect(done.state).toBe('completed');
      expect(done.result).toEqual({ ok: 'ok-1', attempt: 1 });
      expect(done.attempts).toBe(1);
      expect(done.progress).toBe(100);
      expect(seen.some((i) => typeof i.progress === 'object' && i.progress.percent === 50)).toBe(true);
      expect(done.finishedAt).toBeDefined();
      expect(await h.queue.get(id)).toMatchObject({ id, type: 'sync', state: 'completed' });
    });

    it('retries a failing job with backoff until it succeeds', async () => {
      const { id } = await h.queue.add('sync', { collection: 'flaky' }, { attempts: 3, backoffMs: 50 });
      const done = await h.queue.wait(id, { timeoutMs: 15_000 });
      expect(done.state).toBe('completed');
      expect(done.result).toEqual({ attempt: 3 });
      expect(done.attempts).toBe(3);
    });

    it('keeps a failed job with its reason once attempts run out', async () => {
      const { id } = await h.queue.add('sync', { collection: 'broken' }, { attempts: 2, backoffMs: 50 });
      const done = await h.queue.wait(id, { timeoutMs: 15_000 });
      expect(done.state).toBe('failed');
      expect(done.error).toContain('always broken');
      expect(done.attempts).toBe(2);
      expect(await h.queue.get(id)).toMatchObject({ state: 'failed' });
    });

    it('does not retry what cannot succeed (bad input)', async () => {
      const { id } = await h.queue.add('sync', { collection: 'bad' }, { attempts: 5, backoffMs: 50 });
      const done = await h.queue.wait(id, { timeoutMs: 15_000 });
      expect(done.state).toBe('failed');
      expect(done.error).toContain('this input will never work');
      expect(done.attempts).toBe(1);
    });

    it('checks the type and the data when a job is added', async () => {
      await expect(h.queue.add('nope' as JobType, {})).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(h.queue.add('reindex', { collection: 'c', m: 1 })).rejects.toThrow(/m/);
      await expect(h.queue.add('sync', { direction: 'sideways' })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(h.queue.add('sync', {}, { attempts: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await h.queue.get('sync-does-not-exist')).toBeUndefined();
      expect(await h.queue.get('garbage')).toBeUndefined();
      expect(await h.queue.cancel('sync-does-not-exist')).toBeUndefined();
    });

    it('treats a key as an idempotent id', async () => {
      const key = `k${randomUUID().slice(0, 8)}`;
      const a = await h.queue.add('sync', { collection: 'ok-key' }, { key });
      const b = await h.queue.add('sync', { collection: 'ok-key' }, { key });
      expect(a).toEqual({ id: `sync-${key}`, created: true });
      expect(b).toEqual({ id: a.id, created: false });
      await h.queue.wait(a.id, { timeoutMs: 15_000 });
      expect(h.probe.runs.get(a.id)).toBe(1);
    });

    it('runs at most `concurrency` jobs of a type at once', async () => {
      const ids = await Promise.all(Array.from({ length: 6 }, () => h.queue.add('sync', { collection: 'slow' })));
      const done = await Promise.all(ids.map(({ id }) => h.queue.wait(id, { timeoutMs: 20_000 })));
      expect(done.every((d) => d.state === 'completed')).toBe(true);
      expect(h.probe.maxRunning.get('sync:slow')).toBe(2);
    });

    it('cancels a waiting job (it never runs) and a running one (its signal aborts)', async () => {
      const running = await h.queue.add('compact', { collection: 'forever' });
      for (let i = 0; i < 100 && (await h.queue.get(running.id))?.state !== 'active'; i++) await sleep(50);
      expect((await h.queue.get(running.id))?.state).toBe('active');
      const queued = await h.queue.add('compact', { collection: 'ok-queued' });
      expect((await h.queue.get(queued.id))?.state).toBe('waiting');
      expect((await h.queue.cancel(queued.id))?.state).toBe('cancelled');
      await h.queue.cancel(running.id);
      const stopped = await h.queue.wait(running.id, { timeoutMs: 15_000 });
      expect(stopped.state).toBe('cancelled');
      expect(stopped.error).toMatch(/cancelled/);
      expect(h.probe.aborted.has(running.id)).toBe(true);
      await sleep(300);
      expect(h.probe.runs.get(queued.id)).toBeUndefined();
      expect((await h.queue.get(queued.id))?.state).toBe('cancelled');
      // A finished job stays as it is.
      const ok = await h.queue.add('compact', { collection: 'ok-after' });
      await h.queue.wait(ok.id, { timeoutMs: 15_000 });
      expect((await h.queue.cancel(ok.id))?.state).toBe('completed');
    });

    it('counts jobs per type and state', async () => {
      const counts = await h.queue.counts();
      expect(Object.keys(counts).sort()).toEqual([...JOB_TYPES].sort());
      expect(counts.sync.completed).toBeGreaterThanOrEqual(8);
      expect(counts.sync.failed).toBeGreaterThanOrEqual(2);
      expect(counts.sync.active).toBe(0);
    });

    it('runs a repeatable job on its schedule', async () => {
      await h.queue.repeat('tick', 'verify', { collection: 'tick' }, 1000);
      const deadline = Date.now() + 6000;
      const ran = (): number => [...h.probe.runs.keys()].filter((id) => id.includes('verify')).length;
      while (ran() < 2 && Date.now() < deadline) await sleep(100);
      expect(ran()).toBeGreaterThanOrEqual(2);
    });

    it('on shutdown lets a running job go: handed back to the queue (BullMQ) or stopped (inline)', async () => {
      const { id } = await h.queue.add('rebuild', { collection: 'handback' });
      for (let i = 0; i < 100 && (await h.queue.get(id))?.state !== 'active'; i++) await sleep(50);
      expect((await h.queue.get(id))?.state).toBe('active');
      await h.stopRunners();
      expect(h.probe.aborted.has(id)).toBe(true);
      const after = await h.queue.get(id);
      if (h.restartRunners) {
        // Back in the queue, no attempt spent, and taken up again by the next worker.
        expect(after?.state).toBe('waiting');
        await h.restartRunners();
        for (let i = 0; i < 100 && (h.probe.runs.get(id) ?? 0) < 2; i++) await sleep(50);
        expect(h.probe.runs.get(id)).toBe(2);
        await h.queue.cancel(id);
        expect((await h.queue.wait(id, { timeoutMs: 15_000 })).state).toBe('cancelled');
      } else {
        expect(after?.state).toBe('failed');
        await expect(h.queue.add('sync', {})).rejects.toThrow(/closed/);
      }
    });
  });
}
