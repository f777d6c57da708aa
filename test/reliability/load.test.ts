/**
 * Load: `hypersync serve` on PostgreSQL under 32 concurrent clients for 60 s (15 s in the short
 * version) of mixed requests — queries (some filtered), small writes, reads by id, deletes — with
 * no error allowed, latencies per kind printed, and the service's RSS sampled at the end of each
 * third of the run: it may not grow by 10% or more from the second third to the last (a leak).
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
const CLIENTS = 32;
const DIM = 128;
const PRELOAD = 5000;
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
            id: `c${client}-${(seq * 5 + i) % 400}`,
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
          body: json({ ids: [`c${client}-${(seq * 5 + 200) % 400}`] }),
        };
      };
      const rss: number[] = [];
      const result = await runLoad({
        baseUrl: svc.url,
        clients: CLIENTS,
        durationMs: SECONDS * 1000,
        windowMs: (SECONDS * 1000) / 3,
        next,
        check: (_req, status, body) => {
          if (status !== 200) throw new Error(`${status} ${body.toString().slice(0, 200)}`);
        },
        onWindow: () => {
          rss.push(rssMiB(svc.child.pid!));
        },
      });
      const rows = Object.entries(result.byKind).map(
        ([kind, f]) =>
          `${kind.padEnd(13)} ${String(f.requests).padStart(7)} req  p50 ${f.p50Ms.toFixed(1).padStart(6)} ms  p99 ${f.p99Ms.toFixed(1).padStart(7)} ms  errors ${f.errors}`,
      );
      console.log(
        [
          `load: ${result.requests} requests in ${result.seconds.toFixed(1)} s (${Math.round(result.requests / result.seconds)}/s), ${result.errors} errors`,
          ...rows,
          `RSS at the end of each third: ${rss.map((m) => `${m.toFixed(0)} MiB`).join(', ')}`,
        ].join('\n'),
      );
      expect(result.errors, result.errorSamples.join('\n')).toBe(0);
      expect(rss.length).toBeGreaterThanOrEqual(3);
      // From the second third to the last, less than 10% growth.
      expect(rss[2] / rss[1]).toBeLessThan(1.1);
      const verify = await call(svc.url, 'GET', '/healthz');
      expect(verify.status).toBe(200);
      await svc.stop();
      record('requests under load', result.requests, `${CLIENTS} clients, ${SECONDS} s, 0 errors`);
    },
    scale(180_000, 300_000),
  );
});
