/**
 * The peers benchmark's report: one Markdown table per data set, the targets of the benchmark
 * issue checked against the rows (met, not met, or not measurable, with the figures), and the
 * whole report as Markdown text.
 */
import type { AnnRow } from './common.js';
import type { DataMeta } from './data.js';

export interface DataResult {
  data: DataMeta;
  rows: AnnRow[];
}

export interface TargetCheck {
  target: string;
  /** undefined: not measurable in this run (the detail says why). */
  met: boolean | undefined;
  detail: string;
}

/** Recall that counts as 1.0: 1.000 to three places. */
export const RECALL_ONE = 0.9995;

const isHypersync = (r: AnnRow): boolean => r.system === 'hypersync in process';
const fmt = (x: number | undefined, digits: number): string => (x === undefined ? '' : x.toFixed(digits));
const qps = (x: number): string => Math.round(x).toLocaleString('en-US');

function best(rows: readonly AnnRow[], field: 'qpsB1' | 'qpsB64', minRecall: number): AnnRow | undefined {
  let top: AnnRow | undefined;
  for (const r of rows) {
    const v = r[field];
    if (v === undefined || r.recall === undefined || r.recall < minRecall) continue;
    if (!top || v > (top[field] ?? 0)) top = r;
  }
  return top;
}

/** The three targets of the benchmark issue, per data set where they apply. */
export function checkTargets(results: readonly DataResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const { data, rows } of results) {
    const hs = rows.find((r) => isHypersync(r) && r.setting.startsWith('exact'));
    const pg = best(
      rows.filter((r) => r.system.startsWith('pgvector') && r.setting.startsWith('exact')),
      'qpsB64',
      RECALL_ONE,
    );
    const target = `${data.name}: hypersync batched exact search ≥ 20× pgvector's exact q/s, both at recall 1.0`;
    if (!hs?.qpsB64 || !pg?.qpsB64)
      checks.push({ target, met: undefined, detail: 'not measured (hypersync or pgvector exact missing)' });
    else {
      const ratio = hs.qpsB64 / pg.qpsB64;
      checks.push({
        target,
        met: ratio >= 20 && (hs.recall ?? 0) >= RECALL_ONE,
        detail: `${qps(hs.qpsB64)} vs ${qps(pg.qpsB64)} q/s (pgvector ${pg.setting}): ${ratio.toFixed(1)}×, recall ${fmt(hs.recall, 3)} / ${fmt(pg.recall, 3)}`,
      });
    }
    if (data.n === 100_000) {
      const target100k = `${data.name}: at 100k, hypersync batched q/s at recall 1.0 ≥ 2× hnswlib-node's single-query q/s at recall ≥ 0.99`;
      const ours = best(rows.filter(isHypersync), 'qpsB64', RECALL_ONE);
      const theirs = best(
        rows.filter((r) => r.system.startsWith('hnswlib')),
        'qpsB1',
        0.99,
      );
      if (!ours?.qpsB64) checks.push({ target: target100k, met: undefined, detail: 'hypersync has no setting at recall 1.0' });
      else if (!theirs?.qpsB1) {
        const top = Math.max(...rows.filter((r) => r.system.startsWith('hnswlib')).map((r) => r.recall ?? 0));
        checks.push({
          target: target100k,
          met: undefined,
          detail: `hnswlib-node never reaches recall 0.99 (best ${top.toFixed(3)})`,
        });
      } else {
        const ratio = ours.qpsB64 / theirs.qpsB1;
        checks.push({
          target: target100k,
          met: ratio >= 2,
          detail: `hypersync ${ours.setting} ${qps(ours.qpsB64)} q/s (recall ${fmt(ours.recall, 4)}) vs hnswlib-node ${theirs.setting} ${qps(theirs.qpsB1)} q/s (recall ${fmt(theirs.recall, 3)}): ${ratio.toFixed(1)}×`,
        });
      }
    }
    if (data.name.startsWith('wink')) {
      for (const field of ['qpsB1', 'qpsB64'] as const) {
        const b = field === 'qpsB1' ? 'B = 1' : 'B = 64';
        const targetReal = `${data.name} (real data), ${b}: hypersync ahead of every peer's q/s at recall@10 ≥ 0.95`;
        const ours = best(rows.filter(isHypersync), field, 0.95);
        const peers = [
          ...new Set(rows.filter((r) => !r.system.startsWith('hypersync') && r.recall !== undefined).map((r) => r.system)),
        ];
        if (!ours) {
          checks.push({ target: targetReal, met: false, detail: 'hypersync never reaches 0.95' });
          continue;
        }
        const parts: string[] = [];
        let met = true;
        for (const p of peers) {
          const theirs = best(
            rows.filter((r) => r.system === p),
            field,
            0.95,
          );
          if (!theirs) {
            const top = Math.max(...rows.filter((r) => r.system === p).map((r) => r.recall ?? 0));
            parts.push(`${p} never reaches 0.95 (best ${top.toFixed(3)})`);
            continue;
          }
          const ratio = (ours[field] ?? 0) / (theirs[field] ?? 1);
          if (ratio <= 1) met = false;
          parts.push(`${p} ${qps(theirs[field] ?? 0)} (${theirs.setting}, ${ratio.toFixed(1)}×)`);
        }
        checks.push({
          target: targetReal,
          met,
          detail: `hypersync ${ours.setting} ${qps(ours[field] ?? 0)} q/s (recall ${fmt(ours.recall, 3)}); ${parts.join('; ')}`,
        });
      }
    }
  }
  return checks;
}

export const TABLE_HEADERS = [
  'system',
  'setting',
  'load+build s',
  'B=1 q/s',
  'B=64 q/s',
  'recall@10',
  'p50 ms',
  'p99 ms',
  'peak MiB',
  'index MiB',
  'note',
] as const;

/** The cells of one row of the table. */
export function tableRow(r: AnnRow, nq: number): string[] {
  const queries = r.queries !== undefined && r.queries < nq ? ` (timed and recall over ${r.queries} queries)` : '';
  return [
    r.system,
    r.setting,
    fmt(r.buildS, 1),
    r.qpsB1 === undefined ? '' : qps(r.qpsB1),
    r.qpsB64 === undefined ? '' : qps(r.qpsB64),
    fmt(r.recall, 3),
    fmt(r.p50Ms, 2),
    fmt(r.p99Ms, 2),
    r.peakMiB === undefined ? '' : `${r.peakMiB.toFixed(0)}${r.peakNote ? ` (${r.peakNote})` : ''}`,
    r.memMiB === undefined ? '' : `${r.memMiB.toFixed(0)}${r.memNote ? ` (${r.memNote})` : ''}`,
    `${r.note ?? ''}${queries}`,
  ];
}

/** A Markdown table (pipes escaped). */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  const lines = [`| ${headers.map(esc).join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.map(esc).join(' | ')} |`);
  return lines.join('\n');
}

export interface ReportInput {
  date: string;
  command: string;
  machine: Record<string, unknown>;
  results: readonly DataResult[];
  targets: readonly TargetCheck[];
  charts: readonly { title: string; file: string }[];
  totalS: number;
}

/** The whole report as Markdown. */
export function markdownReport(r: ReportInput): string {
  const m = r.machine;
  const out: string[] = [
    `# Peers benchmark, ${r.date.slice(0, 10)}`,
    '',
    `Command: \`${r.command}\` (${(r.totalS / 60).toFixed(1)} min in all). Machine: ${String(m.cpu)}, ${String(m.cores)} cores, ${String(m.memGiB)} GiB, Node ${String(m.node)}.`,
    'Cosine metric, k = 10. B = 1: one query per call (median of 3 passes); B = 64: batches of 64. Recall@10 against exact ground truth. ' +
      'Peak MiB: the peak RSS of the process that ran the system, less its data (in-process systems), or the server process itself.',
  ];
  for (const { data, rows } of r.results) {
    out.push(
      '',
      `## ${data.name}: N = ${data.n.toLocaleString('en-US')}, d = ${data.dim}, ${data.nq.toLocaleString('en-US')} queries`,
      '',
      `Data: ${data.source}. Ground truth: ${data.truthBy}.`,
      '',
      markdownTable(
        TABLE_HEADERS,
        rows.map((row) => tableRow(row, data.nq)),
      ),
    );
  }
  out.push('', '## Targets', '');
  for (const t of r.targets)
    out.push(`- **${t.met === undefined ? 'not measured' : t.met ? 'met' : 'not met'}**: ${t.target}. ${t.detail}.`);
  if (r.charts.length) {
    out.push('', '## Charts', '');
    for (const c of r.charts) out.push(`![${c.title}](${c.file})`, '');
  }
  return out.join('\n') + '\n';
}
