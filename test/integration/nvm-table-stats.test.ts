/**
 * A collection's vectors table is analyzed as it grows (TableStats), so the planner finds the
 * vectors a write replaces by index rather than by a scan of the whole table: once after its
 * first 1,000 rows, then each time it has doubled; writes through a unit of work count too.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { PgDriver } from '../../src/nvm/pg-driver.js';
import { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { sleep, waitUntil } from '../fixtures/wait.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping the table statistics test: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const blocks = (from: number, n: number): { id: string; vectors: Float32Array[] }[] =>
  Array.from({ length: n }, (_, i) => ({ id: `b${from + i}`, vectors: [Float32Array.of(from + i, 1, 2, 3)] }));

describe.skipIf(pgProblem !== null && !servicesRequired)('NVM table statistics (PostgreSQL)', () => {
  it('analyzes a vectors table after its first 1,000 rows and again once it has doubled', async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const store = await SqlNvmStore.open({ databaseUrl: db.url });
    cleanups.push(() => store.close());
    const probe = new PgDriver({ connectionString: db.url });
    cleanups.push(() => probe.close());
    const c = await store.createCollection('grows', { dim: 4, metric: 'l2' });
    const analyzed = async (): Promise<{ count: number; tuples: number }> => {
      const { rows } = await probe.query<{ count: string; tuples: string }>(
        `SELECT s.analyze_count AS count, c.reltuples AS tuples
           FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relname = $1`,
        [`hs_vec_${c.id}`],
      );
      return { count: Number(rows[0]?.count ?? 0), tuples: Number(rows[0]?.tuples ?? -1) };
    };

    await store.writeBlocks('grows', blocks(0, 600));
    await sleep(300);
    expect((await analyzed()).count).toBe(0);
    // The 1,000th row comes through a unit of work (as the service's writes do).
    await store.unitOfWork((uow) => uow.writeBlocks('grows', blocks(600, 500)));
    expect(await waitUntil(async () => (await analyzed()).count === 1, { timeoutMs: 10_000 })).toBe(true);
    expect((await analyzed()).tuples).toBe(1100);
    // Not again until as many rows again are written.
    await store.writeBlocks('grows', blocks(1100, 900));
    await sleep(300);
    expect((await analyzed()).count).toBe(1);
    await store.writeBlocks('grows', blocks(2000, 300));
    expect(await waitUntil(async () => (await analyzed()).count === 2, { timeoutMs: 10_000 })).toBe(true);
    expect((await analyzed()).tuples).toBe(2300);
  });
});
