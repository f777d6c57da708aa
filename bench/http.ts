/**
 * Batched queries over HTTP against the same queries in process, in one run: N = 100k × 384
 * (cosine, clustered), B = 64, k = 10, on the local PostgreSQL in a scratch database. The HTTP
 * forms: vectors as JSON arrays, and as base64 of little-endian float32s. Runs are interleaved
 * (in process, JSON, base64) and medians taken.
 *
 *   npm run bench:http
 *   BENCH_HTTP_N=20000 npm run bench:http
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { Service } from '../src/service.js';
import { clusteredVector } from './lib/data.js';
import { withScratchDb } from './lib/scratch-db.js';
import { machine, median, printTable, writeResult } from './lib/stats.js';

const N = Number(process.env.BENCH_HTTP_N ?? 100_000);
const DIM = 384;
const B = 64;
const K = 10;
const REPS = 15;

async function run(url: string, dataDir: string): Promise<Record<string, unknown>> {
  const svc = await Service.start(
    loadConfig({
      DATABASE_URL: url,
      HYPERSYNC_DATA_DIR: dataDir,
      HYPERSYNC_PORT: '0',
      HYPERSYNC_HOST: '127.0.0.1',
      HYPERSYNC_DEVICE: 'cpu',
    }),
    pino({ level: 'silent' }),
  );
  try {
    const hs = svc.hs;
    await hs.createCollection('bench', { dim: DIM, metric: 'cosine' });
    for (let i = 0; i < N; i += 5000) {
      await hs.store(
        'bench',
        Array.from({ length: Math.min(5000, N - i) }, (_, j) => ({ id: `d${i + j}`, vector: clusteredVector(DIM) })),
      );
    }
    await hs.hvs.collection('bench').flush();
    const queries = Array.from({ length: B }, () => clusteredVector(DIM));
    const jsonBody = JSON.stringify({ queries: queries.map((q) => ({ vector: Array.from(q) })), k: K });
    const b64Body = JSON.stringify({
      queries: queries.map((q) => ({ vector: Buffer.from(q.buffer, q.byteOffset, q.byteLength).toString('base64') })),
      k: K,
    });
    const endpoint = `http://127.0.0.1:${svc.port}/v1/collections/bench/query`;
    const overHttp = async (body: string): Promise<number> => {
      const t0 = performance.now();
      const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const out = (await res.json()) as { results?: unknown[][] };
      if (res.status !== 200 || out.results?.length !== B) throw new Error(`query failed: ${res.status}`);
      return performance.now() - t0;
    };
    const inProcess = async (): Promise<number> => {
      const t0 = performance.now();
      await hs.query('bench', queries, K);
      return performance.now() - t0;
    };
    for (let w = 0; w < 3; w++) {
      await inProcess();
      await overHttp(jsonBody);
      await overHttp(b64Body);
    }
    const t = { inProcess: [] as number[], json: [] as number[], base64: [] as number[] };
    for (let r = 0; r < REPS; r++) {
      t.inProcess.push(await inProcess());
      t.json.push(await overHttp(jsonBody));
      t.base64.push(await overHttp(b64Body));
    }
    const qps = (ms: number[]): number => B / (median(ms) / 1000);
    const base = qps(t.inProcess);
    const result = {
      benchmark: 'http',
      at: new Date().toISOString(),
      machine: machine(),
      n: N,
      dim: DIM,
      batch: B,
      k: K,
      reps: REPS,
      requestBytes: { json: jsonBody.length, base64: b64Body.length },
      inProcess: { msPerBatch: median(t.inProcess), qps: base },
      httpJson: { msPerBatch: median(t.json), qps: qps(t.json), ratio: qps(t.json) / base },
      httpBase64: { msPerBatch: median(t.base64), qps: qps(t.base64), ratio: qps(t.base64) / base },
      target: 0.7,
    };
    console.log(`\nHTTP vs in-process queries: N = ${N}, d = ${DIM}, B = ${B}, k = ${K}, medians of ${REPS} interleaved runs`);
    printTable(
      ['path', 'request bytes', 'ms/batch', 'q/s', 'vs in-process'],
      [
        ['in process (HyperSync.query)', '-', result.inProcess.msPerBatch.toFixed(1), base.toFixed(0), '1.00'],
        [
          'HTTP, JSON vectors',
          String(jsonBody.length),
          result.httpJson.msPerBatch.toFixed(1),
          result.httpJson.qps.toFixed(0),
          result.httpJson.ratio.toFixed(2),
        ],
        [
          'HTTP, base64 vectors',
          String(b64Body.length),
          result.httpBase64.msPerBatch.toFixed(1),
          result.httpBase64.qps.toFixed(0),
          result.httpBase64.ratio.toFixed(2),
        ],
      ],
    );
    return result;
  } finally {
    await svc.close();
  }
}

const dataDir = await mkdtemp(join(tmpdir(), 'hs-bench-http-'));
try {
  const result = await withScratchDb((url) => run(url, dataDir));
  console.log(`\nwritten ${await writeResult('http', result)}`);
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
