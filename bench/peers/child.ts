/**
 * Runs one system of the peers benchmark on one prepared data set, in its own process, so that
 * its peak memory is its own:
 *
 *   node --expose-gc --import tsx bench/peers/child.ts <system> <data key> <result.json>
 *
 * Writes `{rows, peakMiB}`: the result rows and the process's peak RSS less its RSS once the data
 * was loaded.
 */
import { writeFile } from 'node:fs/promises';
import { gc, mib } from './common.js';
import { loadData } from './data.js';
import { SYSTEMS } from './systems.js';

const [key, dataKey, out] = process.argv.slice(2);
const system = SYSTEMS.find((s) => s.key === key);
if (!system?.run || !dataKey || !out) {
  console.error('usage: child.ts <system> <data key> <result.json>');
  process.exit(2);
}
const data = loadData(dataKey);
gc();
const dataRss = process.memoryUsage().rss;
const rows = await system.run(data);
const peakMiB = mib(process.resourceUsage().maxRSS * 1024 - dataRss);
await writeFile(out, JSON.stringify({ rows, peakMiB }));
// Native bindings and pools may keep handles open; the result is written.
process.exit(0);
