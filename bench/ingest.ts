/**
 * Ingest: how fast 384-d vectors get into hypersync end to end (HVS + NVM + change log), on the
 * embedded default (PGlite) and on PostgreSQL, in process (`HyperSync.store`) and over HTTP
 * (`hypersync serve`, `POST …/items` with base64 vectors, batches of 5,000, 4 in flight), against pgvector's
 * own binary COPY into a plain table (`id text PRIMARY KEY, embedding vector(384)`) measured in
 * the same run as the baseline. Also a `persist: false` import on PGlite, batches of 1,000, with
 * its slowest batch (the stall a background persist used to cause).
 *
 *   npm run bench:ingest [-- --n 50000] [--runs 3] [--skip-http] [--only pglite]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { HyperSync } from '../src/index.js';
import { encodeVectorRows } from '../src/nvm/copy-binary.js';
import { seededRandom } from './lib/data.js';
import { withScratchDb } from './lib/scratch-db.js';
import { machine, median, printMarkdownTable, writeResult } from './lib/stats.js';
import { freePort, startServer } from './peers/server.js';

const ROOT = resolve(import.meta.dirname, '..');
const DIM = 384;
const BATCH = 5_000;
/** Requests in flight over HTTP (`hypersync import`'s default). */
const CONCURRENCY = 4;

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '50000' },
    runs: { type: 'string', default: '3' },
    'skip-http': { type: 'boolean', default: false },
    /** Only the measures whose name contains this (case-insensitive). */
    only: { type: 'string', default: '' },
  },
});
const N = Number(values.n);
const RUNS = Number(values.runs);

function vectors(n: number, seed: number): Float32Array[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => {
    const v = new Float32Array(DIM);
    for (let i = 0; i < DIM; i++) v[i] = rand() - 0.5;
    return v;
  });
}

const data = vectors(N, 7);
const ids = data.map((_, i) => `v${i}`);

/** pgvector alone: binary COPY into one table with a primary key, one transaction a batch. */
async function pgvectorCopy(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS vector');
    await client.query(`CREATE TABLE items (block_id text PRIMARY KEY, chunk int4, embedding vector(${DIM}))`);
    const t = performance.now();
    for (let i = 0; i < N; i += BATCH) {
      const payload = encodeVectorRows(
        ids.slice(i, i + BATCH),
        new Array<number>(Math.min(BATCH, N - i)).fill(0),
        data.slice(i, i + BATCH),
      );
      await client.query('BEGIN');
      await pipeline(
        Readable.from([payload]),
        client.query(copyFrom('COPY items (block_id, chunk, embedding) FROM STDIN (FORMAT binary)')),
      );
      await client.query('COMMIT');
    }
    return N / ((performance.now() - t) / 1000);
  } finally {
    await client.end();
  }
}

/** `HyperSync.store` in this process; returns vectors/s and the slowest batch. */
async function library(
  dbUrl: string | undefined,
  persist: boolean,
  batch: number,
  n: number,
): Promise<{ rate: number; maxBatchMs: number }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-ingest-'));
  const hs = await HyperSync.open({ dataDir, databaseUrl: dbUrl, device: 'cpu' });
  try {
    await hs.ready();
    await hs.createCollection('c', { dim: DIM, metric: 'cosine' });
    let maxBatchMs = 0;
    const t = performance.now();
    for (let i = 0; i < n; i += batch) {
      const items = [];
      for (let j = i; j < Math.min(n, i + batch); j++) items.push({ id: ids[j], vector: data[j], metadata: { n: j } });
      const s = performance.now();
      await hs.store('c', items, { persist });
      maxBatchMs = Math.max(maxBatchMs, performance.now() - s);
    }
    const rate = n / ((performance.now() - t) / 1000);
    return { rate, maxBatchMs };
  } finally {
    await hs.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** `hypersync serve` in its own process, batches of 5,000, {@link CONCURRENCY} in flight. */
async function http(dbUrl: string | undefined): Promise<number> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-ingest-http-'));
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
  for (const k of ['REDIS_URL', 'HYPERSYNC_API_KEYS', 'HYPERSYNC_RATE_LIMIT']) delete env[k];
  const server = await startServer(
    'hypersync serve',
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
    const base = `http://127.0.0.1:${port}/v1/collections`;
    const post = async (path: string, body: unknown): Promise<void> => {
      const r = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!r.ok) throw new Error(`POST ${path}: ${r.status} ${await r.text()}`);
    };
    await post('', { name: 'c', dim: DIM, metric: 'cosine' });
    // Bodies are built before the clock starts: the client's own encoding is not the server's rate.
    const bodies: unknown[] = [];
    for (let i = 0; i < N; i += BATCH) {
      const items = [];
      for (let j = i; j < Math.min(N, i + BATCH); j++) {
        items.push({
          id: ids[j],
          vector: Buffer.from(data[j].buffer, data[j].byteOffset, data[j].byteLength).toString('base64'),
          metadata: { n: j },
        });
      }
      bodies.push({ items });
    }
    const t = performance.now();
    // Up to CONCURRENCY requests in flight, as `hypersync import` sends them.
    let next = 0;
    const sender = async (): Promise<void> => {
      while (next < bodies.length) await post('/c/items', bodies[next++]);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, sender));
    return N / ((performance.now() - t) / 1000);
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

interface Row {
  measure: string;
  runs: number[];
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const add = (measure: string, v: number): void => {
    const row = rows.find((r) => r.measure === measure) ?? rows[rows.push({ measure, runs: [] }) - 1];
    row.runs.push(v);
  };
  const want = (measure: string): boolean => measure.toLowerCase().includes((values.only ?? '').toLowerCase());
  for (let run = 0; run < RUNS; run++) {
    console.error(`[bench:ingest] run ${run + 1}/${RUNS}`);
    const COPY = 'pgvector alone: binary COPY (vectors/s)';
    if (want(COPY)) await withScratchDb(async (url) => add(COPY, await pgvectorCopy(url)));
    const PG = 'PostgreSQL: HyperSync.store, in process (vectors/s)';
    if (want(PG)) await withScratchDb(async (url) => add(PG, (await library(url, true, BATCH, N)).rate));
    const LITE = 'PGlite: HyperSync.store, in process (vectors/s)';
    if (want(LITE)) add(LITE, (await library(undefined, true, BATCH, N)).rate);
    const STALL = 'PGlite: persist: false, batches of 1,000';
    if (want(STALL)) {
      const stall = await library(undefined, false, 1_000, Math.min(N, 20_000));
      add(`${STALL} (vectors/s)`, stall.rate);
      add(`${STALL}, slowest (ms)`, stall.maxBatchMs);
    }
    if (values['skip-http']) continue;
    const PG_HTTP = 'PostgreSQL: over HTTP (vectors/s)';
    if (want(PG_HTTP)) await withScratchDb(async (url) => add(PG_HTTP, await http(url)));
    const LITE_HTTP = 'PGlite: over HTTP (vectors/s)';
    if (want(LITE_HTTP)) add(LITE_HTTP, await http(undefined));
  }
  const table = rows.map((r) => [
    r.measure,
    Math.round(median(r.runs)).toLocaleString('en-US'),
    r.runs.map((x) => Math.round(x).toLocaleString('en-US')).join(', '),
  ]);
  console.log(
    `\nIngest of ${N.toLocaleString('en-US')} × ${DIM} in batches of ${BATCH.toLocaleString('en-US')}, median of ${RUNS} runs\n`,
  );
  printMarkdownTable(['measure', 'median', 'runs'], table);
  const file = await writeResult('ingest', { machine: machine(), n: N, dim: DIM, batch: BATCH, runs: RUNS, rows });
  console.log(`\nwrote ${file}`);
}

await main();
