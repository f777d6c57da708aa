import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BackupResult } from '../../src/integration/backup.js';
import type { HyperSync } from '../../src/integration/hyper-sync.js';
import { type ExpectedBlock, expectedAt, expectHolds, writeUntil } from '../fixtures/backup-writes.js';
import { openHyperSyncOn } from '../fixtures/hypersync.js';
import { hyperSyncBackends } from '../fixtures/nvm-backends.js';
import { freshSeed, randomRows, rng } from '../fixtures/random.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { tempDir } from '../fixtures/temp-dirs.js';
import { sleep } from '../fixtures/wait.js';
import { record, scale } from './harness.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping the PostgreSQL backup round trips: ${pgProblem}`);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const DIM = 32;
/** Blocks before the writer starts, and backups taken while it writes. */
const SEED_BLOCKS = scale(2_000, 10_000);
const ROUNDS = scale(2, 4);

/**
 * Backups under writes, each restored into a fresh, empty service: every acknowledged write up
 * to the backup's lsn is there with its exact vector bytes, nothing after it, and the digests
 * equal. Counts `backups restored`.
 */
describe.each(hyperSyncBackends(pgProblem, cleanups))('backup under writes, restored on $name', (backend) => {
  async function fresh(): Promise<HyperSync> {
    const hs = await openHyperSyncOn(backend, { walSyncIntervalMs: 0 }, cleanups, 'reliability-backup-');
    cleanups.push(() => hs.close());
    return hs;
  }

  it.skipIf(backend.skip)(
    `${ROUNDS} backups taken while a writer writes, each restored with every acknowledged write and identical digests`,
    async () => {
      const seed = freshSeed();
      const src = await fresh();
      await src.createCollection('docs', { dim: DIM, metric: 'l2' });
      const initial = new Map<string, ExpectedBlock>();
      const vectors = randomRows(rng(seed), SEED_BLOCKS, DIM);
      for (let i = 0; i < SEED_BLOCKS; i += 1000) {
        const items = vectors.slice(i, i + 1000).map((vector, j) => {
          const b: ExpectedBlock = { version: 1, vector, content: `seed ${i + j}`, metadata: { n: i + j } };
          initial.set(`s${i + j}`, b);
          return { id: `s${i + j}`, vector, content: b.content, metadata: b.metadata };
        });
        await src.store('docs', items);
      }
      const stop = new AbortController();
      const writer = writeUntil(src, 'docs', DIM, seed, stop.signal, { batch: 4 });
      const dir = await tempDir('reliability-backup-', cleanups);
      const backups: BackupResult[] = [];
      try {
        for (let r = 0; r < ROUNDS; r++) {
          await sleep(150);
          backups.push(await src.backup(join(dir, `round-${r}.hsb${r % 2 === 1 ? '.gz' : ''}`)));
        }
        await sleep(150);
      } finally {
        stop.abort();
      }
      const writes = await writer;
      let restored = 0;
      for (const [r, b] of backups.entries()) {
        const expected = expectedAt(writes, b.lsn, initial);
        const dst = await fresh();
        const out = await dst.restore(join(dir, `round-${r}.hsb${r % 2 === 1 ? '.gz' : ''}`));
        expect(out.collections, `seed ${seed}, round ${r}`).toEqual(b.collections);
        await expectHolds(dst, 'docs', expected);
        await dst.close();
        restored++;
      }
      expect(
        writes.some((w) => w.lsn > backups[backups.length - 1].lsn),
        `seed ${seed}: writes after the last backup`,
      ).toBe(true);
      record('backups restored', restored, backend.name);
    },
    600_000,
  );
});
