import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BackupCorruptError, BackupExistsError, CollectionExistsError, CollectionNotFoundError } from '../../src/core/errors.js';
import type { HyperSync } from '../../src/integration/hyper-sync.js';
import { digestOf, type ExpectedBlock, expectedAt, expectHolds, writeUntil } from '../fixtures/backup-writes.js';
import { openHyperSyncOn } from '../fixtures/hypersync.js';
import { hyperSyncBackends } from '../fixtures/nvm-backends.js';
import { freshSeed, randomRows, rng } from '../fixtures/random.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { tempDir } from '../fixtures/temp-dirs.js';
import { sleep } from '../fixtures/wait.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL backup tests: ${pgProblem}`);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const DIM = 8;

describe.each(hyperSyncBackends(pgProblem, cleanups))('backup and restore on $name', (backend) => {
  /** A HyperSync on fresh, empty storage (a new scratch database, or PGlite in a new data dir). */
  async function fresh(): Promise<HyperSync> {
    const hs = await openHyperSyncOn(backend, { walSyncIntervalMs: 0 }, cleanups, 'backup-');
    cleanups.push(() => hs.close());
    return hs;
  }

  /** `docs` (ip, n blocks at version 1) and `tiny` (cosine, 3 blocks); returns what docs holds. */
  async function seeded(hs: HyperSync, n: number, seed: number): Promise<Map<string, ExpectedBlock>> {
    await hs.createCollection('docs', { dim: DIM, metric: 'ip' });
    await hs.createCollection('tiny', { dim: 3, metric: 'cosine' });
    const vectors = randomRows(rng(seed), n, DIM);
    const initial = new Map<string, ExpectedBlock>();
    const items = vectors.map((vector, i) => {
      const b = { version: 1, vector, content: `seed ${i}`, metadata: { i, nested: { even: i % 2 === 0 } } };
      initial.set(`s${i}`, b);
      return { id: `s${i}`, vector, content: b.content, metadata: b.metadata };
    });
    await hs.store('docs', items);
    await hs.store('tiny', [
      { id: 'a', vector: Float32Array.of(1, 2, 3), content: null },
      { id: 'b', vector: Float32Array.of(-1, 0.5, 2), metadata: { k: 'v' } },
      { id: 'c', vector: Float32Array.of(0, 0, 1) },
    ]);
    return initial;
  }

  it.skipIf(backend.skip)(
    'copies a point in time while a writer keeps writing; a fresh service restored from it holds exactly that, digests equal',
    async () => {
      const seed = freshSeed();
      const src = await fresh();
      const initial = await seeded(src, 300, seed);
      // Acknowledged by the local write-ahead log only: the backup persists it first.
      const walOnly = Float32Array.from({ length: DIM }, (_, j) => j / 8);
      await src.store('docs', [{ id: 'wal-only', vector: walOnly, content: 'wal', metadata: {} }], { persist: false });
      initial.set('wal-only', { version: 1, vector: walOnly, content: 'wal', metadata: {} });
      const tinyDigest = (await src.verifyConsistency('tiny')).nvm.digest;

      const stop = new AbortController();
      const writer = writeUntil(src, 'docs', DIM, seed, stop.signal, { batch: 3 });
      await sleep(200);
      const dir = await tempDir('backup-file-', cleanups);
      const file = join(dir, 'all.hsb');
      const backup = await src.backup(file);
      await sleep(200);
      stop.abort();
      const writes = await writer;
      const before = writes.filter((w) => w.lsn <= backup.lsn).length;
      expect(before, `seed ${seed}: writes before the backup`).toBeGreaterThan(0);
      expect(writes.length - before, `seed ${seed}: writes after the backup`).toBeGreaterThan(0);

      const expected = expectedAt(writes, backup.lsn, initial);
      expect(backup.collections).toEqual([
        { name: 'docs', blocks: expected.size, digest: digestOf(expected) },
        { name: 'tiny', blocks: 3, digest: tinyDigest },
      ]);
      expect(backup.blocks).toBe(expected.size + 3);
      expect(backup.bytes).toBeGreaterThan(expected.size * DIM * 4);
      // Nothing but the backup in its directory: the partial file was put in place.
      expect(await readdir(dir)).toEqual(['all.hsb']);

      const dst = await fresh();
      const restored = await dst.restore(file);
      expect(restored).toMatchObject({ backupLsn: backup.lsn, collections: backup.collections, blocks: backup.blocks });
      expect(dst.listCollections().map((c) => [c.name, c.dim, c.metric])).toEqual([
        ['docs', DIM, 'ip'],
        ['tiny', 3, 'cosine'],
      ]);
      await expectHolds(dst, 'docs', expected);
      expect((await dst.verifyConsistency('tiny')).nvm).toEqual({ count: 3, digest: tinyDigest });
      expect(await dst.get('tiny', 'b')).toMatchObject({ metadata: { k: 'v' }, content: null, version: 1, source: 'hvs+nvm' });
      // The HVS serves the restored blocks: the best inner product with a query is the expected block's.
      const q = Float32Array.from({ length: DIM }, (_, j) => Math.cos(j));
      let best = '';
      let bestScore = -Infinity;
      for (const [id, blk] of expected) {
        const score = blk.vector.reduce((acc, x, j) => acc + x * q[j], 0);
        if (score > bestScore) [best, bestScore] = [id, score];
      }
      const hits = await dst.query('docs', [q], 1, { exact: true });
      expect(hits[0][0]).toMatchObject({ id: best, source: 'hvs' });
      // The restored collections take new writes as any other.
      await dst.store('docs', [{ id: 'after', vector: walOnly }]);
      expect((await dst.verifyConsistency('docs')).consistent).toBe(true);
    },
    240_000,
  );

  it.skipIf(backend.skip)(
    'refuses a truncated, a corrupt and a foreign file with a clear error, and creates nothing',
    async () => {
      const src = await fresh();
      await seeded(src, 200, freshSeed());
      const dir = await tempDir('backup-bad-', cleanups);
      const good = join(dir, 'good.hsb');
      await src.backup(good);
      const bytes = await readFile(good);
      const bad: [string, Buffer, RegExp][] = [
        ['cut.hsb', bytes.subarray(0, Math.floor(bytes.length / 2)), /cut\.hsb is truncated at byte \d+/],
        ['no-end.hsb', bytes.subarray(0, bytes.length - 3), /truncated/],
        ['flipped.hsb', flipByte(bytes, Math.floor(bytes.length * 0.6)), /flipped\.hsb is corrupt: checksum mismatch/],
        ['foreign.hsb', Buffer.from('PK\u0003\u0004 not a backup at all'), /foreign\.hsb is not a hypersync backup/],
        ['cut.hsb.gz', gzipSync(bytes).subarray(0, 300), /cut\.hsb\.gz is corrupt or truncated/],
        ['tail.hsb', Buffer.concat([bytes, Buffer.from('x')]), /bytes after its end/],
      ];
      const dst = await fresh();
      for (const [name, content, message] of bad) {
        await writeFile(join(dir, name), content);
        const err = await dst.restore(join(dir, name)).catch((e: unknown) => e);
        expect(err, name).toBeInstanceOf(BackupCorruptError);
        expect((err as Error).message, name).toMatch(message);
        // The message names the file, not where it lies.
        expect((err as Error).message).not.toContain(dir);
        expect(await dst.nvm.listCollections(), name).toEqual([]);
        expect(dst.listCollections(), name).toEqual([]);
      }
      // A gzip'd copy of the good file restores.
      await writeFile(join(dir, 'good.hsb.gz'), gzipSync(bytes));
      expect((await dst.restore(join(dir, 'good.hsb.gz'))).collections.map((c) => c.name)).toEqual(['docs', 'tiny']);
    },
    240_000,
  );

  it.skipIf(backend.skip)(
    'refuses a collection that exists, naming it, and restores a subset; never overwrites a backup file',
    async () => {
      const src = await fresh();
      await seeded(src, 50, freshSeed());
      const dir = await tempDir('backup-exists-', cleanups);
      const file = join(dir, 'b.hsb.gz');
      const written = await src.backup(file);
      await expect(src.backup(file)).rejects.toBeInstanceOf(BackupExistsError);
      const one = await src.backup(join(dir, 'tiny.hsb'), { collections: ['tiny'] });
      expect(one.collections.map((c) => c.name)).toEqual(['tiny']);
      const missing = await src.backup(join(dir, 'missing.hsb'), { collections: ['nope'] }).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(CollectionNotFoundError);
      expect((await readdir(dir)).sort()).toEqual(['b.hsb.gz', 'tiny.hsb']);

      const dst = await fresh();
      await dst.createCollection('docs', { dim: 2, metric: 'l2' });
      const err = await dst.restore(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CollectionExistsError);
      expect((err as Error).message).toMatch(/collection "docs" already exists/);
      // Nothing of the backup was created; the existing collection is untouched.
      expect((await dst.nvm.listCollections()).map((c) => c.name)).toEqual(['docs']);
      expect(dst.getCollection('docs').dim).toBe(2);

      await expect(dst.restore(file, { collections: ['nope'] })).rejects.toThrow(
        /"nope" is not in the backup; it holds docs, tiny/,
      );
      const subset = await dst.restore(file, { collections: ['tiny'] });
      expect(subset.collections).toEqual([written.collections[1]]);
      expect((await dst.verifyConsistency('tiny')).nvm.digest).toBe(written.collections[1].digest);
    },
    240_000,
  );

  it.skipIf(backend.skip)(
    'restores from a copy of the file elsewhere with identical digests (the file is self-contained)',
    async () => {
      const src = await fresh();
      await seeded(src, 20, freshSeed());
      const a = join(await tempDir('backup-copy-', cleanups), 'x.hsb');
      const r = await src.backup(a);
      const b = join(await tempDir('backup-copy-', cleanups), 'y.hsb');
      await copyFile(a, b);
      const dst = await fresh();
      expect((await dst.restore(b)).collections).toEqual(r.collections);
    },
  );
});

/** A copy of `bytes` with the byte at `at` inverted. */
function flipByte(bytes: Buffer, at: number): Buffer {
  const out = Buffer.from(bytes);
  out[at] ^= 0xff;
  return out;
}
