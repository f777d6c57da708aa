/**
 * `npm run test:reliability`: the reliability suite (test/reliability/) at full size — 20 crash
 * rounds per backend, the faults, 10,000 fuzzed requests, 60 s of load, backups — then a summary
 * table of what each test recorded. CI runs the same files at their short size inside `npm test`.
 *
 *   npm run test:reliability [-- <vitest filters>]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Row {
  figure: string;
  value: number;
  detail: string;
}

const dir = mkdtempSync(join(tmpdir(), 'hs-reliability-'));
const summary = join(dir, 'summary.jsonl');
const started = Date.now();
const vitest = spawnSync('npx', ['vitest', 'run', 'test/reliability', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, HYPERSYNC_RELIABILITY: 'full', HYPERSYNC_RELIABILITY_SUMMARY: summary },
});
const minutes = (Date.now() - started) / 60_000;

const rows: Row[] = existsSync(summary)
  ? readFileSync(summary, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Row)
  : [];
rmSync(dir, { recursive: true, force: true });

const order = [
  'crash rounds survived',
  'faults survived',
  'bad inputs tried',
  'requests under load',
  'backups restored',
  'acknowledged writes checked',
  'acknowledged writes lost',
];
const totals = new Map<string, { value: number; details: string[] }>();
for (const r of rows) {
  const t = totals.get(r.figure) ?? { value: 0, details: [] };
  t.value += r.value;
  if (r.detail) t.details.push(`${r.detail}: ${r.value.toLocaleString('en-US')}`);
  totals.set(r.figure, t);
}
const lines = [...totals.entries()].sort(([a], [b]) => order.indexOf(a) - order.indexOf(b));
const width = Math.max(...order.map((f) => f.length));
console.log(`\nreliability summary (${minutes.toFixed(1)} min, vitest exit ${String(vitest.status)})`);
console.log(`${'figure'.padEnd(width)}  ${'total'.padStart(9)}  detail`);
console.log(`${'-'.repeat(width)}  ${'-'.repeat(9)}  ${'-'.repeat(40)}`);
for (const [figure, t] of lines) {
  console.log(`${figure.padEnd(width)}  ${t.value.toLocaleString('en-US').padStart(9)}  ${t.details.join('; ')}`);
}
const lost = totals.get('acknowledged writes lost')?.value ?? 0;
if (lost > 0) console.log(`\nFAILED: ${lost} acknowledged writes lost`);
process.exit(vitest.status === 0 && lost === 0 ? 0 : 1);
