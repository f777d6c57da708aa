/**
 * Dropping a collection deletes its change-log rows; the newest lsn must not move back with them,
 * or the other collections' snapshots look ahead of the NVM at the next start and are rebuilt from
 * the tables (27 s at 80k vectors where this was found).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { HyperSync } from '../../src/integration/hyper-sync.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { freshSeed, randomRows, rng } from '../fixtures/random.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { tempDir } from '../fixtures/temp-dirs.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping the PostgreSQL case: ${pgProblem}`);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const backends = [
  { name: 'postgres', skip: pgProblem !== null && !servicesRequired },
  { name: 'pglite', skip: false },
];

describe.each(backends)('a restart after a drop on $name', ({ name, skip }) => {
  it.skipIf(skip)(
    'keeps the newest lsn and loads the other collections from their snapshots',
    async () => {
      const dataDir = await tempDir('drop-restart-', cleanups);
      const databaseUrl =
        name === 'postgres' ? (await createScratchDatabase().then((db) => (cleanups.push(db.drop), db))).url : undefined;
      const open = () => HyperSync.open({ dataDir, device: 'cpu', ...(databaseUrl ? { databaseUrl } : {}) });
      const dim = 8;
      const vectors = randomRows(rng(freshSeed()), 400, dim);
      const hs = await open();
      await hs.createCollection('keep', { dim, metric: 'l2' });
      await hs.createCollection('gone', { dim, metric: 'l2' });
      await hs.store(
        'keep',
        vectors.slice(0, 200).map((vector, i) => ({ id: `k${i}`, vector })),
      );
      // The newest changes belong to the collection that is dropped.
      await hs.store(
        'gone',
        vectors.slice(200).map((vector, i) => ({ id: `g${i}`, vector })),
      );
      await hs.close(); // snapshots both at the newest lsn

      const second = await open();
      await second.ready();
      const before = await second.nvm.lastLsn();
      await second.dropCollection('gone');
      expect(await second.nvm.lastLsn()).toBe(before);
      await second.close();

      const third = await open();
      const loaded = new Map<string, string>();
      third.on('loaded', (collection: string, r: { from: string }) => loaded.set(collection, r.from));
      await third.ready();
      try {
        expect(loaded.get('keep')).toBe('snapshot');
        expect((await third.stats('keep')).hvs.count).toBe(200);
        expect((await third.verifyConsistency('keep')).consistent).toBe(true);
        // Later writes still get larger lsns than anything before the drop.
        const { lsn } = await third.store('keep', [{ id: 'new', vector: vectors[0] }]);
        expect(lsn).toBeGreaterThan(before);
      } finally {
        await third.close();
      }
    },
    120_000,
  );
});
