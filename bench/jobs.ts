/**
 * Jobs benchmark on the real PostgreSQL (DATABASE_URL_TEST, default the local `test` server) in a
 * scratch database, and Redis (REDIS_URL_TEST, default redis://127.0.0.1:6379), CPU kernels,
 * d = 384, cosine, clustered data, N = 1M vectors loaded by binary COPY:
 *
 * 1. a rebuild as a worker does it: `buildSnapshot` (stream from PostgreSQL, build the segments,
 *    write the snapshot, in an HVS of its own) then `hs.rebuild(c, { snapshotDir })` on the open
 *    HyperSync (restore, catch up, switch); target: both together ≤ 60 s;
 * 2. a rebuild in place (inline): `hs.rebuild(c)` streaming from the NVM itself, while batches of
 *    queries (B = 16, k = 10) run against hs in a loop: none may fail;
 * 3. the baseline: open-to-ready of a fresh HyperSync that rebuilds from the NVM (no snapshot);
 * 4. jobs/s of 500 small `sync` jobs added at once: inline (InlineJobQueue, LocalFleet) and on
 *    BullMQ (BullJobQueue + JobWorkers with a RedisFleet + a NodeListener on hs), under a unique
 *    Redis prefix removed afterwards.
 *
 *   npm run bench:jobs
 *   npm run bench:jobs -- --n 100000 --runs 2     # a quick trial
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { DEFAULT_CONCURRENCY, PROCESSORS } from '../workers/index.js';
import { Hvs } from '../src/hvs/hvs.js';
import { HyperSync } from '../src/integration/hyper-sync.js';
import type { HyperSyncOptions } from '../src/integration/options.js';
import { buildSnapshot } from '../src/integration/rebuild.js';
import { BullJobQueue } from '../src/jobs/bullmq-job-queue.js';
import { JobWorkers } from '../src/jobs/bullmq-workers.js';
import { InlineJobQueue } from '../src/jobs/inline-job-queue.js';
import type { JobQueue } from '../src/jobs/job-queue.js';
import { LocalFleet } from '../src/jobs/node-ops.js';
import type { JobContext } from '../src/jobs/processor.js';
import { NodeListener, RedisFleet } from '../src/jobs/redis-fleet.js';
import type { BlockInput } from '../src/nvm/nvm-store.js';
import { SqlNvmStore } from '../src/nvm/sql-nvm-store.js';
import { clusteredVector } from './lib/data.js';
import { withScratchDb } from './lib/scratch-db.js';
import { machine, median, printTable, writeResult } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    jobs: { type: 'string', default: '500' },
  },
});
const N = Number(args.n);
const RUNS = Number(args.runs);
const JOBS = Number(args.jobs);
if (!Number.isInteger(N) || N < 1000) throw new Error(`--n must be an integer ≥ 1000, got ${args.n}`);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be an integer ≥ 1, got ${args.runs}`);
if (!Number.isInteger(JOBS) || JOBS < 1) throw new Error(`--jobs must be an integer ≥ 1, got ${args.jobs}`);

const DIM = 384;
const COLLECTION = 'jobs';
const LOAD_BATCH = 5000;
/** Rebuilds in place timed without queries beside them (the fair comparison with the baseline). */
const QUIET_RUNS = Math.min(2, RUNS);
const B = 16;
const K = 10;
const WARMUP_JOBS = 20;
const REDIS_URL = process.env.REDIS_URL_TEST ?? 'redis://127.0.0.1:6379';
const log = pino({ level: 'silent' });

/** What went wrong, for the table and the JSON (the bench goes on with the other parts). */
const problems: string[] = [];

const s = (ms: number): string => (ms / 1000).toFixed(2);

function problem(what: string, err: unknown): void {
  const msg = `${what}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`;
  problems.push(msg);
  console.error(`PROBLEM ${msg}`);
  if (err instanceof Error && err.stack) console.error(err.stack);
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'hs-bench-jobs-'));
  try {
    const result = await withScratchDb((url) => run(url, dataDir));
    console.log(`\nwritten ${await writeResult('jobs', result)}`);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Loads N vectors into the NVM by binary COPY (batches of 5,000); the next batch is drawn while one is written. */
async function load(nvm: SqlNvmStore): Promise<number> {
  await nvm.createCollection(COLLECTION, { dim: DIM, metric: 'cosine' });
  const batch = (from: number): BlockInput[] =>
    Array.from({ length: Math.min(LOAD_BATCH, N - from) }, (_, i) => ({
      id: `doc-${from + i}`,
      vectors: [clusteredVector(DIM)],
    }));
  const t0 = performance.now();
  let next = batch(0);
  for (let done = 0; done < N; done += LOAD_BATCH) {
    const writing = nvm.writeBlocks(COLLECTION, next);
    if (done + LOAD_BATCH < N) next = batch(done + LOAD_BATCH);
    await writing;
    if ((done + LOAD_BATCH) % 100_000 === 0) process.stdout.write(`  loaded ${done + LOAD_BATCH}\r`);
  }
  const ms = performance.now() - t0;
  const counts = await nvm.counts(COLLECTION);
  if (counts.vectors !== N) throw new Error(`${counts.vectors} vectors in the NVM after loading ${N}`);
  console.log(`load: ${N} vectors by binary COPY in ${s(ms)} s (${(N / (ms / 1000)).toFixed(0)} vectors/s)`);
  return ms;
}

async function countOf(hs: HyperSync): Promise<number> {
  return (await hs.stats(COLLECTION)).hvs.count;
}

interface QueryLoad {
  answered: number;
  failed: number;
  errors: string[];
  wrongShape: number;
  sources: Record<string, number>;
  latenciesMs: number[];
}

/** Batches of B queries against hs, one after another, until `stop` is set. */
function queryLoop(hs: HyperSync, queries: Float32Array[], stop: { done: boolean }): Promise<QueryLoad> {
  const out: QueryLoad = { answered: 0, failed: 0, errors: [], wrongShape: 0, sources: {}, latenciesMs: [] };
  return (async () => {
    while (!stop.done) {
      const t0 = performance.now();
      try {
        const r = await hs.query(COLLECTION, queries, K);
        out.latenciesMs.push(performance.now() - t0);
        out.answered++;
        if (r.length !== B || r.some((list) => list.length !== K)) out.wrongShape++;
        const source = r[0]?.[0]?.source ?? 'none';
        out.sources[source] = (out.sources[source] ?? 0) + 1;
      } catch (err) {
        out.failed++;
        if (out.errors.length < 5) out.errors.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
        // Do not spin on an error that repeats at once.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    return out;
  })();
}

/** When a rebuild's phases begin and end, in ms after it starts (from its progress reports). */
class Phases {
  readonly at: Record<string, number> = {};
  private readonly t0 = performance.now();
  /** The first time `phase` is seen. */
  first(phase: string): void {
    this.at[phase] ??= performance.now() - this.t0;
  }
  /** The latest time `phase` is seen. */
  last(phase: string): void {
    this.at[phase] = performance.now() - this.t0;
  }
}

/** Durations between consecutive marks, by the later mark's name (the first from 0). */
function spans(at: Record<string, number>, order: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  let prev = 0;
  for (const name of order) {
    const v = at[name];
    if (v === undefined) continue;
    out[name] = v - prev;
    prev = v;
  }
  return out;
}

/** Medians of each span over runs, as `a / b / c` seconds. */
function spanMedians(runs: readonly Record<string, number>[], order: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of order) {
    const xs = runs.map((r) => r[name]).filter((x): x is number => x !== undefined);
    if (xs.length > 0) out[name] = median(xs);
  }
  return out;
}

const spanText = (m: Record<string, number>, order: readonly string[]): string =>
  order.map((n) => (m[n] === undefined ? '?' : s(m[n]))).join(' / ');

/** Worker rebuild: streamed rows into segments; flush + snapshot written; restored; caught up; switched + snapshot. */
const WORKER_SPANS = ['stream', 'flush+snapshot', 'restore', 'catch-up', 'switch+snapshot'] as const;
/** Inline rebuild: streamed; flushed; caught up; switched + snapshot. */
const INLINE_SPANS = ['stream', 'flush', 'catch-up', 'switch+snapshot'] as const;

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Adds `count` sync jobs at once and waits for all; returns the elapsed ms and how many did not complete. */
async function syncBurst(queue: JobQueue, count: number): Promise<{ ms: number; notCompleted: number; errors: string[] }> {
  const t0 = performance.now();
  const added = await Promise.all(Array.from({ length: count }, () => queue.add('sync', {})));
  const infos = await Promise.all(added.map(({ id }) => queue.wait(id, { timeoutMs: 300_000 })));
  const ms = performance.now() - t0;
  const bad = infos.filter((i) => i.state !== 'completed');
  return { ms, notCompleted: bad.length, errors: [...new Set(bad.map((i) => `${i.state}: ${i.error ?? '?'}`))].slice(0, 5) };
}

interface JobsResult {
  runsMs: number[];
  medianMs: number;
  jobsPerSecond: number;
  notCompleted: number;
}

async function timeJobs(label: string, queue: JobQueue): Promise<JobsResult> {
  const warm = await syncBurst(queue, WARMUP_JOBS);
  if (warm.notCompleted > 0) throw new Error(`${label}: warm-up jobs did not complete: ${warm.errors.join('; ')}`);
  const runsMs: number[] = [];
  let notCompleted = 0;
  for (let r = 0; r < RUNS; r++) {
    const b = await syncBurst(queue, JOBS);
    runsMs.push(b.ms);
    notCompleted += b.notCompleted;
    if (b.notCompleted > 0)
      problem(`${label} sync jobs`, new Error(`${b.notCompleted} of ${JOBS} not completed: ${b.errors.join('; ')}`));
    console.log(`  ${label}: ${JOBS} sync jobs in ${s(b.ms)} s (${(JOBS / (b.ms / 1000)).toFixed(0)} jobs/s)`);
  }
  return { runsMs, medianMs: median(runsMs), jobsPerSecond: JOBS / (median(runsMs) / 1000), notCompleted };
}

/** Removes every Redis key under the prefix (SCAN MATCH + DEL); returns how many. */
async function cleanRedis(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  let removed = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) removed += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return removed;
}

async function run(url: string, dataDir: string): Promise<Record<string, unknown>> {
  const base: HyperSyncOptions = { dataDir, databaseUrl: url, device: 'cpu', snapshotOnClose: false };
  const rebuildDir = join(dataDir, 'rebuilds');
  // The worker's side: an NVM store and an HVS of its own (what `hypersync worker` opens once).
  const workerNvm = await SqlNvmStore.open({ databaseUrl: url });
  const tHvs = performance.now();
  const workerHvs = await Hvs.open({ dataDir: rebuildDir, device: 'cpu' });
  const workerHvsOpenMs = performance.now() - tHvs;
  let hs: HyperSync | undefined;
  try {
    const loadMs = await load(workerNvm);

    // 3. Baseline: open-to-ready of a fresh HyperSync rebuilding from the NVM. The last one stays open.
    const baselineMs: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      await rm(join(dataDir, 'hvs'), { recursive: true, force: true });
      const t0 = performance.now();
      const x = await HyperSync.open(base);
      let from = '?';
      x.once('loaded', (_n, info) => (from = info.from));
      await x.ready(COLLECTION);
      baselineMs.push(performance.now() - t0);
      const n = await countOf(x);
      if (n !== N) throw new Error(`baseline: ${n} vectors after open, expected ${N}`);
      await x.ready(); // the snapshot written after a rebuild from the NVM
      console.log(`  baseline open-to-ready (loaded from ${from}): ${s(baselineMs.at(-1)!)} s`);
      if (r < RUNS - 1) await x.close();
      else hs = x;
    }
    if (!hs) throw new Error('no HyperSync open');
    const queries = Array.from({ length: B }, () => clusteredVector(DIM));
    const before = await hs.query(COLLECTION, queries, K);
    if (before.length !== B || before.some((l) => l.length !== K)) throw new Error('queries answered short before the rebuilds');

    // 1. Rebuild as a worker does it: build the snapshot off to the side, then install it in hs.
    const worker = {
      buildMs: [] as number[],
      installMs: [] as number[],
      totalMs: [] as number[],
      spans: [] as Record<string, number>[],
      rows: 0,
      from: [] as string[],
    };
    for (let r = 0; r < RUNS; r++) {
      const dir = join(rebuildDir, `${COLLECTION}-bench-${r}`);
      try {
        await rm(dir, { recursive: true, force: true });
        const ph = new Phases();
        const t0 = performance.now();
        // As the rebuild job calls it: with progress (the row total is counted first).
        const built = await buildSnapshot({ hvs: workerHvs, nvm: workerNvm, log }, COLLECTION, dir, {
          onProgress: () => ph.last('stream'),
        });
        const t1 = performance.now();
        ph.last('flush+snapshot');
        const installed = await hs.rebuild(COLLECTION, {
          snapshotDir: built.dir,
          onProgress: (p) => {
            // 'catch-up' is reported once restored, 'switch' once caught up.
            if (p.phase === 'catch-up') ph.first('restore');
            else if (p.phase === 'switch') ph.first('catch-up');
          },
        });
        const t2 = performance.now();
        ph.last('switch+snapshot');
        if (built.rows !== N) throw new Error(`buildSnapshot: ${built.rows} rows, expected ${N}`);
        if (installed.from !== 'snapshot')
          throw new Error(`hs.rebuild(snapshotDir) rebuilt from ${installed.from}, not the snapshot`);
        const n = await countOf(hs);
        if (n !== N) throw new Error(`${n} vectors served after the worker rebuild, expected ${N}`);
        worker.buildMs.push(t1 - t0);
        worker.installMs.push(t2 - t1);
        worker.totalMs.push(t2 - t0);
        worker.spans.push(spans(ph.at, WORKER_SPANS));
        worker.rows = built.rows;
        worker.from.push(installed.from);
        console.log(
          `  worker rebuild: build ${s(t1 - t0)} s + install ${s(t2 - t1)} s = ${s(t2 - t0)} s (${WORKER_SPANS.join(' / ')}: ${spanText(worker.spans.at(-1)!, WORKER_SPANS)})`,
        );
      } catch (err) {
        problem(`worker rebuild run ${r + 1}`, err);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }

    // 2 + 4. Rebuild in place, streaming from the NVM: quiet runs, then runs with queries beside them.
    const inline = {
      quietMs: [] as number[],
      underQueriesMs: [] as number[],
      quietSpans: [] as Record<string, number>[],
      underQueriesSpans: [] as Record<string, number>[],
      from: [] as string[],
    };
    const loads: QueryLoad[] = [];
    for (let r = 0; r < QUIET_RUNS + RUNS; r++) {
      const withQueries = r >= QUIET_RUNS;
      const stop = { done: false };
      const querying = withQueries ? queryLoop(hs, queries, stop) : undefined;
      try {
        const ph = new Phases();
        const t0 = performance.now();
        // Marks: the last page streamed, then the first report of catch-up (after the flush) and of the switch.
        const res = await hs.rebuild(COLLECTION, {
          onProgress: (p) => {
            if (p.phase === 'stream') ph.last('stream');
            else if (p.phase === 'catch-up') ph.first('flush');
            else if (p.phase === 'switch') ph.first('catch-up');
          },
        });
        const ms = performance.now() - t0;
        ph.last('switch+snapshot');
        const sp = spans(ph.at, INLINE_SPANS);
        (withQueries ? inline.underQueriesSpans : inline.quietSpans).push(sp);
        if (res.from !== 'nvm') throw new Error(`hs.rebuild() rebuilt from ${res.from}`);
        if (res.rows !== N) throw new Error(`hs.rebuild(): ${res.rows} rows, expected ${N}`);
        (withQueries ? inline.underQueriesMs : inline.quietMs).push(ms);
        inline.from.push(res.from);
        console.log(
          `  inline rebuild${withQueries ? ' under queries' : ''}: ${s(ms)} s (${INLINE_SPANS.join(' / ')}: ${spanText(sp, INLINE_SPANS)})`,
        );
      } catch (err) {
        problem(`inline rebuild run ${r + 1}${withQueries ? ' (under queries)' : ''}`, err);
      } finally {
        stop.done = true;
        if (querying) {
          const q = await querying;
          loads.push(q);
          console.log(
            `    queries meanwhile: ${q.answered} answered, ${q.failed} failed, ${q.wrongShape} short, sources ${JSON.stringify(q.sources)}`,
          );
          if (q.failed > 0) problem('queries during the inline rebuild', new Error(`${q.failed} failed: ${q.errors.join('; ')}`));
          if (q.wrongShape > 0)
            problem('queries during the inline rebuild', new Error(`${q.wrongShape} answered with fewer than ${K} hits`));
        }
      }
    }
    const n = await countOf(hs);
    if (n !== N) problem('after the rebuilds', new Error(`${n} vectors served, expected ${N}`));
    const allLat = loads.flatMap((q) => q.latenciesMs);
    const queryDuring = {
      batch: B,
      k: K,
      runs: loads.length,
      answered: loads.reduce((a, q) => a + q.answered, 0),
      failed: loads.reduce((a, q) => a + q.failed, 0),
      wrongShape: loads.reduce((a, q) => a + q.wrongShape, 0),
      errors: [...new Set(loads.flatMap((q) => q.errors))],
      sources: loads.reduce<Record<string, number>>((acc, q) => {
        for (const [k, v] of Object.entries(q.sources)) acc[k] = (acc[k] ?? 0) + v;
        return acc;
      }, {}),
      answeredPerRun: loads.map((q) => q.answered),
      batchLatencyMs: { p50: percentile(allLat, 50), p99: percentile(allLat, 99), max: Math.max(...allLat, 0) },
      queriesPerSecond:
        (loads.reduce((a, q) => a + q.answered, 0) * B) / (inline.underQueriesMs.reduce((a, b) => a + b, 0) / 1000),
    };

    // 5a. Sync jobs inline.
    let inlineJobs: JobsResult | undefined;
    const inlineQueue = new InlineJobQueue({
      processors: PROCESSORS,
      concurrency: DEFAULT_CONCURRENCY,
      context: { nvm: hs.nvm, encoders: hs.encoderSet, fleet: new LocalFleet(hs), rebuildDir, log },
    });
    try {
      inlineJobs = await timeJobs('inline', inlineQueue);
    } catch (err) {
      problem('inline sync jobs', err);
    } finally {
      await inlineQueue.close();
    }

    // 5b. Sync jobs on BullMQ: queue, workers (RedisFleet) and the HVS process (NodeListener), one process.
    let bullJobs: JobsResult | undefined;
    const prefix = `hs-bench-jobs-${randomUUID().slice(0, 8)}`;
    let redisKeysRemoved = 0;
    {
      const opened: { close(): Promise<void> }[] = [];
      try {
        const bull = new BullJobQueue(REDIS_URL, prefix);
        opened.push(bull);
        await bull.ping();
        opened.push(await NodeListener.start(hs, REDIS_URL, prefix, log));
        const fleet = new RedisFleet(REDIS_URL, prefix);
        opened.push(fleet);
        const context: JobContext = {
          nvm: workerNvm,
          encoders: hs.encoderSet,
          fleet,
          rebuildDir,
          buildSnapshot: (c, dir, opts) => buildSnapshot({ hvs: workerHvs, nvm: workerNvm, log }, c, dir, opts),
          log,
        };
        opened.push(
          await JobWorkers.start({
            redisUrl: REDIS_URL,
            prefix,
            processors: PROCESSORS,
            concurrency: DEFAULT_CONCURRENCY,
            context,
            log,
          }),
        );
        bullJobs = await timeJobs('bullmq', bull);
      } catch (err) {
        problem('BullMQ sync jobs', err);
      } finally {
        // Workers first, then the listener, the fleet and the queue.
        for (const r of opened.reverse()) await r.close().catch((err: unknown) => problem('closing the BullMQ side', err));
        try {
          redisKeysRemoved = await cleanRedis(prefix);
        } catch (err) {
          problem(`removing the Redis keys ${prefix}:*`, err);
        }
      }
    }

    const baselineMedian = median(baselineMs);
    const workerTotal = worker.totalMs.length > 0 ? median(worker.totalMs) : NaN;
    const inlineQuiet = inline.quietMs.length > 0 ? median(inline.quietMs) : NaN;
    const inlineUnder = inline.underQueriesMs.length > 0 ? median(inline.underQueriesMs) : NaN;
    const result = {
      benchmark: 'jobs',
      at: new Date().toISOString(),
      machine: machine(),
      n: N,
      dim: DIM,
      metric: 'cosine',
      device: 'cpu',
      runs: RUNS,
      load: { vectors: N, batch: LOAD_BATCH, ms: loadMs, vectorsPerSecond: N / (loadMs / 1000) },
      baselineOpenToReadyFromNvm: { runsMs: baselineMs, medianMs: baselineMedian },
      workerRebuild: {
        workerHvsOpenMs,
        buildSnapshotMs: worker.buildMs,
        installMs: worker.installMs,
        totalMs: worker.totalMs,
        buildSnapshotMedianMs: worker.buildMs.length > 0 ? median(worker.buildMs) : NaN,
        installMedianMs: worker.installMs.length > 0 ? median(worker.installMs) : NaN,
        totalMedianMs: workerTotal,
        spansMs: worker.spans,
        spansMedianMs: spanMedians(worker.spans, WORKER_SPANS),
        ratioToBaseline: workerTotal / baselineMedian,
        rows: worker.rows,
        installedFrom: worker.from,
        targetMs: 60_000,
      },
      inlineRebuild: {
        quietMs: inline.quietMs,
        quietMedianMs: inlineQuiet,
        quietRatioToBaseline: inlineQuiet / baselineMedian,
        quietSpansMs: inline.quietSpans,
        quietSpansMedianMs: spanMedians(inline.quietSpans, INLINE_SPANS),
        underQueriesMs: inline.underQueriesMs,
        underQueriesMedianMs: inlineUnder,
        underQueriesRatioToBaseline: inlineUnder / baselineMedian,
        underQueriesSpansMs: inline.underQueriesSpans,
        underQueriesSpansMedianMs: spanMedians(inline.underQueriesSpans, INLINE_SPANS),
        from: inline.from,
      },
      queriesDuringInlineRebuild: queryDuring,
      syncJobs: {
        jobs: JOBS,
        warmupJobs: WARMUP_JOBS,
        concurrency: DEFAULT_CONCURRENCY.sync,
        inline: inlineJobs ?? null,
        bullmq: bullJobs ? { ...bullJobs, redisUrl: REDIS_URL, prefix, redisKeysRemoved } : null,
      },
      problems,
    };

    console.log(`\nJobs and rebuilds on PostgreSQL: N = ${N}, d = ${DIM}, cosine, CPU (medians of ${RUNS} runs)`);
    const jobsRow = (r: JobsResult | undefined): string =>
      r ? `${r.jobsPerSecond.toFixed(0)}${r.notCompleted > 0 ? ` (${r.notCompleted} not completed)` : ''}` : 'failed';
    const ratio = (ms: number): string => `${s(ms)} (${(ms / baselineMedian).toFixed(2)}×)`;
    printTable(
      ['measure', 'value', 'target'],
      [
        [`load ${N} vectors by binary COPY (vectors/s)`, (N / (loadMs / 1000)).toFixed(0), ''],
        ['baseline: open-to-ready, rebuilt from the NVM (s)', s(baselineMedian), ''],
        ['worker rebuild: buildSnapshot (s)', s(result.workerRebuild.buildSnapshotMedianMs), ''],
        ['worker rebuild: hs.rebuild(snapshotDir) (s)', s(result.workerRebuild.installMedianMs), ''],
        ['worker rebuild: total (s, × baseline)', ratio(workerTotal), '≤ 60 s'],
        [`  ${WORKER_SPANS.join(' / ')} (s)`, spanText(result.workerRebuild.spansMedianMs, WORKER_SPANS), ''],
        ['inline rebuild hs.rebuild(), quiet (s, × baseline)', `${ratio(inlineQuiet)} [${QUIET_RUNS} runs]`, ''],
        [`  ${INLINE_SPANS.join(' / ')} (s)`, spanText(result.inlineRebuild.quietSpansMedianMs, INLINE_SPANS), ''],
        ['inline rebuild hs.rebuild(), under queries (s, × baseline)', ratio(inlineUnder), ''],
        [`  ${INLINE_SPANS.join(' / ')} (s)`, spanText(result.inlineRebuild.underQueriesSpansMedianMs, INLINE_SPANS), ''],
        [
          `  queries B=${B} k=${K} meanwhile: answered / failed`,
          `${queryDuring.answered} / ${queryDuring.failed}${queryDuring.wrongShape > 0 ? ` (${queryDuring.wrongShape} short)` : ''}`,
          '0 failed',
        ],
        [
          '  batch latency meanwhile p50 / p99 (ms)',
          `${queryDuring.batchLatencyMs.p50.toFixed(0)} / ${queryDuring.batchLatencyMs.p99.toFixed(0)}`,
          '',
        ],
        [`sync jobs inline, ${JOBS} at once (jobs/s)`, jobsRow(inlineJobs), ''],
        [`sync jobs BullMQ, ${JOBS} at once (jobs/s)`, jobsRow(bullJobs), ''],
      ],
    );
    if (problems.length > 0) {
      console.log(`\n${problems.length} problem(s):`);
      for (const p of problems) console.log(`  - ${p}`);
    }
    return result;
  } finally {
    await hs?.close();
    await workerHvs.close();
    await workerNvm.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
