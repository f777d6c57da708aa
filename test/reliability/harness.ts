/**
 * What the reliability suite shares: its size (short on every CI run, full under
 * `npm run test:reliability`) and the figures each test records for the summary table.
 */
import { appendFileSync } from 'node:fs';

/** True under `npm run test:reliability` (`HYPERSYNC_RELIABILITY=full`). */
export const fullRun = process.env.HYPERSYNC_RELIABILITY === 'full';

/** `full` under the full run, else `short` (the version CI runs on every push). */
export function scale<T>(short: T, full: T): T {
  return fullRun ? full : short;
}

/** The summary's rows: what each test counts (summed over tests by `scripts/reliability.ts`). */
export type Figure =
  | 'crash rounds survived'
  | 'faults survived'
  | 'bad inputs tried'
  | 'requests under load'
  | 'acknowledged writes checked'
  | 'acknowledged writes lost'
  | 'backups restored';

/**
 * Records a figure for the summary (a JSON line in `HYPERSYNC_RELIABILITY_SUMMARY`, when set);
 * `detail` is shown beside it (e.g. "pglite, persist").
 */
export function record(figure: Figure, value: number, detail = ''): void {
  const file = process.env.HYPERSYNC_RELIABILITY_SUMMARY;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify({ figure, value, detail })}\n`);
}
