/**
 * The peers benchmark: hypersync (in process and over HTTP) beside pgvector (exact and HNSW),
 * hnswlib-node, usearch and Chroma on the same data in the same run. Every system runs in its own
 * child process on the same cached data; each one reports load/build time, q/s at B = 1 and B = 64,
 * recall@10 against exact ground truth, p50/p99 latency and peak memory. Systems that cannot run
 * here are listed with the reason.
 *
 *   npm run bench:peers                                  # 100k × 384 clustered + wink word vectors (100k)
 *   npm run bench:peers -- --1m                          # adds clustered 1M × 384
 *   BENCH_FILE=base.fvecs [BENCH_FILE_QUERIES=q.fvecs] npm run bench:peers   # adds a file (.fvecs/.npy)
 *   BENCH_DATA=wink BENCH_PEERS_SYSTEMS=hypersync,usearch npm run bench:peers
 *
 * Settings: BENCH_N (rows, default 100,000), BENCH_QUERIES (default 1,000), BENCH_DATA
 * (clustered,wink), BENCH_PEERS_SYSTEMS (default all), BENCH_PEERS_OUT (default bench/results),
 * BENCH_PEERS_CACHE (default bench/.cache/peers), BENCH_SETTING_BUDGET_S (default 45: a slower
 * setting times fewer queries), BENCH_SYSTEM_TIMEOUT_S (default 1,800), BENCH_PGVECTOR=1 and
 * BENCH_CHROMA=1 (build their indexes above 200k rows too).
 *
 * Output: progress on stderr; the tables and the targets on stdout; `peers-<date>.md` and
 * `peers-<date>.json` (and `-latest` copies) and the PNG charts in the output folder.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { machine } from '../lib/stats.js';
import { type AnnRow, K, SINGLE_QUERIES, SINGLE_REPS, log, timed } from './common.js';
import { chartPng, loadSpec, recallSpec } from './charts.js';
import { type DataSpec, prepareData } from './data.js';
import { type DataResult, TABLE_HEADERS, checkTargets, markdownReport, markdownTable, tableRow } from './report.js';
import { SYSTEMS } from './systems.js';

const N = Number(process.env.BENCH_N ?? 100_000);
const NQ = Number(process.env.BENCH_QUERIES ?? 1000);
const ONE_MILLION = process.argv.includes('--1m') || process.env.BENCH_1M === '1';
const DATA = (process.env.BENCH_DATA ?? 'clustered,wink').split(',').filter(Boolean);
const WANTED = (process.env.BENCH_PEERS_SYSTEMS ?? SYSTEMS.map((s) => s.key).join(',')).split(',');
const OUT = resolve(process.env.BENCH_PEERS_OUT ?? join(import.meta.dirname, '..', 'results'));
const TIMEOUT_S = Number(process.env.BENCH_SYSTEM_TIMEOUT_S ?? 1800);
const CHILD = join(import.meta.dirname, 'child.ts');

function specs(): DataSpec[] {
  const out: DataSpec[] = [];
  for (const d of DATA) {
    if (d === 'clustered') out.push({ kind: 'clustered', n: N, nq: NQ });
    else if (d === 'wink') out.push({ kind: 'wink', n: N, nq: NQ });
    else throw new Error(`BENCH_DATA: unknown data set ${d} (clustered, wink; a file goes in BENCH_FILE)`);
  }
  if (ONE_MILLION) out.push({ kind: 'clustered', n: 1_000_000, nq: NQ });
  const file = process.env.BENCH_FILE;
  if (file) out.push({ kind: 'file', path: file, queriesPath: process.env.BENCH_FILE_QUERIES, n: N, nq: NQ });
  return out;
}

/** Runs one system on one data set in a child process; a failure becomes a row with the reason. */
async function runChild(key: string, label: string, dataKey: string, dataName: string): Promise<AnnRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-peers-'));
  const out = join(dir, 'result.json');
  let tail = '';
  try {
    const code = await new Promise<number | null>((resolveExit) => {
      const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD, key, dataKey, out], {
        stdio: ['ignore', 'inherit', 'pipe'],
      });
      child.stderr.on('data', (b: Buffer) => {
        process.stderr.write(b);
        tail = (tail + b.toString()).slice(-2000);
      });
      const timer = setTimeout(() => {
        tail += `\ntimed out after ${TIMEOUT_S} s`;
        child.kill('SIGKILL');
      }, TIMEOUT_S * 1000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolveExit(c);
      });
    });
    if (code !== 0) {
      const lines = tail.trim().split('\n').filter(Boolean);
      throw new Error(lines.findLast((l) => /error|timed out/i.test(l)) ?? lines.at(-1) ?? `exit ${code}`);
    }
    const { rows, peakMiB } = JSON.parse(await readFile(out, 'utf8')) as { rows: AnnRow[]; peakMiB: number };
    if (rows.length && rows[0].peakMiB === undefined) Object.assign(rows[0], { peakMiB, peakNote: 'process, less the data' });
    return rows;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    log(`${dataName}: ${label} failed: ${msg}`);
    return [{ data: dataName, system: label, setting: '-', note: `failed: ${msg}` }];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const unknown = WANTED.filter((k) => !SYSTEMS.some((s) => s.key === k));
  if (unknown.length)
    throw new Error(`BENCH_PEERS_SYSTEMS: unknown ${unknown.join(', ')} (${SYSTEMS.map((s) => s.key).join(', ')})`);
  const results: DataResult[] = [];
  for (const spec of specs()) {
    const [data] = await timed(() => prepareData(spec));
    const rows: AnnRow[] = [];
    for (const sys of SYSTEMS.filter((s) => WANTED.includes(s.key))) {
      if (!sys.run) {
        rows.push({ data: data.name, system: sys.label, peer: sys.key, setting: '-', note: sys.unavailable ?? 'not run' });
        continue;
      }
      if (sys.maxN !== undefined && data.n > sys.maxN && process.env[`BENCH_${sys.key.toUpperCase()}`] !== '1') {
        const flag = `BENCH_${sys.key.toUpperCase()}=1`;
        rows.push({
          data: data.name,
          system: sys.label,
          peer: sys.key,
          setting: '-',
          note: `skipped above ${sys.maxN} rows (slow build here); set ${flag}`,
        });
        continue;
      }
      log(`${data.name}: ${sys.label}`);
      const [sysRows, s] = await timed(() => runChild(sys.key, sys.label, data.key, data.name));
      log(`${data.name}: ${sys.label} done in ${s.toFixed(0)} s`);
      rows.push(...sysRows.map((r) => ({ ...r, peer: sys.key })));
    }
    console.log(`\n### ${data.name}: N=${data.n}, d=${data.dim}, ${data.nq} queries, k=${K}, cosine (truth: ${data.truthBy})\n`);
    console.log(
      markdownTable(
        TABLE_HEADERS,
        rows.map((r) => tableRow(r, data.nq)),
      ),
    );
    results.push({ data, rows });
  }
  const targets = checkTargets(results);
  console.log('\n### Targets\n');
  for (const t of targets)
    console.log(`- ${t.met === undefined ? 'not measured' : t.met ? 'met' : 'NOT met'}: ${t.target}. ${t.detail}`);

  await mkdir(OUT, { recursive: true });
  const charts: { title: string; file: string }[] = [];
  for (const r of results) {
    const file = `peers-${r.data.name}-${r.data.n}-recall.png`;
    await writeFile(join(OUT, file), await chartPng(recallSpec(r)));
    charts.push({ title: `${r.data.name}: recall@10 vs q/s`, file });
  }
  await writeFile(join(OUT, 'peers-load.png'), await chartPng(loadSpec(results)));
  charts.push({ title: 'load and build time', file: 'peers-load.png' });

  const date = new Date().toISOString();
  const argv = process.argv.slice(2).join(' ');
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_') && k !== 'BENCH_PEERS_OUT' && k !== 'BENCH_PEERS_CACHE')
    .map(([k, v]) => `${k}=${v} `)
    .join('');
  const command = `${env}npm run bench:peers${argv ? ` -- ${argv}` : ''}`;
  const totalS = (performance.now() - started) / 1000;
  const m = machine();
  const md = markdownReport({ date, command, machine: m, results, targets, charts, totalS });
  const stamp = date.replace(/[:.]/g, '-');
  const json = JSON.stringify(
    {
      benchmark: 'peers',
      date,
      command,
      machine: m,
      k: K,
      metric: 'cosine',
      single: { queries: SINGLE_QUERIES, reps: SINGLE_REPS },
      totalS,
      results,
      targets,
    },
    null,
    2,
  );
  for (const name of [`peers-${stamp}`, 'peers-latest']) {
    await writeFile(join(OUT, `${name}.md`), md);
    await writeFile(join(OUT, `${name}.json`), json + '\n');
  }
  console.log(`\nwrote ${join(OUT, `peers-${stamp}.md`)} (.json) and ${charts.length} charts in ${(totalS / 60).toFixed(1)} min`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
