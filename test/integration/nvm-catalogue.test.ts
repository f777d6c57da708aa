import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ClosedError,
  CollectionExistsError,
  CollectionNotFoundError,
  DimensionMismatchError,
  InvalidArgumentError,
  InvalidVectorError,
  UnavailableError,
} from '../../src/core/errors.js';
import { loadMigrations, migrate } from '../../src/nvm/migrations.js';
import { MigrationMismatchError } from '../../src/core/errors.js';
import { PgDriver } from '../../src/nvm/pg-driver.js';
import { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { freshSeed, randomVectors, rng } from '../fixtures/random.js';
import { expectMatchesReference } from '../fixtures/reference-check.js';
import { nvmBackends, type NvmBackend } from '../fixtures/nvm-backends.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { sleep } from '../fixtures/wait.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL NVM tests: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const backends: NvmBackend[] = nvmBackends(pgProblem, cleanups, 'nvm-pglite-');

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
    expect(migrations.map((m) => m.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await migrate(store.driver, migrations)).toEqual([]);
    const { rows } = await store.driver.query<{ version: number }>('SELECT version FROM hs_migrations');
    expect(rows.map((r) => Number(r.version)).sort()).toEqual([1, 2, 3, 4, 5, 6]);
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

  it.skipIf(backend.skip)('a collection records the encoder it names, with its version', async () => {
    const c = await store.createCollection('texts', { dim: 8, metric: 'cosine', encoder: { name: 'hashing', version: 'v1-d8' } });
    expect(c.encoder).toEqual({ name: 'hashing', version: 'v1-d8' });
    expect((await store.getCollection('texts')).encoder).toEqual({ name: 'hashing', version: 'v1-d8' });
    await store.createCollection('plain', { dim: 8, metric: 'cosine' });
    const listed = await store.listCollections();
    expect(listed.find((x) => x.name === 'plain')?.encoder).toBeUndefined();
    expect(listed.find((x) => x.name === 'texts')?.encoder?.name).toBe('hashing');
    await expect(
      store.createCollection('bad', { dim: 8, metric: 'cosine', encoder: { name: '', version: 'x' } }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
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
      expect(applied.flat().sort()).toEqual([1, 2, 3, 4, 5, 6]);
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

describe.each(backends)('NVM blocks and change log contract ($name)', (backend) => {
  let store: SqlNvmStore;
  beforeEach(async () => {
    if (backend.skip) return;
    store = await backend.open();
    await store.createCollection('docs', { dim: 5, metric: 'l2' });
    await store.createCollection('other', { dim: 2, metric: 'ip' });
  });
  afterEach(async () => {
    if (!backend.skip) await store.close();
  });

  const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);
  // awkward float32 values: subnormal-ish, large, negative zero, values with long decimals
  const exact = f32(1e-38, 3.4e38, -0, 0.1, Math.fround(1 / 3));

  it.skipIf(backend.skip)('writes round-trip exactly: chunks, content, metadata, versions', async () => {
    const first = await store.writeBlocks('docs', [
      { id: 'a', name: 'A', content: 'alpha', metadata: { tag: 'x', n: 1 }, vectors: [exact, f32(1, 2, 3, 4, 5)] },
      { id: 'b', vectors: [f32(5, 4, 3, 2, 1)] },
    ]);
    expect(first.versions).toEqual(
      new Map([
        ['a', 1],
        ['b', 1],
      ]),
    );
    const got = await store.getBlocks('docs', ['a', 'b', 'missing']);
    expect([...got.keys()].sort()).toEqual(['a', 'b']);
    const a = got.get('a')!;
    expect(a).toMatchObject({ id: 'a', name: 'A', content: 'alpha', metadata: { tag: 'x', n: 1 }, version: 1 });
    expect(a.vectors).toHaveLength(2);
    expect(Buffer.from(a.vectors[0].buffer).equals(Buffer.from(exact.buffer))).toBe(true);
    expect(a.vectors[1]).toEqual(f32(1, 2, 3, 4, 5));
    expect(got.get('b')).toMatchObject({ name: null, content: null, metadata: {}, version: 1 });

    const second = await store.writeBlocks('docs', [{ id: 'a', vectors: [f32(0, 0, 0, 0, 1)] }]);
    expect(second.versions.get('a')).toBe(2);
    expect(second.lsn).toBeGreaterThan(first.lsn);
    const a2 = (await store.getBlocks('docs', ['a'])).get('a')!;
    expect(a2.vectors).toEqual([f32(0, 0, 0, 0, 1)]); // the old chunks are gone
    await store.writeBlocks('docs', [{ id: 'a', version: 10, vectors: [f32(1, 1, 1, 1, 1)] }]);
    expect((await store.getBlocks('docs', ['a'])).get('a')!.version).toBe(10);
    expect(await store.counts('docs')).toEqual({ blocks: 2, vectors: 2 });
  });

  it.skipIf(backend.skip)('an id given twice in one batch keeps the last', async () => {
    await store.writeBlocks('docs', [
      { id: 'x', content: 'first', vectors: [f32(1, 0, 0, 0, 0)] },
      { id: 'x', content: 'second', vectors: [f32(0, 1, 0, 0, 0)] },
    ]);
    const x = (await store.getBlocks('docs', ['x'])).get('x')!;
    expect(x.content).toBe('second');
    expect(x.vectors).toEqual([f32(0, 1, 0, 0, 0)]);
    expect(await store.counts('docs')).toEqual({ blocks: 1, vectors: 1 });
  });

  it.skipIf(backend.skip)('deletes and the change log: every change once, in lsn order, per collection', async () => {
    const w = await store.writeBlocks('docs', [
      { id: 'a', vectors: [f32(1, 2, 3, 4, 5)] },
      { id: 'b', vectors: [f32(1, 2, 3, 4, 5)] },
    ]);
    await store.writeBlocks('other', [{ id: 'o', vectors: [f32(1, 2)] }]);
    const d = await store.deleteBlocks('docs', ['a', 'nope']);
    expect(d.deleted).toBe(1);
    expect(d.lsn).toBeGreaterThan(w.lsn);
    expect(await store.deleteBlocks('docs', ['nope'])).toEqual({ deleted: 0, lsn: 0 });
    expect((await store.getBlocks('docs', ['a'])).size).toBe(0);
    expect(await store.counts('docs')).toEqual({ blocks: 1, vectors: 1 });

    const all = await store.changesAfter(0);
    expect(all.map((c) => [c.collection, c.blockId, c.op])).toEqual([
      ['docs', 'a', 'upsert'],
      ['docs', 'b', 'upsert'],
      ['other', 'o', 'upsert'],
      ['docs', 'a', 'delete'],
    ]);
    const lsns = all.map((c) => c.lsn);
    expect([...lsns].sort((x, y) => x - y)).toEqual(lsns);
    expect(new Set(lsns).size).toBe(lsns.length);
    expect((await store.changesAfter(lsns[1])).map((c) => c.blockId)).toEqual(['o', 'a']);
    expect((await store.changesAfter(0, 10, 'other')).map((c) => c.blockId)).toEqual(['o']);
    expect(await store.changesAfter(0, 2)).toHaveLength(2);
  });

  it.skipIf(backend.skip)('bad writes are refused with typed errors and leave nothing behind', async () => {
    await expect(store.writeBlocks('docs', [{ id: 'a', vectors: [f32(1, 2, 3)] }])).rejects.toThrow(DimensionMismatchError);
    await expect(
      store.writeBlocks('docs', [
        { id: 'ok', vectors: [f32(1, 2, 3, 4, 5)] },
        { id: 'bad', vectors: [f32(1, 2, NaN, 4, 5)] },
      ]),
    ).rejects.toThrow(InvalidVectorError);
    await expect(store.writeBlocks('docs', [{ id: '', vectors: [] }])).rejects.toThrow(InvalidArgumentError);
    await expect(store.writeBlocks('docs', [])).rejects.toThrow(/non-empty/);
    await expect(store.writeBlocks('docs', [{ id: 'v', version: 0, vectors: [] }])).rejects.toThrow(/version/);
    await expect(store.writeBlocks('nope', [{ id: 'a', vectors: [] }])).rejects.toThrow(CollectionNotFoundError);
    expect(await store.counts('docs')).toEqual({ blocks: 0, vectors: 0 });
    expect(await store.changesAfter(0)).toEqual([]);
  });

  it.skipIf(backend.skip)('a collection dropped and re-created by another handle is picked up', async () => {
    await store.writeBlocks('docs', [{ id: 'a', vectors: [f32(1, 2, 3, 4, 5)] }]);
    const before = await store.getCollection('docs');
    // drop and re-create through SQL, as another process would
    await store.driver.query("DELETE FROM hs_collections WHERE name = 'docs'");
    await store.driver.query(`DROP TABLE hs_vec_${before.id}`);
    const recreated = await SqlNvmStoreFacade.recreate(store, 'docs');
    expect(recreated.dim).toBe(3);
    await store.writeBlocks('docs', [{ id: 'n', vectors: [f32(1, 2, 3)] }]);
    const got = await store.getBlocks('docs', ['n', 'a']);
    expect([...got.keys()]).toEqual(['n']);
    expect(got.get('n')!.vectors).toEqual([f32(1, 2, 3)]);
    expect(await store.counts('docs')).toEqual({ blocks: 1, vectors: 1 });
  });
});

/** Re-creates a collection behind a store's back, the way a second process would. */
const SqlNvmStoreFacade = {
  async recreate(store: SqlNvmStore, name: string) {
    const { rows } = await store.driver.query<{ id: number }>(
      "INSERT INTO hs_collections (name, dim, metric) VALUES ($1, 3, 'ip') RETURNING id",
      [name],
    );
    await store.driver.query(
      `CREATE TABLE hs_vec_${Number(rows[0].id)} (block_id text NOT NULL, chunk integer NOT NULL, embedding vector(3) NOT NULL, PRIMARY KEY (block_id, chunk))`,
    );
    return { id: Number(rows[0].id), dim: 3 };
  },
};

describe.each(backends)('NVM fallback index and digest contract ($name)', (backend) => {
  let store: SqlNvmStore;
  afterEach(async () => {
    if (!backend.skip) await store.close();
  });

  it.skipIf(backend.skip).each(['cosine', 'ip', 'l2'] as const)(
    'exact search equals the float64 reference (%s); HNSW finds most of it',
    async (metric) => {
      store = await backend.open();
      const seed = freshSeed();
      const rand = rng(seed);
      const dim = 16;
      const n = 300;
      await store.createCollection('s', { dim, metric });
      const flat = randomVectors(rand, n, dim);
      const rows = Array.from({ length: n }, (_, i) => ({ id: `b${i}`, vector: flat.slice(i * dim, (i + 1) * dim) }));
      await store.writeBlocks(
        's',
        rows.map((r) => ({ id: r.id, vectors: [r.vector] })),
      );
      const queries = Array.from({ length: 4 }, () => randomVectors(rand, 1, dim));
      const exact = await store.search('s', queries, 10);
      exact.forEach((hits, q) =>
        expectMatchesReference(metric, queries[q], rows, 10, hits, `seed ${seed}, ${metric}, query ${q}`),
      );
      expect(exact[0][0].version).toBe(1);

      await store.createHnswIndex('s', { m: 16, efConstruction: 64 });
      const approx = await store.search('s', queries, 10, { mode: 'hnsw', efSearch: 200 });
      let found = 0;
      approx.forEach((hits, q) => {
        const truth = new Set(exact[q].map((h) => h.id));
        found += hits.filter((h) => truth.has(h.id)).length;
      });
      expect(found / 40).toBeGreaterThanOrEqual(0.9);
      await store.dropHnswIndex('s');
      await store.dropHnswIndex('s');
    },
  );

  it.skipIf(backend.skip)('search refuses bad input', async () => {
    store = await backend.open();
    await store.createCollection('s', { dim: 3, metric: 'l2' });
    const q = [Float32Array.of(1, 2, 3)];
    await expect(store.search('s', q, 0)).rejects.toThrow(/k must be/);
    await expect(store.search('s', q, 1025)).rejects.toThrow(/k must be/);
    await expect(store.search('s', [], 1)).rejects.toThrow(/empty/);
    await expect(store.search('s', [Float32Array.of(1, 2)], 1)).rejects.toThrow(DimensionMismatchError);
    await expect(store.search('nope', q, 1)).rejects.toThrow(CollectionNotFoundError);
    expect(await store.search('s', q, 5)).toEqual([[]]);
  });

  it.skipIf(backend.skip)('the digest ignores write order and sees every change', async () => {
    store = await backend.open();
    await store.createCollection('d1', { dim: 2, metric: 'ip' });
    await store.createCollection('d2', { dim: 2, metric: 'ip' });
    const blocks = [
      { id: 'a', vectors: [Float32Array.of(1, 2), Float32Array.of(3, 4)] },
      { id: 'b', vectors: [Float32Array.of(-0.5, 0.25)] },
      { id: 'c', vectors: [] },
    ];
    await store.writeBlocks('d1', blocks);
    for (const b of [...blocks].reverse()) await store.writeBlocks('d2', [b]);
    const d1 = await store.digest('d1');
    expect(d1.blocks).toBe(3);
    expect(await store.digest('d2')).toEqual(d1);
    expect(KNOWN_DIGESTS.get(backend.name) ?? d1.digest).toBe(d1.digest);
    KNOWN_DIGESTS.set(backend.name, d1.digest);

    await store.writeBlocks('d2', [{ id: 'b', version: 1, vectors: [Float32Array.of(-0.5, 0.2500001)] }]);
    expect((await store.digest('d2')).digest).not.toBe(d1.digest);
    await store.writeBlocks('d2', [{ id: 'b', version: 1, vectors: [Float32Array.of(-0.5, 0.25)] }]);
    expect((await store.digest('d2')).digest).toBe(d1.digest);
    await store.writeBlocks('d2', [{ id: 'b', vectors: [Float32Array.of(-0.5, 0.25)] }]); // version 2
    expect((await store.digest('d2')).digest).not.toBe(d1.digest);
    expect(await store.digest('d1')).toEqual(d1);
  });
});

// The same contents digest alike on both backends: the digest can compare tiers across them.
const KNOWN_DIGESTS = new Map<string, string>();
afterAll(() => {
  const values = [...KNOWN_DIGESTS.values()];
  if (values.length === 2) expect(values[0]).toBe(values[1]);
});

describe.each(backends)('NVM streaming and change notifications ($name)', (backend) => {
  let store: SqlNvmStore;
  afterEach(async () => {
    if (!backend.skip) await store.close();
  });

  it.skipIf(backend.skip)('streams every vector once, in lsn order, a bounded page at a time', async () => {
    store = await backend.open();
    await store.createCollection('st', { dim: 3, metric: 'l2' });
    const v = (i: number): Float32Array => Float32Array.of(i, i + 0.5, -i);
    for (let batch = 0; batch < 3; batch++) {
      await store.writeBlocks(
        'st',
        Array.from({ length: 8 }, (_, j) => ({ id: `k${batch * 8 + j}`, vectors: [v(batch * 8 + j)] })),
      );
    }
    await store.writeBlocks('st', [{ id: 'multi', vectors: [v(100), v(101)] }]);
    await store.writeBlocks('st', [{ id: 'k3', vectors: [v(300)] }]); // moves k3 to the end
    await store.deleteBlocks('st', ['k5']);
    const before = await store.lastLsn();

    const seen: { id: string; chunk: number; lsn: number; vector: number[] }[] = [];
    let pages = 0;
    for await (const page of store.streamVectors('st', 7)) {
      pages++;
      expect(new Set(page.ids).size).toBeLessThanOrEqual(7);
      page.ids.forEach((id, i) =>
        seen.push({ id, chunk: page.chunks[i], lsn: page.lsns[i], vector: [...page.vectors.subarray(i * 3, i * 3 + 3)] }),
      );
    }
    expect(pages).toBeGreaterThanOrEqual(4);
    expect(seen).toHaveLength(23 + 2); // 24 blocks − k5 + multi's two chunks
    const keys = seen.map((s) => `${s.id}/${s.chunk}`);
    expect(new Set(keys).size).toBe(keys.length);
    const lsns = seen.map((s) => s.lsn);
    expect([...lsns].sort((a, b) => a - b)).toEqual(lsns);
    expect(seen[seen.length - 1]).toMatchObject({ id: 'k3', vector: [300, 300.5, -300] });
    expect(seen.find((s) => s.id === 'multi' && s.chunk === 1)?.vector).toEqual([101, 101.5, -101]);
    expect(Math.max(...lsns)).toBeLessThanOrEqual(before);
    expect(keys).not.toContain('k5/0');
  });

  it.skipIf(backend.skip)('pages of blocks without vectors do not end the stream early', async () => {
    store = await backend.open();
    await store.createCollection('holes', { dim: 2, metric: 'ip' });
    await store.writeBlocks('holes', [{ id: 'first', vectors: [Float32Array.of(1, 1)] }]);
    await store.writeBlocks(
      'holes',
      Array.from({ length: 20 }, (_, i) => ({ id: `empty${i}`, vectors: [] })),
    );
    await store.writeBlocks('holes', [{ id: 'last', vectors: [Float32Array.of(2, 2)] }]);
    const ids: string[] = [];
    for await (const page of store.streamVectors('holes', 3)) ids.push(...page.ids);
    expect(ids).toEqual(['first', 'last']);
  });

  it.skipIf(backend.skip)('LISTEN/NOTIFY: committed writes and deletes wake listeners with their lsn', async () => {
    store = await backend.open();
    await store.createCollection('n', { dim: 2, metric: 'ip' });
    const heard: number[] = [];
    let wake: () => void = () => undefined;
    const unsubscribe = await store.onChange((lsn) => {
      heard.push(lsn);
      wake();
    });
    const next = (): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no notification within 5 s')), 5000);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    let arrived = next();
    const w = await store.writeBlocks('n', [{ id: 'a', vectors: [Float32Array.of(1, 2)] }]);
    await arrived;
    arrived = next();
    const d = await store.deleteBlocks('n', ['a']);
    await arrived;
    expect(heard).toEqual([w.lsn, d.lsn]);
    await unsubscribe();
    await store.writeBlocks('n', [{ id: 'b', vectors: [Float32Array.of(1, 2)] }]);
    await sleep(200);
    expect(heard).toHaveLength(2);
  });
});

describe('NVM on PostgreSQL: connections killed mid-run', () => {
  const skip = !servicesRequired && pgProblem !== null;

  it.skipIf(skip)('a LISTEN connection the server drops comes back by itself and reports the newest lsn', async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const store = await SqlNvmStore.open({ databaseUrl: db.url });
    const killer = new PgDriver({ connectionString: db.url });
    try {
      await store.createCollection('l', { dim: 2, metric: 'ip' });
      const heard: number[] = [];
      const unsubscribe = await store.onChange((lsn) => heard.push(lsn));
      await killer.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      // the store writes again (its pool drops the dead connections) …
      let w = { lsn: 0 };
      for (let i = 0; i < 20 && w.lsn === 0; i++) {
        w = await store.writeBlocks('l', [{ id: `x${i}`, vectors: [Float32Array.of(1, 2)] }]).catch(() => ({ lsn: 0 }));
      }
      // … and the listener hears about it: from the catch-up after reconnecting, or the NOTIFY.
      const deadline = Date.now() + 5000;
      while (!heard.includes(w.lsn) && Date.now() < deadline) await sleep(50);
      expect(heard).toContain(w.lsn);
      const w2 = await store.writeBlocks('l', [{ id: 'later', vectors: [Float32Array.of(1, 2)] }]);
      while (!heard.includes(w2.lsn) && Date.now() < deadline + 5000) await sleep(50);
      expect(heard).toContain(w2.lsn);
      await unsubscribe();
    } finally {
      await killer.close();
      await store.close();
    }
  });

  it.skipIf(skip)('no acknowledged write is lost, failures are typed 503s, and the store recovers by itself', async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const store = await SqlNvmStore.open({ databaseUrl: db.url });
    const killer = new PgDriver({ connectionString: db.url });
    try {
      await store.createCollection('r', { dim: 4, metric: 'l2' });
      const acknowledged = new Map<string, Float32Array>();
      const failures: unknown[] = [];
      let stop = false;
      const writer = (async () => {
        for (let i = 0; !stop && i < 2000; i++) {
          const id = `w${i}`;
          const vector = Float32Array.of(i, i / 3, -i, 0.5);
          try {
            await store.writeBlocks('r', [{ id, vectors: [vector] }]);
            acknowledged.set(id, vector);
          } catch (err) {
            failures.push(err);
          }
        }
      })();
      // Terminate every other backend of this database a few times while the writer runs.
      for (let round = 0; round < 5; round++) {
        await sleep(60);
        await killer.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
        );
      }
      await sleep(100);
      stop = true;
      await writer;

      expect(acknowledged.size).toBeGreaterThan(0);
      for (const err of failures) expect(err).toBeInstanceOf(UnavailableError);
      // the store works again without being reopened
      await store.writeBlocks('r', [{ id: 'after', vectors: [Float32Array.of(1, 2, 3, 4)] }]);
      const stored = await store.getBlocks('r', [...acknowledged.keys(), 'after']);
      for (const [id, vector] of acknowledged) expect(stored.get(id)?.vectors[0], id).toEqual(vector);
      expect(stored.has('after')).toBe(true);
      // every acknowledged write is in the change log exactly once
      const logged = (await store.changesAfter(0, 100_000, 'r')).filter((c) => c.op === 'upsert').map((c) => c.blockId);
      for (const id of acknowledged.keys()) expect(logged.filter((x) => x === id)).toHaveLength(1);
      console.log(`connections killed 5 times: ${acknowledged.size} writes acknowledged, ${failures.length} refused with 503`);
    } finally {
      await killer.close();
      await store.close();
    }
  });
});

describe.each(backends)('NVM bulk writes ($name)', (backend) => {
  let store: SqlNvmStore;
  afterEach(async () => {
    if (!backend.skip) await store.close();
  });

  it.skipIf(backend.skip)(
    'a large batch (binary COPY: from STDIN on PostgreSQL, /dev/blob on PGlite) stores exactly what small batches (INSERT) store',
    async () => {
      store = await backend.open();
      const dim = 24;
      await store.createCollection('bulk', { dim, metric: 'cosine' });
      await store.createCollection('small', { dim, metric: 'cosine' });
      const rand = rng(freshSeed());
      const blocks = Array.from({ length: 400 }, (_, i) => {
        const v = randomVectors(rand, i % 3 === 0 ? 2 : 1, dim);
        if (i === 0) v.set([-0, 1e-40, 3.4e38, -1e-45], 0);
        const vectors = [v.slice(0, dim), ...(v.length > dim ? [v.slice(dim)] : [])];
        return { id: `bulk-${i}-ü`, content: `c${i}`, vectors };
      });
      await store.writeBlocks('bulk', blocks);
      // Fewer than 16 vectors a write: the INSERT path.
      for (let i = 0; i < blocks.length; i += 10) await store.writeBlocks('small', blocks.slice(i, i + 10));
      expect(await store.digest('bulk')).toEqual(await store.digest('small'));
      const got = await store.getBlocks(
        'bulk',
        blocks.map((b) => b.id),
      );
      expect(got.size).toBe(400);
      for (const b of blocks) {
        const stored = got.get(b.id)!;
        expect(stored.vectors.length).toBe(b.vectors.length);
        b.vectors.forEach((v, c) =>
          expect(Buffer.from(stored.vectors[c].buffer).equals(Buffer.from(v.buffer)), `${b.id}/${c}`).toBe(true),
        );
      }
      expect(await store.counts('bulk')).toEqual({ blocks: 400, vectors: 534 });
    },
  );
});

describe.each(backends)('NVM unit of work ($name)', (backend) => {
  let store: SqlNvmStore;
  beforeEach(async () => {
    if (backend.skip) return;
    store = await backend.open();
    await store.createCollection('u1', { dim: 2, metric: 'ip' });
    await store.createCollection('u2', { dim: 3, metric: 'l2' });
    await store.writeBlocks('u1', [{ id: 'old', vectors: [Float32Array.of(1, 1)] }]);
  });
  afterEach(async () => {
    if (!backend.skip) await store.close();
  });

  it.skipIf(backend.skip)('commits writes and deletes across collections together', async () => {
    const before = await store.lastLsn();
    const { result, lsn } = await store.unitOfWork(async (uow) => {
      await uow.writeBlocks('u1', [{ id: 'a', vectors: [Float32Array.of(1, 2)] }]);
      await uow.writeBlocks('u2', [{ id: 'b', vectors: [Float32Array.of(1, 2, 3)] }]);
      const d = await uow.deleteBlocks('u1', ['old']);
      return d.deleted;
    });
    expect(result).toBe(1);
    expect(lsn).toBe(await store.lastLsn());
    expect((await store.changesAfter(before)).map((c) => [c.collection, c.blockId, c.op])).toEqual([
      ['u1', 'a', 'upsert'],
      ['u2', 'b', 'upsert'],
      ['u1', 'old', 'delete'],
    ]);
    expect(await store.counts('u1')).toEqual({ blocks: 1, vectors: 1 });
    expect(await store.counts('u2')).toEqual({ blocks: 1, vectors: 1 });
  });

  it.skipIf(backend.skip)('a unit of work that throws — or holds a bad write — leaves both collections untouched', async () => {
    const before = await store.lastLsn();
    await expect(
      store.unitOfWork(async (uow) => {
        await uow.writeBlocks('u1', [{ id: 'a', vectors: [Float32Array.of(1, 2)] }]);
        await uow.deleteBlocks('u1', ['old']);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    await expect(
      store.unitOfWork(async (uow) => {
        await uow.writeBlocks('u1', [{ id: 'a', vectors: [Float32Array.of(1, 2)] }]);
        await uow.writeBlocks('u2', [{ id: 'b', vectors: [Float32Array.of(1, 2)] }]); // wrong dimension
      }),
    ).rejects.toThrow(DimensionMismatchError);
    expect(await store.lastLsn()).toBe(before);
    expect([...(await store.getBlocks('u1', ['old', 'a'])).keys()]).toEqual(['old']);
    expect(await store.counts('u2')).toEqual({ blocks: 0, vectors: 0 });
  });
});
