/**
 * Concurrent small writers over HTTP: `clients` clients each store 5-item batches of 384-d
 * vectors (base64) through `POST …/items` as fast as answers come, while one more client queries
 * (k = 10, one query every 50 ms),
 * against the real `hypersync serve` in its own process — on PostgreSQL (a scratch database) and,
 * with `--pglite`, also on the embedded default. Prints items/s and write/query latencies; writes
 * `bench/results/writers-*.json`.
 *
 * With `--library`, the same load also runs in process through the `HyperSync` library (no HTTP,
 * no loader process): what the write path itself sustains on this machine.
 *
 *   npm run bench:writers [-- --pglite] [--library] [--skip-http] [--seconds 20] [--clients 32]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HyperSync } from '../src/index.js';
import { type LoadRequest, quantile, runLoad } from './lib/loader.js';
import { withScratchDb } from './lib/scratch-db.js';
import { machine, printMarkdownTable, writeResult } from './lib/stats.js';
import { freePort, startServer } from './peers/server.js';

const ROOT = resolve(import.meta.dirname, '..');
const DIM = 384;
const BATCH = 5;
/** Ids each client cycles through: a write replaces an earlier one after this many batches. */
const IDS_PER_CLIENT = 500;
/** The querying client's pause between queries: write load with a steady trickle of reads. */
const QUERY_PAUSE_MS = 50;

const { values } = parseArgs({
  options: {
    pglite: { type: 'boolean', default: false },
    library: { type: 'boolean', default: false },
    'skip-http': { type: 'boolean', default: false },
    seconds: { type: 'string', default: '20' },
    clients: { type: 'string', default: '32' },
  },
});
const seconds = Number(values.seconds);
const clients = Number(values.clients);

function vectorPool(n: number): string[] {
  let s = 0x9e3779b9;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
  return Array.from({ length: n }, () => {
    const v = new Float32Array(DIM);
    for (let i = 0; i < DIM; i++) v[i] = rand();
    return Buffer.from(v.buffer).toString('base64');
  });
}

interface Row {
  backend: string;
  clients: number;
  seconds: number;
  itemsPerS: number;
  writesPerS: number;
  writeP50Ms: number;
  writeP99Ms: number;
  queryP50Ms: number;
  queryP99Ms: number;
  errors: number;
}

async function run(backend: 'postgres' | 'pglite', dbUrl: string | undefined): Promise<Row> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-writers-'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HYPERSYNC_DATA_DIR: dataDir,
    HYPERSYNC_HOST: '127.0.0.1',
    HYPERSYNC_PORT: String(port),
    LOG_LEVEL: 'warn',
  };
  if (dbUrl) env.DATABASE_URL = dbUrl;
  else delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.HYPERSYNC_API_KEYS;
  delete env.HYPERSYNC_RATE_LIMIT;
  const server = await startServer(
    `hypersync serve (${backend})`,
    process.execPath,
    [
      ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean),
      join(ROOT, 'dist', 'src', 'cli', 'main.js'),
      'serve',
    ],
    env,
    `http://127.0.0.1:${port}/readyz`,
  );
  try {
    const base = `http://127.0.0.1:${port}`;
    const created = await fetch(`${base}/v1/collections`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'w', dim: DIM, metric: 'cosine' }),
    });
    if (!created.ok) throw new Error(`create: ${created.status} ${await created.text()}`);
    const pool = vectorPool(1024);
    const query = JSON.stringify({ queries: [{ vector: pool[0] }], k: 10 });
    const next = (c: number, seq: number): LoadRequest => {
      if (c === clients)
        return { kind: 'query', method: 'POST', path: '/v1/collections/w/query', body: query, delayMs: QUERY_PAUSE_MS };
      const items = Array.from({ length: BATCH }, (_, i) => ({
        id: `c${c}-${(seq * BATCH + i) % IDS_PER_CLIENT}`,
        vector: pool[(c * 31 + seq * BATCH + i) % pool.length],
        metadata: { client: c, seq },
      }));
      return { kind: 'write', method: 'POST', path: '/v1/collections/w/items', body: JSON.stringify({ items }) };
    };
    // A short warm-up (JIT, connections), then the measured run.
    await runLoad({ baseUrl: base, clients: clients + 1, durationMs: 2000, next });
    const r = await runLoad({ baseUrl: base, clients: clients + 1, durationMs: seconds * 1000, next });
    if (r.errors > 0) console.error(`errors: ${r.errorSamples.map((e) => e.slice(0, 300)).join(' | ')}`);
    const w = r.byKind.write;
    const q = r.byKind.query;
    return {
      backend,
      clients,
      seconds: Number(r.seconds.toFixed(1)),
      itemsPerS: Math.round((w.requests * BATCH) / r.seconds),
      writesPerS: Math.round(w.requests / r.seconds),
      writeP50Ms: Number(w.p50Ms.toFixed(1)),
      writeP99Ms: Number(w.p99Ms.toFixed(1)),
      queryP50Ms: Number(q.p50Ms.toFixed(1)),
      queryP99Ms: Number(q.p99Ms.toFixed(1)),
      errors: r.errors,
    };
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The same writers through the library in this process. */
async function runLibrary(dbUrl: string): Promise<Row> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-writers-lib-'));
  const hs = await HyperSync.open({ dataDir, databaseUrl: dbUrl, device: 'cpu' });
  try {
    await hs.ready();
    await hs.createCollection('w', { dim: DIM, metric: 'cosine' });
    const pool = vectorPool(1024).map((b) => {
      const bytes = Buffer.from(b, 'base64');
      return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    });
    const writeMs: number[] = [];
    const queryMs: number[] = [];
    let errors = 0;
    const runFor = async (ms: number, record: boolean): Promise<number> => {
      const end = performance.now() + ms;
      const start = performance.now();
      const writer = async (c: number): Promise<void> => {
        for (let seq = 0; performance.now() < end; seq++) {
          const items = Array.from({ length: BATCH }, (_, i) => ({
            id: `c${c}-${(seq * BATCH + i) % IDS_PER_CLIENT}`,
            vector: pool[(c * 31 + seq * BATCH + i) % pool.length],
            metadata: { client: c, seq },
          }));
          const t0 = performance.now();
          await hs.store('w', items).catch((err: unknown) => {
            if (errors++ === 0) console.error(`write failed: ${(err as Error).message}`);
          });
          if (record) writeMs.push(performance.now() - t0);
        }
      };
      const querier = async (): Promise<void> => {
        while (performance.now() < end) {
          await new Promise((r) => setTimeout(r, QUERY_PAUSE_MS));
          const t0 = performance.now();
          await hs.query('w', [pool[0]], 10).catch(() => errors++);
          if (record) queryMs.push(performance.now() - t0);
        }
      };
      await Promise.all([...Array.from({ length: clients }, (_, c) => writer(c)), querier()]);
      return (performance.now() - start) / 1000;
    };
    await runFor(2000, false);
    const s = await runFor(seconds * 1000, true);
    writeMs.sort((a, b) => a - b);
    queryMs.sort((a, b) => a - b);
    return {
      backend: 'postgres, library',
      clients,
      seconds: Number(s.toFixed(1)),
      itemsPerS: Math.round((writeMs.length * BATCH) / s),
      writesPerS: Math.round(writeMs.length / s),
      writeP50Ms: Number(quantile(writeMs, 0.5).toFixed(1)),
      writeP99Ms: Number(quantile(writeMs, 0.99).toFixed(1)),
      queryP50Ms: Number(quantile(queryMs, 0.5).toFixed(1)),
      queryP99Ms: Number(quantile(queryMs, 0.99).toFixed(1)),
      errors,
    };
  } finally {
    await hs.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
if (!values['skip-http']) rows.push(await withScratchDb((url) => run('postgres', url)));
if (values.library) rows.push(await withScratchDb((url) => runLibrary(url)));
if (values.pglite) rows.push(await run('pglite', undefined));
printMarkdownTable(
  ['backend', 'clients', 's', 'items/s', 'writes/s', 'write p50 ms', 'write p99 ms', 'query p50 ms', 'query p99 ms', 'errors'],
  rows.map((r) => [
    r.backend,
    r.clients,
    r.seconds,
    r.itemsPerS,
    r.writesPerS,
    r.writeP50Ms,
    r.writeP99Ms,
    r.queryP50Ms,
    r.queryP99Ms,
    r.errors,
  ]),
);
console.log(`results: ${await writeResult('writers', { machine: machine(), batch: BATCH, dim: DIM, rows })}`);
