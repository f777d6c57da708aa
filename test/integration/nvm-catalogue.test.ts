import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ClosedError,
  CollectionExistsError,
  CollectionNotFoundError,
  InvalidArgumentError,
  UnavailableError,
} from '../../src/errors.js';
import { loadMigrations, migrate, MigrationMismatchError } from '../../src/nvm/migrations.js';
import { PgDriver } from '../../src/nvm/pg-driver.js';
import { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL NVM tests: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A backend under test: opens a store on fresh, empty storage. */
interface Backend {
  name: 'postgres' | 'pglite';
  skip: boolean;
  open(): Promise<SqlNvmStore>;
}

const backends: Backend[] = [
  {
    name: 'postgres',
    skip: !servicesRequired && pgProblem !== null,
    async open() {
      const db = await createScratchDatabase();
      cleanups.push(db.drop);
      return SqlNvmStore.open({ databaseUrl: db.url });
    },
  },
  {
    name: 'pglite',
    skip: false,
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'nvm-pglite-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      return SqlNvmStore.open({ dataDir: dir });
    },
  },
];

describe.each(backends)('NVM catalogue contract ($name)', (backend) => {
  let store: SqlNvmStore;
  beforeEach(async () => {
    if (backend.skip) return;
    store = await backend.open();
  });
  afterEach(async () => {
    if (!backend.skip) await store.close();
  });

  it.skipIf(backend.skip)('migrations are applied at open and applying them again does nothing', async () => {
    expect(store.backend).toBe(backend.name);
    const migrations = await loadMigrations();
    expect(migrations.map((m) => m.version)).toEqual([1]);
    expect(await migrate(store.driver, migrations)).toEqual([]);
    const { rows } = await store.driver.query<{ version: number }>('SELECT version FROM hs_migrations');
    expect(rows.map((r) => Number(r.version))).toEqual([1]);
  });

  it.skipIf(backend.skip)('an applied migration that was edited is refused', async () => {
    const [first] = await loadMigrations();
    await expect(
      migrate(store.driver, [{ ...first, sql: `${first.sql}\n-- edited`, checksum: first.checksum + 1 }]),
    ).rejects.toThrow(MigrationMismatchError);
  });

  it.skipIf(backend.skip)('create, get, list and drop collections; the vectors column has the dimension', async () => {
    const a = await store.createCollection('alpha', { dim: 3, metric: 'cosine' });
    const b = await store.createCollection('beta_2', { dim: 5, metric: 'l2' });
    expect(a).toMatchObject({ name: 'alpha', dim: 3, metric: 'cosine' });
    expect(await store.getCollection('beta_2')).toEqual(b);
    expect((await store.listCollections()).map((c) => c.name)).toEqual(['alpha', 'beta_2']);

    const table = `hs_vec_${a.id}`;
    await store.driver.query(`INSERT INTO ${table} (block_id, chunk, embedding) VALUES ($1, 0, $2)`, ['x', '[1,2,3]']);
    await expect(
      store.driver.query(`INSERT INTO ${table} (block_id, chunk, embedding) VALUES ($1, 1, $2)`, ['x', '[1,2]']),
    ).rejects.toThrow(/expected 3 dimensions/);

    await store.dropCollection('alpha');
    await expect(store.getCollection('alpha')).rejects.toThrow(CollectionNotFoundError);
    await expect(store.driver.query(`SELECT 1 FROM ${table}`)).rejects.toThrow(/does not exist/);
    expect((await store.listCollections()).map((c) => c.name)).toEqual(['beta_2']);
  });

  it.skipIf(backend.skip)('typed errors: duplicate 409, unknown 404, bad input 400', async () => {
    await store.createCollection('dup', { dim: 4, metric: 'ip' });
    const dup = await store.createCollection('dup', { dim: 4, metric: 'ip' }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(CollectionExistsError);
    expect((dup as CollectionExistsError).httpStatus).toBe(409);
    await expect(store.getCollection('nope')).rejects.toThrow(CollectionNotFoundError);
    await expect(store.dropCollection('nope')).rejects.toThrow(CollectionNotFoundError);
    await expect(store.createCollection('x; DROP TABLE hs_blocks', { dim: 4, metric: 'ip' })).rejects.toThrow(
      InvalidArgumentError,
    );
    await expect(store.createCollection('ok', { dim: 0, metric: 'ip' })).rejects.toThrow(/dim must be/);
    await expect(store.createCollection('ok', { dim: 4097, metric: 'ip' })).rejects.toThrow(/dim must be/);
    await expect(store.createCollection('ok', { dim: 4, metric: 'dot' as 'ip' })).rejects.toThrow(/metric must be/);
    // nothing half-made: the failed creations left no collection behind
    expect((await store.listCollections()).map((c) => c.name)).toEqual(['dup']);
  });

  it.skipIf(backend.skip)('close is idempotent and use after close is a ClosedError', async () => {
    const s = await backend.open();
    await s.close();
    await s.close();
    await expect(s.listCollections()).rejects.toThrow(ClosedError);
  });
});

describe('NVM on PostgreSQL only', () => {
  const skip = !servicesRequired && pgProblem !== null;

  it.skipIf(skip)('two processes opening a fresh database at once apply each migration exactly once', async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const drivers = [new PgDriver({ connectionString: db.url }), new PgDriver({ connectionString: db.url })];
    try {
      const migrations = await loadMigrations();
      const applied = await Promise.all(drivers.map((d) => migrate(d, migrations)));
      expect(applied.flat()).toEqual([1]);
    } finally {
      for (const d of drivers) await d.close();
    }
  });

  it('an unreachable server is an UnavailableError (503)', async () => {
    const err = await SqlNvmStore.open({ databaseUrl: 'postgres://postgres@127.0.0.1:1/test' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).httpStatus).toBe(503);
    expect((err as Error).message).toMatch(/database unavailable/);
  });
});
