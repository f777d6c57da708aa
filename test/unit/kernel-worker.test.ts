import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WorkerSearchKernel } from '../../kernels/worker-kernel.js';
import { KernelWorkerError } from '../../src/core/errors.js';
import { Hvs } from '../../src/hvs/hvs.js';
import { freshSeed, randomVectors, rng } from '../fixtures/random.js';

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'kernel-worker-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** The worker threads of a kernel: terminating one is a real crash of that thread. */
function workersOf(kernel: WorkerSearchKernel): Worker[] {
  return (kernel as unknown as { threads: { worker: Worker }[] }).threads.map((t) => t.worker);
}

describe('a kernel worker thread that dies', () => {
  it('while a segment is being sealed: no row is lost, searches go on, flush() leaves it sealed', async () => {
    const hvs = await Hvs.open({ dataDir, device: 'cpu', sealThreshold: 2000 });
    try {
      const dim = 64;
      const c = hvs.createCollection('midbuild', { dim, metric: 'l2' });
      const vectors = randomVectors(rng(freshSeed()), 2000, dim);
      const ids = Array.from({ length: 2000 }, (_, i) => `m${i}`);
      await c.upsert(ids, vectors); // fills the segment: its build starts on a worker
      for (const w of workersOf(hvs.kernel as WorkerSearchKernel)) await w.terminate();
      // the build may or may not have finished before the crash; either way nothing is lost
      await c.idle().catch((err: unknown) => expect(err).toBeInstanceOf(KernelWorkerError));
      expect(c.count).toBe(2000);
      const q = vectors.slice(7 * dim, 8 * dim);
      const hit = async (): Promise<string> => (await c.search([q], 1))[0][0].id;
      expect(await hit().catch(() => hit())).toBe('m7');
      await c.flush();
      expect(c.stats()).toMatchObject({ sealedSegments: 1, growingRows: 0, count: 2000 });
      expect(await hit()).toBe('m7');
    } finally {
      await hvs.close();
    }
  });

  it('is replaced, its indexes are rebuilt from their files, and no row is lost', async () => {
    const hvs = await Hvs.open({ dataDir, device: 'cpu', sealThreshold: 50 });
    try {
      const dim = 8;
      const c = hvs.createCollection('dying', { dim, metric: 'ip' });
      const vectors = randomVectors(rng(freshSeed()), 200, dim);
      const ids = Array.from({ length: 200 }, (_, i) => `d${i}`);
      await c.upsert(ids, vectors);
      await c.idle();
      const queries = vectors.slice(0, 3 * dim);
      const before = await c.search(queries, 10);

      for (const w of workersOf(hvs.kernel as WorkerSearchKernel)) await w.terminate();
      // A search racing the crash may fail, with a typed 503 and never a hang; the next one is
      // answered by the replacement threads, with the same results.
      let after: Awaited<ReturnType<typeof c.search>> | undefined;
      for (let attempt = 0; attempt < 2 && !after; attempt++) {
        after = await c.search(queries, 10).catch((err: unknown) => {
          expect(err).toBeInstanceOf(KernelWorkerError);
          expect((err as KernelWorkerError).httpStatus).toBe(503);
          return undefined;
        });
      }
      expect(after).toEqual(before);
      for (const i of [0, 49, 50, 199]) expect(c.get(ids[i])?.vector).toEqual(vectors.slice(i * dim, (i + 1) * dim));

      // new seals go to the replacement threads
      await c.upsert(
        Array.from({ length: 60 }, (_, i) => `late${i}`),
        randomVectors(rng(freshSeed()), 60, dim),
      );
      await c.idle();
      expect(c.count).toBe(260);
      expect(c.stats().sealedSegments).toBe(5);
    } finally {
      await hvs.close();
    }
  });
});
