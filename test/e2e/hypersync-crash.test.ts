import { spawn } from 'node:child_process';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { HyperSync } from '../../src/integration/hyper-sync.js';
import type { LoadResult } from '../../src/integration/collection-loader.js';
import { CRASH_BATCH, crashItem } from '../fixtures/crash-items.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { tempDir } from '../fixtures/temp-dirs.js';
import { bits } from '../fixtures/vectors.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL crash tests: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const script = join(import.meta.dirname, '../fixtures/hypersync-child.ts');

/**
 * Runs the writer child until it has acknowledged `batches` batches, then kills it with SIGKILL;
 * resolves to the item numbers it acknowledged.
 */
async function writeUntilKilled(
  dataDir: string,
  url: string,
  persist: boolean,
  first: number,
  batches: number,
): Promise<number[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, dataDir, url, String(persist), String(first)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acked: number[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  let killed = false;
  for await (const line of createInterface({ input: child.stdout })) {
    const m = /^ack (\d+) (\d+)$/.exec(line);
    if (!m) continue;
    for (let n = Number(m[1]); n <= Number(m[2]); n++) acked.push(n);
    if (!killed && acked.length >= batches * CRASH_BATCH) {
      killed = true;
      child.kill('SIGKILL');
    }
  }
  expect(await exited).toBe('SIGKILL');
  return acked;
}

interface Case {
  backend: 'postgres' | 'pglite';
  persist: boolean;
}
const cases: Case[] = [
  { backend: 'postgres', persist: true },
  { backend: 'postgres', persist: false },
  { backend: 'pglite', persist: true },
  { backend: 'pglite', persist: false },
];

describe.each(cases)('HyperSync killed with SIGKILL mid-stream ($backend, persist $persist)', ({ backend, persist }) => {
  it.skipIf(backend === 'postgres' && !servicesRequired && pgProblem !== null)(
    'keeps every acknowledged write exactly once, recovering from a torn WAL tail and a corrupt snapshot',
    async () => {
      const dataDir = await tempDir('hs-crash-', cleanups);
      let url = '';
      if (backend === 'postgres') {
        const db = await createScratchDatabase();
        cleanups.push(db.drop);
        url = db.url;
      }
      // Two runs, each killed mid-stream; the second starts by recovering from the first.
      const acked = [
        ...(await writeUntilKilled(dataDir, url, persist, 0, 12)),
        ...(await writeUntilKilled(dataDir, url, persist, 100_000, 6)),
      ];

      // Damage what a crash (or a bad disk) can leave: a torn write-ahead-log tail and a snapshot
      // whose vectors file no longer matches its checksum.
      await appendFile(join(dataDir, 'wal', 'wal.log'), Buffer.from([0x20, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]));
      const snapDir = join(dataDir, 'hvs', 'crash');
      const manifest = JSON.parse(await readFile(join(snapDir, 'manifest.json'), 'utf8')) as {
        segments: { vectors: { file: string } }[];
      };
      expect(manifest.segments.length).toBeGreaterThan(0);
      const victim = join(snapDir, manifest.segments[0].vectors.file);
      const bytes = await readFile(victim);
      bytes[Math.floor(bytes.length / 2)] ^= 0xff;
      await writeFile(victim, bytes);

      const hs = await HyperSync.open({ dataDir, device: 'cpu', ...(url ? { databaseUrl: url } : {}) });
      try {
        const loaded = new Promise<LoadResult>((resolve) => hs.once('loaded', (_n, r) => resolve(r)));
        await hs.ready();
        expect((await loaded).from).toBe('nvm');
        const st = await hs.stats('crash');
        expect(st.walPending).toBe(0);
        // Each acknowledged item is there; at most the one batch in flight at each kill besides.
        expect(st.nvm.count).toBeGreaterThanOrEqual(acked.length);
        expect(st.nvm.count).toBeLessThanOrEqual(acked.length + 2 * CRASH_BATCH);
        expect(st.hvs.count).toBe(st.nvm.count);
        for (const n of acked) {
          const want = crashItem(n);
          const got = await hs.get('crash', want.id);
          expect(got, want.id).toBeDefined();
          expect(bits(got!.vector)).toEqual(bits(want.vector));
          expect(got!.content).toBe(want.content);
          expect(got!.version).toBe(1);
        }
        const blocks = await hs.nvm.getBlocks(
          'crash',
          acked.map((n) => crashItem(n).id),
        );
        expect(blocks.size).toBe(acked.length);
        for (const n of acked) expect(bits(blocks.get(crashItem(n).id)!.vectors[0])).toEqual(bits(crashItem(n).vector));
        const report = await hs.verifyConsistency('crash');
        expect(report.consistent).toBe(true);
        const probe = crashItem(acked[acked.length - 1]);
        expect((await hs.query('crash', [probe.vector], 1))[0][0].id).toBe(probe.id);
      } finally {
        await hs.close();
      }
    },
  );
});
