import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTestModel } from '../../models/generate-test-model.js';
import { HashingEncoder } from '../../src/encoder/hashing-encoder.js';
import { OnnxEncoder } from '../../src/encoder/onnx-encoder.js';
import { EncoderMismatchError, InvalidArgumentError } from '../../src/core/errors.js';
import { LIMITS } from '../../src/core/limits.js';
import { HyperSync } from '../../src/integration/hyper-sync.js';

let root: string;
let onnx: OnnxEncoder;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hs-enc-'));
  await generateTestModel(join(root, 'tiny'), 'tiny');
  onnx = await OnnxEncoder.open({ modelDir: join(root, 'tiny'), device: 'cpu', name: 'onnx:tiny' });
});
afterAll(async () => {
  await onnx.close();
  await rm(root, { recursive: true, force: true });
});

describe('HyperSync with encoders (embedded NVM)', () => {
  it('stores and queries texts with the default encoder, and with the encoder a collection names', async () => {
    const hashing = new HashingEncoder({ dim: 64 });
    const hs = await HyperSync.open({ dataDir: join(root, 'a'), device: 'cpu', encoder: hashing, encoders: [onnx] });
    try {
      await hs.createCollection('docs', { dim: 64, metric: 'cosine' });
      const texts = ['the cat sat on the mat', 'stock markets fell sharply today', 'a kitten sleeps on a rug'];
      const { ids } = await hs.store(
        'docs',
        texts.map((text, i) => ({ id: `t${i}`, text })),
      );
      expect(ids).toEqual(['t0', 't1', 't2']);
      // The text is the content unless content is given; the vector is the encoder's.
      const got = await hs.get('docs', 't0');
      expect(got?.content).toBe('the cat sat on the mat');
      expect([...got!.vector]).toEqual([...(await hashing.encode(['the cat sat on the mat']))[0]]);
      const hits = await hs.query('docs', ['the cat sat on a mat'], 2, { include: ['content'] });
      expect(hits[0][0]).toMatchObject({ id: 't0', content: 'the cat sat on the mat' });

      // A collection that names an encoder takes its dimension and records its version.
      const named = await hs.createCollection('semantic', { encoder: 'onnx:tiny' });
      expect(named).toMatchObject({ dim: onnx.dim, encoder: { name: 'onnx:tiny', version: onnx.version } });
      await hs.store(
        'semantic',
        texts.map((text, i) => ({ id: `s${i}`, text })),
      );
      const exact = await hs.query('semantic', [texts[1]], 1);
      expect(exact[0][0].id).toBe('s1');
      expect(exact[0][0].score).toBeCloseTo(1, 5);

      // A collection of another dimension that names no encoder: 400 with the reason.
      await hs.createCollection('wide', { dim: 128, metric: 'cosine' });
      await expect(hs.store('wide', [{ text: 'hello' }])).rejects.toThrow(/dimension 128.*64-dimensional/);
      await expect(hs.query('wide', ['hello'], 1)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(hs.createCollection('x', { encoder: 'nope' })).rejects.toBeInstanceOf(InvalidArgumentError);

      const enc = await hs.encode(['a b c']);
      expect(enc).toMatchObject({ dim: 64, encoder: { name: 'hashing', version: hashing.version } });
      expect([...enc.vectors[0]]).toEqual([...(await hashing.encode(['a b c']))[0]]);
      expect((await hs.encode(['a b c'], { encoder: 'onnx:tiny' })).dim).toBe(onnx.dim);
    } finally {
      await hs.close();
    }
  });

  it('refuses to encode with another version of the named encoder, or without it (409)', async () => {
    const dataDir = join(root, 'b');
    const first = await HyperSync.open({ dataDir, device: 'cpu', encoder: new HashingEncoder({ dim: 32 }) });
    await first.createCollection('named', { encoder: 'hashing' });
    await first.store('named', [{ id: 'x', text: 'first words' }]);
    await first.close();

    const other = await HyperSync.open({ dataDir, device: 'cpu', encoder: new HashingEncoder({ dim: 32, bigramWeight: 0.7 }) });
    try {
      expect(other.getCollection('named').encoder?.name).toBe('hashing');
      await expect(other.store('named', [{ text: 'more words' }])).rejects.toBeInstanceOf(EncoderMismatchError);
      await expect(other.query('named', ['first words'], 1)).rejects.toThrow(/version/);
      // Vectors are still accepted, and the stored text is still there.
      expect((await other.get('named', 'x'))?.content).toBe('first words');
    } finally {
      await other.close();
    }
    const none = await HyperSync.open({ dataDir, device: 'cpu' });
    try {
      await expect(none.store('named', [{ text: 'more' }])).rejects.toThrow(/does not have/);
    } finally {
      await none.close();
    }
  });
});

const WORDS = ['river', 'stone', 'cloud', 'lamp', 'orchard', 'violin', 'harbour', 'copper', 'meadow', 'lantern', 'glacier'];

describe('HyperSync stores the most texts one call takes', () => {
  it('stores 100,000 short texts in one store() call and finds one of them', async () => {
    const hashing = new HashingEncoder({ dim: 64 });
    const hs = await HyperSync.open({ dataDir: join(root, 'many'), device: 'cpu', encoder: hashing });
    try {
      await hs.createCollection('many', { dim: 64, metric: 'cosine' });
      const items = Array.from({ length: LIMITS.itemsPerCall }, (_, i) => ({
        id: `m${i}`,
        text: `note ${i} about ${WORDS[i % WORDS.length]} and ${WORDS[(i * 7) % WORDS.length]}`,
      }));
      const { ids } = await hs.store('many', items);
      expect(ids).toHaveLength(LIMITS.itemsPerCall);
      const stats = await hs.stats('many');
      expect(stats.count).toBe(LIMITS.itemsPerCall);
      expect(stats.hvs.count).toBe(LIMITS.itemsPerCall);
      const target = items[54_321];
      const [hits] = await hs.query('many', [target.text], 1);
      expect(hits[0].id).toBe(target.id);
      expect(hits[0].score).toBeCloseTo(1, 5);
    } finally {
      await hs.close();
    }
  }, 300_000);
});
