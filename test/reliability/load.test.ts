/**
 * Load: `hypersync serve` on PostgreSQL under 32 concurrent clients for 60 s (15 s in the short
 * version) of mixed requests — queries (some filtered), small writes, reads by id, deletes — with
 * no error allowed, latencies per kind printed, and the service's RSS sampled four times a second:
 * its mean over the last third may not be 10% or more above the second third's (a leak).
 * Before the measured run every id the writers use already exists and a short unmeasured warm-up
 * has run, so what the windows see is the steady state, not the data set or the heap filling up.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { type LoadRequest, runLoad } from '../../bench/lib/loader.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { rng } from '../fixtures/random.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { tempDir } from '../fixtures/temp-dirs.js';
import { record, scale } from './harness.js';
import { call, startServe } from './serve-process.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping the load test: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const SECONDS = scale(15, 60);
const WARMUP_SECONDS = 20;
const CLIENTS = 32;
const DIM = 128;
const PRELOAD = 5000;
/** Each client writes and deletes ids `c<client>-0` … `c<client>-399`. */
const IDS_PER_CLIENT = 400;
const C = 'load';

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

describe.skipIf(pgProblem !== null && !servicesRequired)('load', () => {
  it(
    `${CLIENTS} clients for ${SECONDS} s of mixed reads and writes: no errors, no memory growth`,
    async () => {
      const db = await createScratchDatabase();
      cleanups.push(db.drop);
      const dataDir = await tempDir('hs-load-', cleanups);
      const svc = await startServe({ DATABASE_URL: db.url, HYPERSYNC_DATA_DIR: dataDir });
      cleanups.push(() => svc.stop('SIGKILL').then(() => undefined));
      expect((await call(svc.url, 'POST', '/v1/collections', { name: C, dim: DIM, metric: 'cosine' })).status).toBe(201);
      const random = rng(7);
      const vectors = Array.from({ length: 512 }, () => {
        const v = new Float32Array(DIM);
        for (let j = 0; j < DIM; j++) v[j] = random() - 0.5;
        return Buffer.from(v.buffer).toString('base64');
      });
      for (let off = 0; off < PRELOAD; off += 1000) {
        const items = Array.from({ length: 1000 }, (_, i) => ({
          id: `p${off + i}`,
          vector: vectors[(off + i) % vectors.length],
          metadata: { cat: (off + i) % 10 },
        }));
        expect((await call(svc.url, 'POST', `/v1/collections/${C}/items`, { items })).status).toBe(200);
      }
      // The writers' ids, so the data set is at its final size before the measured run.
      const writerIds = Array.from(
        { length: CLIENTS * IDS_PER_CLIENT },
        (_, i) => `c${Math.floor(i / IDS_PER_CLIENT)}-${i % IDS_PER_CLIENT}`,
      );
      for (let off = 0; off < writerIds.length; off += 1000) {
        const items = writerIds.slice(off, off + 1000).map((id, i) => ({
          id,
          vector: vectors[(off + i) % vectors.length],
          metadata: { cat: (off + i) % 10 },
        }));
        expect((await call(svc.url, 'POST', `/v1/collections/${C}/items`, { items })).status).toBe(200);
      }
      const json = (body: unknown): string => JSON.stringify(body);
      const next = (client: number, seq: number): LoadRequest => {
        const r = (client * 7919 + seq * 104729) % 100;
        const v = vectors[(client + seq) % vectors.length];
        if (r < 60)
          return {
            kind: 'query',
            method: 'POST',
            path: `/v1/collections/${C}/query`,
            body: json({ queries: [{ vector: v }], k: 10 }),
          };
        if (r < 70)
          return {
            kind: 'query+filter',
            method: 'POST',
            path: `/v1/collections/${C}/query`,
            body: json({ queries: [{ vector: v }], k: 10, filter: { cat: { $in: [seq % 10, (seq + 3) % 10] } } }),
          };
        if (r < 90) {
          const items = Array.from({ length: 5 }, (_, i) => ({
            id: `c${client}-${(seq * 5 + i) % IDS_PER_CLIENT}`,
            vector: vectors[(seq + i) % vectors.length],
            metadata: { cat: (seq + i) % 10 },
          }));
          return { kind: 'write', method: 'POST', path: `/v1/collections/${C}/items`, body: json({ items }) };
        }
        if (r < 95) return { kind: 'get', method: 'GET', path: `/v1/collections/${C}/items/p${(client * 31 + seq) % PRELOAD}` };
        return {
          kind: 'delete',
          method: 'POST',
          path: `/v1/collections/${C}/items/delete`,
          body: json({ ids: [`c${client}-${(seq * 5 + 200) % IDS_PER_CLIENT}`] }),
        };
      };
      const check = (_req: LoadRequest, status: number, body: Buffer): void => {
        if (status !== 200) throw new Error(`${status} ${body.toString().slice(0, 200)}`);
      };
      const warmup = await runLoad({ baseUrl: svc.url, clients: CLIENTS, durationMs: WARMUP_SECONDS * 1000, next, check });
      expect(warmup.errors, warmup.errorSamples.join('\n')).toBe(0);
      // RSS samples per third of the run; a mean per third, as one sample swings with the GC.
      const rss: number[][] = [[]];
      const sampler = setInterval(() => rss.at(-1)!.push(rssMiB(svc.child.pid!)), 250);
      const result = await runLoad({
        baseUrl: svc.url,
        clients: CLIENTS,
        durationMs: SECONDS * 1000,
        windowMs: (SECONDS * 1000) / 3,
        next,
        check,
        onWindow: () => {
          rss.push([]);
        },
      });
      clearInterval(sampler);
      const means = rss
        .slice(0, 3)
        .filter((w) => w.length > 0)
        .map((w) => w.reduce((a, b) => a + b, 0) / w.length);
      const rows = Object.entries(result.byKind).map(
        ([kind, f]) =>
          `${kind.padEnd(13)} ${String(f.requests).padStart(7)} req  p50 ${f.p50Ms.toFixed(1).padStart(6)} ms  p99 ${f.p99Ms.toFixed(1).padStart(7)} ms  errors ${f.errors}`,
      );
      console.log(
        [
          `load: ${result.requests} requests in ${result.seconds.toFixed(1)} s (${Math.round(result.requests / result.seconds)}/s), ${result.errors} errors`,
          ...rows,
          `mean RSS in each third: ${means.map((m) => `${m.toFixed(0)} MiB`).join(', ')}`,
        ].join('\n'),
      );
      expect(result.errors, result.errorSamples.join('\n')).toBe(0);
      expect(means.length).toBeGreaterThanOrEqual(3);
      // From the second third to the last, less than 10% growth.
      expect(means[2] / means[1]).toBeLessThan(1.1);
      const verify = await call(svc.url, 'GET', '/healthz');
      expect(verify.status).toBe(200);
      await svc.stop();
      record('requests under load', result.requests, `${CLIENTS} clients, ${SECONDS} s, 0 errors`);
    },
    scale(180_000, 300_000),
  );
});
