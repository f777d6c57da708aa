import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SnapshotCorruptError } from '../../src/core/errors.js';
import { Hvs } from '../../src/hvs/hvs.js';
import { freshSeed, randomVectors, rng } from '../fixtures/random.js';

let dataDir: string;
let hvs: Hvs;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hvs-snap-'));
  hvs = await Hvs.open({ dataDir, device: 'cpu', sealThreshold: 50 });
});
afterEach(async () => {
  await hvs.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function filled(name: string, n = 180, dim = 12) {
  const rand = rng(freshSeed());
  const c = hvs.createCollection(name, { dim, metric: 'l2' });
  const ids = Array.from({ length: n }, (_, i) => `doc-${i}`);
  const vectors = randomVectors(rand, n, dim);
  await c.upsert(ids, vectors);
  c.delete(ids.filter((_, i) => i % 10 === 0));
  await c.upsert(['doc-1'], [vectors.slice(5 * dim, 6 * dim)]);
  c.advanceLsn(77);
  return { c, ids, vectors, queries: randomVectors(rand, 5, dim), dim };
}

describe('HVS snapshots', () => {
  it('round trip: ids, versions, exact vectors, tombstones, lsn and search results come back', async () => {
    const { c, ids, queries } = await filled('snap_rt');
    const before = await c.search(queries, 20);
    const manifest = await hvs.snapshot('snap_rt');
    expect(manifest.lsn).toBe(77);
    expect(manifest.segments.length).toBeGreaterThan(1);

    const other = await Hvs.open({ dataDir, device: 'cpu', sealThreshold: 50 });
    try {
      const loaded = await other.loadSnapshot('snap_rt');
      expect(loaded.lsn).toBe(77);
      expect(loaded.count).toBe(c.count);
      for (const id of ids) expect(loaded.get(id)).toEqual(c.get(id));
      expect(loaded.get('doc-1')?.version).toBe(2);
      expect(await loaded.search(queries, 20)).toEqual(before);
      // the loaded collection takes writes and searches as usual
      await loaded.upsert(['late'], [queries.slice(0, 12)]);
      expect((await loaded.search([queries.slice(0, 12)], 1))[0][0].id).toBe('late');
    } finally {
      await other.close();
    }
  });

  it('a second snapshot replaces the first and removes its files', async () => {
    const { c } = await filled('snap_two');
    const first = await hvs.snapshot('snap_two');
    c.delete(['doc-2']);
    const second = await hvs.snapshot('snap_two');
    const files = await readdir(join(dataDir, 'hvs', 'snap_two'));
    expect(files.sort()).toEqual(
      ['manifest.json', second.metadata.file, ...second.segments.flatMap((s) => [s.vectors.file, s.meta.file])].sort(),
    );
    // sealed segments' vectors files are named again, not rewritten; metadata files are new
    expect(second.segments[0].vectors).toEqual(first.segments[0].vectors);
    expect(first.segments[0].meta.file).not.toBe(second.segments[0].meta.file);
    const loaded = await hvs.loadSnapshot('snap_two');
    expect(loaded.get('doc-2')).toBeUndefined();
  });

  it('a flipped byte in a segment file is caught and nothing is loaded', async () => {
    await filled('snap_flip');
    const m = await hvs.snapshot('snap_flip');
    const path = join(dataDir, 'hvs', 'snap_flip', m.segments[1].vectors.file);
    const buf = await readFile(path);
    const at = Math.floor(buf.length / 2);
    buf[at] ^= 0x01;
    await writeFile(path, buf);
    await expect(hvs.loadSnapshot('snap_flip')).rejects.toThrow(SnapshotCorruptError);
    await expect(hvs.loadSnapshot('snap_flip')).rejects.toThrow(/CRC-32/);
    // the collection in memory is untouched
    expect(hvs.collection('snap_flip').count).toBeGreaterThan(0);
  });

  it('a flipped byte in a metadata file is caught', async () => {
    await filled('snap_flip_meta');
    const m = await hvs.snapshot('snap_flip_meta');
    const path = join(dataDir, 'hvs', 'snap_flip_meta', m.segments[0].meta.file);
    const buf = await readFile(path);
    buf[40] ^= 0x80;
    await writeFile(path, buf);
    await expect(hvs.loadSnapshot('snap_flip_meta')).rejects.toThrow(/CRC-32/);
  });

  it('a truncated segment file is caught', async () => {
    await filled('snap_trunc');
    const m = await hvs.snapshot('snap_trunc');
    await truncate(join(dataDir, 'hvs', 'snap_trunc', m.segments[0].meta.file), m.segments[0].meta.bytes - 7);
    await expect(hvs.loadSnapshot('snap_trunc')).rejects.toThrow(/truncated/);
  });

  it('a changed, truncated or missing manifest is caught', async () => {
    await filled('snap_manifest');
    await hvs.snapshot('snap_manifest');
    const path = join(dataDir, 'hvs', 'snap_manifest', 'manifest.json');
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('"lsn": 77', '"lsn": 78'));
    await expect(hvs.loadSnapshot('snap_manifest')).rejects.toThrow(/checksum/);
    await writeFile(path, text.slice(0, text.length - 20));
    await expect(hvs.loadSnapshot('snap_manifest')).rejects.toThrow(/not valid JSON/);
    await rm(path);
    await expect(hvs.loadSnapshot('snap_manifest')).rejects.toThrow(SnapshotCorruptError);
    expect(await hvs.hasSnapshot('snap_manifest')).toBe(false);
  });

  it('a missing segment file is caught', async () => {
    await filled('snap_missing');
    const m = await hvs.snapshot('snap_missing');
    await rm(join(dataDir, 'hvs', 'snap_missing', m.segments[0].vectors.file));
    await expect(hvs.loadSnapshot('snap_missing')).rejects.toThrow(/cannot be read/);
  });

  it('dropCollection removes the snapshot', async () => {
    await filled('snap_drop');
    await hvs.snapshot('snap_drop');
    expect(await hvs.hasSnapshot('snap_drop')).toBe(true);
    await hvs.dropCollection('snap_drop');
    expect(await hvs.hasSnapshot('snap_drop')).toBe(false);
    expect(hvs.has('snap_drop')).toBe(false);
  });
});
