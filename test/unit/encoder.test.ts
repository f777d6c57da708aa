import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Tokenizer } from '@huggingface/tokenizers';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_WORDS, generateTestModel, TEST_MODEL_PRESETS } from '../../models/generate-test-model.js';
import type { Encoder } from '../../src/encoder/encoder.js';
import { HashingEncoder } from '../../src/encoder/hashing-encoder.js';
import { LIMITS } from '../../src/core/limits.js';
import { planBuckets } from '../../src/encoder/bucket-plan.js';
import { OnnxEncoder } from '../../src/encoder/onnx-encoder.js';
import { type TextTokenizer, TokenizerClass as FullTokenizer, tokenize } from '../../src/encoder/text-tokenizer.js';
import { ClosedError, ConfigError, InvalidArgumentError } from '../../src/core/errors.js';

/** The package's typings do not resolve under NodeNext (see text-tokenizer.ts); this is the part used here. */
const TokenizerClass = Tokenizer as unknown as new (
  json: object,
  config: object,
) => {
  encode(text: string): { ids: number[]; tokens: string[] };
};
const TINY = TEST_MODEL_PRESETS.tiny;
let root: string;
let modelDir: string;
let onnx: OnnxEncoder;
const hashing = new HashingEncoder();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'encoder-test-'));
  modelDir = join(root, 'tiny');
  await generateTestModel(modelDir, 'tiny');
  onnx = await OnnxEncoder.open({ modelDir, device: 'cpu' });
});
afterAll(async () => {
  await onnx?.close();
  await rm(root, { recursive: true, force: true });
});

const cosine = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const norm = (a: Float32Array): number => Math.sqrt(cosine(a, a));
const maxAbsDiff = (a: Float32Array, b: Float32Array): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
/** `count` words of the test vocabulary, each one token, lower-case, space-separated. */
const words = (count: number, offset = 0): string =>
  Array.from({ length: count }, (_, i) => BASE_WORDS[(i * 7 + offset) % BASE_WORDS.length]).join(' ');

/** Texts of very different lengths, from one word to past the tiny model's 64 tokens. */
const MIXED = [
  'hello',
  'The quick brown fox jumps over the lazy dog.',
  words(3, 1),
  words(40, 2),
  'A question? Yes, and an answer!',
  words(200, 3),
  'x',
  words(12, 4),
];

describe('input checks (every encoder)', () => {
  const encoders = (): [string, Encoder][] => [
    ['hashing', hashing],
    ['onnx', onnx],
  ];
  const cases: [string, unknown, RegExp][] = [
    ['not an array', 'hello', /texts must be a non-empty array of strings/],
    ['an empty list', [], /texts must be a non-empty array of strings/],
    ['a number', ['ok', 42], /texts\[1\] must be a string, got number/],
    ['null', [null], /texts\[0\] must be a string, got null/],
    ['an object', ['a', 'b', { text: 'c' }], /texts\[2\] must be a string, got object/],
    ['an empty text', ['fine', ''], /texts\[1\] is empty or whitespace only/],
    ['a whitespace-only text', [' \n\t '], /texts\[0\] is empty or whitespace only/],
    [
      'a text over the size limit',
      ['ok', 'a'.repeat(LIMITS.textChars + 1)],
      new RegExp(`texts\\[1\\] has ${LIMITS.textChars + 1} characters; the limit is ${LIMITS.textChars}$`),
    ],
    [
      'too many texts',
      Array.from({ length: LIMITS.textsPerCall + 1 }, () => 'a'),
      new RegExp(`${LIMITS.textsPerCall + 1} entries; at most ${LIMITS.textsPerCall} `),
    ],
  ];
  for (const [what, texts, message] of cases) {
    it(`rejects ${what} with InvalidArgumentError`, async () => {
      for (const [name, encoder] of encoders()) {
        const err = await encoder.encode(texts as string[]).catch((e: unknown) => e);
        expect(err, name).toBeInstanceOf(InvalidArgumentError);
        expect((err as Error).message, name).toMatch(message);
      }
    });
  }

  it('accepts a text of exactly the size limit', async () => {
    const text = `${words(2000)} `.repeat(Math.ceil(LIMITS.textChars / 10_000)).slice(0, LIMITS.textChars);
    expect(text).toHaveLength(LIMITS.textChars);
    for (const [, encoder] of encoders()) {
      const [v] = await encoder.encode([text]);
      expect(norm(v)).toBeCloseTo(1, 5);
    }
  });

  it('encodes the most texts one call takes, each as alone', async () => {
    const texts = Array.from({ length: LIMITS.textsPerCall }, (_, i) => `${words(1 + (i % 5), i)} ${i}`);
    const sample = [0, 1, 4_999, 77_777, LIMITS.textsPerCall - 1];
    // The ONNX encoder runs its buckets in a worker thread (the default on CPU).
    expect(onnx.config.device.device).toBe('cpu');
    for (const [name, encoder] of encoders()) {
      // One call (the encoder batches inside); its cost is bench:encode's to measure, not a test's.
      const vs = await encoder.encode(texts);
      expect(vs, name).toHaveLength(texts.length);
      for (const i of sample) {
        const [alone] = await encoder.encode([texts[i]]);
        expect(maxAbsDiff(vs[i], alone), `${name} ${i}`).toBeLessThanOrEqual(1e-6);
      }
    }
  }, 90_000);
});

describe('HashingEncoder', () => {
  it('has a name, a version that encodes its parameters, and the default dimension 384', () => {
    expect(hashing.name).toBe('hashing');
    expect(hashing.dim).toBe(384);
    expect(hashing.version).toBe('hashing-v1-d384-w1-b0.5-c1-n3to5');
    expect(new HashingEncoder({ dim: 64, bigramWeight: 0 }).version).toBe('hashing-v1-d64-w1-b0-c1-n3to5');
  });

  it('gives the same text the same vector, bit for bit, across calls and instances', async () => {
    const [a] = await hashing.encode(['Vector databases keep embeddings close.']);
    const [b] = await hashing.encode(['Vector databases keep embeddings close.']);
    const [c] = await new HashingEncoder().encode(['Vector databases keep embeddings close.']);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it('gives a batch the same vectors as one-by-one calls', async () => {
    const batch = await hashing.encode(MIXED);
    for (let i = 0; i < MIXED.length; i++) expect((await hashing.encode([MIXED[i]]))[0]).toEqual(batch[i]);
  });

  it('returns unit vectors of the configured dimension', async () => {
    const small = new HashingEncoder({ dim: 64 });
    for (const v of [...(await hashing.encode(MIXED)), ...(await small.encode(MIXED))]) {
      expect([384, 64]).toContain(v.length);
      expect(norm(v)).toBeCloseTo(1, 6);
    }
  });

  it('scores similar texts higher than unrelated ones', async () => {
    const triples: [string, string, string][] = [
      ['How do I reset my password?', 'I forgot my password, how can I reset it?', 'The weather in Paris is sunny today.'],
      ['The cat sat on the mat.', 'A cat was sitting on the mat.', 'Stock markets fell sharply on Monday.'],
      [
        'vector similarity search with pgvector',
        'pgvector similarity search over vectors in Postgres',
        'my grandmother bakes apple pie on Sundays',
      ],
      [
        'running shoes for marathon training',
        'the best shoes for running a marathon',
        'quantum computing with superconducting qubits',
      ],
      ['color of the ocean', 'the colour of oceans', 'tax rules for small businesses'],
    ];
    for (const [a, b, unrelated] of triples) {
      const [va, vb, vu] = await hashing.encode([a, b, unrelated]);
      expect(cosine(va, vb), `${a} ~ ${b}`).toBeGreaterThan(cosine(va, vu) + 0.2);
      expect(cosine(va, vb)).toBeGreaterThan(cosine(vb, vu) + 0.2);
    }
  });

  it('normalises case and Unicode compatibility forms (NFKC)', async () => {
    const [a, b, c] = await hashing.encode(['Hello World', 'ＨＥＬＬＯ   world', 'hello, world!']);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it('encodes texts without words through their symbols', async () => {
    const [a, b] = await hashing.encode(['!!!', '😀 🚀']);
    expect(norm(a)).toBeCloseTo(1, 6);
    expect(norm(b)).toBeCloseTo(1, 6);
    expect(cosine(a, b)).toBeLessThan(0.5);
  });

  it('gives the same vector in another process', async () => {
    const text = 'Déjà vu: the same TEXT, encoded twice — in two processes.';
    const [here] = await hashing.encode([text]);
    const module = pathToFileURL(join(import.meta.dirname, '../../src/encoder/hashing-encoder.ts')).href;
    const script =
      `const { HashingEncoder } = await import(${JSON.stringify(module)});` +
      `const [v] = await new HashingEncoder().encode([${JSON.stringify(text)}]);` +
      'process.stdout.write(JSON.stringify(Array.from(v)));';
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    expect(Float32Array.from(JSON.parse(stdout) as number[])).toEqual(here);
  });

  it('rejects bad options', () => {
    expect(() => new HashingEncoder({ dim: 0 })).toThrow(InvalidArgumentError);
    expect(() => new HashingEncoder({ dim: 1.5 })).toThrow(/dim must be an integer/);
    expect(() => new HashingEncoder({ charNgramMin: 4, charNgramMax: 3 })).toThrow(/charNgramMin/);
    expect(() => new HashingEncoder({ charWeight: -1 })).toThrow(/charWeight must be a finite number/);
    expect(() => new HashingEncoder({ wordWeight: 0 })).toThrow(/wordWeight must be > 0/);
  });

  it('closes twice and rejects use after close', async () => {
    const e = new HashingEncoder();
    await e.close();
    await e.close();
    await expect(e.encode(['hello'])).rejects.toBeInstanceOf(ClosedError);
  });
});

/** Runs the model directly (no encoder) and pools in plain code: the reference the encoder must match. */
async function reference(dir: string, text: string, pooling: 'mean' | 'cls', normalize = true): Promise<Float32Array> {
  const tokenizer = new TokenizerClass(
    JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as object,
    JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as object,
  );
  const ids = tokenizer.encode(text).ids;
  const n = ids.length;
  const session = await ort.InferenceSession.create(join(dir, 'model.onnx'));
  try {
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
      token_type_ids: new ort.Tensor('int64', new BigInt64Array(n), [1, n]),
    });
    const hidden = out.last_hidden_state.data as Float32Array;
    const dim = hidden.length / n;
    const v = new Float32Array(dim);
    for (let k = 0; k < dim; k++) {
      if (pooling === 'cls') v[k] = hidden[k];
      else for (let t = 0; t < n; t++) v[k] += hidden[t * dim + k] / n;
    }
    const len = normalize ? norm(v) : 1;
    return v.map((x) => x / len);
  } finally {
    await session.release();
  }
}

describe('OnnxEncoder on the generated test model', () => {
  it('loads the model directory and reports name, version and dim', () => {
    expect(onnx.name).toBe('onnx:tiny');
    expect(onnx.dim).toBe(TINY.hidden);
    expect(onnx.version).toMatch(/^onnx-v1-[0-9a-f]{16}-mean-norm-t64$/);
    expect(onnx.config).toMatchObject({
      pooling: 'mean',
      normalize: true,
      maxLength: TINY.maxLen,
      specialsBefore: 1,
      specialsAfter: 1,
    });
    expect(onnx.config.device.device).toBe('cpu');
  });

  it('writes a real tokenizer.json that the tokenizer library reads', async () => {
    const json = JSON.parse(await readFile(join(modelDir, 'tokenizer.json'), 'utf8')) as object;
    const tokenizer = new TokenizerClass(json, {});
    expect(tokenizer.encode('The WORLD, today!').tokens).toEqual(['[CLS]', 'the', 'world', ',', 'today', '!', '[SEP]']);
    expect(tokenizer.encode('Zebras').tokens).toEqual(['[CLS]', 'z', '##e', '##b', '##r', '##a', '##s', '[SEP]']);
  });

  it('generates the same bytes from the same shape and seed', async () => {
    const again = join(root, 'again');
    await generateTestModel(again, 'tiny');
    for (const f of ['model.onnx', 'tokenizer.json']) {
      expect(Buffer.compare(await readFile(join(again, f)), await readFile(join(modelDir, f)))).toBe(0);
    }
  });

  it('runs the full path: unit vectors of the hidden size, equal to a plain run of the model', async () => {
    const vs = await onnx.encode(MIXED);
    expect(vs).toHaveLength(MIXED.length);
    for (const v of vs) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v.length).toBe(TINY.hidden);
      expect(norm(v)).toBeCloseTo(1, 5);
    }
    for (const i of [0, 1, 4]) expect(maxAbsDiff(vs[i], await reference(modelDir, MIXED[i], 'mean'))).toBeLessThan(1e-6);
    // Different texts, different vectors.
    expect(cosine(vs[0], vs[1])).toBeLessThan(0.9999);
  });

  it('gives the same text the same vector, bit for bit', async () => {
    const [a] = await onnx.encode(['Vector databases keep embeddings close.']);
    const [b] = await onnx.encode(['Vector databases keep embeddings close.']);
    expect(b).toEqual(a);
  });

  it('gives a batch the same vectors as one-by-one calls: padding does not change results', async () => {
    const batch = await onnx.encode(MIXED);
    const reversed = await onnx.encode([...MIXED].reverse());
    for (let i = 0; i < MIXED.length; i++) {
      const [alone] = await onnx.encode([MIXED[i]]);
      expect(maxAbsDiff(batch[i], alone), MIXED[i].slice(0, 40)).toBeLessThanOrEqual(1e-6);
      expect(maxAbsDiff(reversed[MIXED.length - 1 - i], alone)).toBeLessThanOrEqual(1e-6);
    }
  });

  it('runs the model in worker threads or on the calling thread with the same results', async () => {
    const onMain = await OnnxEncoder.open({ modelDir, device: 'cpu', workers: 0 });
    const twoWorkers = await OnnxEncoder.open({ modelDir, device: 'cpu', workers: 2, workerIntraOpThreads: 1 });
    try {
      const texts = Array.from({ length: 40 }, (_, i) => words(1 + ((i * 11) % 50), i));
      const [a, b, c] = await Promise.all([onMain.encode(texts), twoWorkers.encode(texts), onnx.encode(texts)]);
      for (let i = 0; i < texts.length; i++) {
        expect(maxAbsDiff(a[i], b[i])).toBeLessThanOrEqual(1e-6);
        expect(maxAbsDiff(a[i], c[i])).toBeLessThanOrEqual(1e-6);
      }
      expect(onMain.version).toBe(twoWorkers.version);
    } finally {
      await onMain.close();
      await twoWorkers.close();
    }
    await expect(twoWorkers.encode(['x'])).rejects.toBeInstanceOf(ClosedError);
  });

  it('pads buckets that mix short and long texts without changing any vector', async () => {
    // Full buckets of three (a run costs more than any padding) put texts of many lengths together.
    const e = await OnnxEncoder.open({ modelDir, device: 'cpu', maxBatchSize: 3, maxBatchTokens: 256, runOverheadTokens: 1000 });
    try {
      const texts = Array.from({ length: 20 }, (_, i) => words(1 + ((i * 13) % 70), i));
      const batch = await e.encode(texts);
      for (let i = 0; i < texts.length; i++)
        expect(maxAbsDiff(batch[i], (await e.encode([texts[i]]))[0])).toBeLessThanOrEqual(1e-6);
    } finally {
      await e.close();
    }
  });

  it('runs an int8-quantised graph (dynamic activation quantisation) through the same path', async () => {
    const dir = join(root, 'tiny-int8');
    await generateTestModel(dir, { ...TINY, quantized: true });
    const e = await OnnxEncoder.open({ modelDir: dir, device: 'cpu' });
    try {
      const batch = await e.encode(MIXED);
      // Dynamic quantisation takes one activation scale over the whole batch, padding included, so
      // batch-mates move a vector slightly (about 1e-4 here): only float models are batch-exact.
      for (let i = 0; i < MIXED.length; i++) {
        expect(norm(batch[i])).toBeCloseTo(1, 5);
        expect(maxAbsDiff(batch[i], (await e.encode([MIXED[i]]))[0])).toBeLessThanOrEqual(2e-3);
      }
      expect((await e.encode([MIXED[1]]))[0]).toEqual((await e.encode([MIXED[1]]))[0]);
      // Close to the float model: the same weights, rounded to int8.
      expect(cosine(batch[1], (await onnx.encode([MIXED[1]]))[0])).toBeGreaterThan(0.9);
    } finally {
      await e.close();
    }
  });

  it('runs the contrib-op fused graph (Attention, SkipLayerNormalization, BiasGelu) with the same vectors as the plain one', async () => {
    const shape = { layers: 2, hidden: 64, heads: 4, intermediate: 128, maxLen: 64, vocabSize: 0, seed: 7 };
    const plainDir = join(root, 'small-plain');
    const fusedDir = join(root, 'small-fused');
    await generateTestModel(plainDir, shape);
    await generateTestModel(fusedDir, { ...shape, fused: true });
    const ops = readFileSync(join(fusedDir, 'model.onnx'), 'latin1');
    for (const op of ['com.microsoft', 'Attention', 'SkipLayerNormalization', 'BiasGelu']) expect(ops).toContain(op);
    const plain = await OnnxEncoder.open({ modelDir: plainDir, device: 'cpu' });
    const fused = await OnnxEncoder.open({ modelDir: fusedDir, device: 'cpu' });
    try {
      const [p, f] = await Promise.all([plain.encode(MIXED), fused.encode(MIXED)]);
      for (let i = 0; i < MIXED.length; i++) {
        expect(f[i].length).toBe(shape.hidden);
        expect(maxAbsDiff(f[i], p[i]), MIXED[i].slice(0, 40)).toBeLessThanOrEqual(1e-4);
        expect(maxAbsDiff(f[i], (await fused.encode([MIXED[i]]))[0]), MIXED[i].slice(0, 40)).toBeLessThanOrEqual(1e-6);
      }
    } finally {
      await plain.close();
      await fused.close();
    }
  });

  it('truncates a very long text to the model maximum, keeping [SEP]', async () => {
    const kept = TINY.maxLen - 2;
    const long = words(10_000);
    expect(long.length).toBeGreaterThan(40_000);
    const [truncated] = await onnx.encode([long]);
    const [prefix] = await onnx.encode([words(kept)]);
    expect(truncated).toEqual(prefix);
    const [other] = await onnx.encode([words(kept - 1)]);
    expect(other).not.toEqual(prefix);
    // One word longer than WordPiece splits (it becomes [UNK]): no prefix tokenises as it does.
    const [solid] = await onnx.encode(['ab'.repeat(30_000)]);
    expect(solid).toEqual((await onnx.encode(['ab'.repeat(100)]))[0]);
    expect(solid).not.toEqual((await onnx.encode(['ab'.repeat(20)]))[0]);
  });

  it('encodes a text of the size limit as its first maxLength tokens, cut before tokenising or not', async () => {
    const json = JSON.parse(await readFile(join(modelDir, 'tokenizer.json'), 'utf8')) as object;
    const tokenizer = new TokenizerClass(json, {});
    const kept = TINY.maxLen - 1;
    const limit = (unit: string): string => unit.repeat(Math.ceil(LIMITS.textChars / unit.length)).slice(0, LIMITS.textChars);
    // [what, text, whether to check against the tokenizer run on the whole text (≈8 s for CJK)]
    const cases: [string, string, boolean][] = [
      ['words', limit(`${words(1000)} `), true],
      // No whitespace to cut at: words joined by punctuation, and words among CJK ideographs.
      ['punctuated', limit(`${words(1000).replaceAll(' ', '-')}.`), true],
      ['cjk', limit(`向量${words(300).replaceAll(' ', '数据库')}。`), false],
    ];
    // The tokenizer as the encoder drives it, recording the longest string it is handed.
    const full = new FullTokenizer(json, {});
    let longest = 0;
    const watched: TextTokenizer = {
      encode: (t, o) => {
        longest = Math.max(longest, t.length);
        return full.encode(t, o);
      },
      token_to_id: (t) => full.token_to_id(t),
    };
    for (const [what, text, whole] of cases) {
      expect(text).toHaveLength(LIMITS.textChars);
      // Cut before tokenising: never the whole text (≈8 s for a million CJK characters).
      longest = 0;
      const cut = tokenize(watched, text, { maxLength: TINY.maxLen, specialsAfter: 1, typeIds: false });
      expect(longest, what).toBeLessThan(64 * TINY.maxLen);
      expect(cut.ids.slice(0, kept), what).toEqual(tokenizer.encode(text.slice(0, longest)).ids.slice(0, kept));
      const [v] = await onnx.encode([text]);
      // A prefix short enough to be tokenised whole, long enough to be truncated.
      const prefix = text.slice(0, 8 * TINY.maxLen);
      expect(tokenizer.encode(prefix).ids.length, what).toBeGreaterThan(TINY.maxLen);
      if (whole) expect(tokenizer.encode(prefix).ids.slice(0, kept), what).toEqual(tokenizer.encode(text).ids.slice(0, kept));
      expect(v, what).toEqual((await onnx.encode([prefix]))[0]);
      expect(onnx.countTokens([text]), what).toEqual([TINY.maxLen]);
    }
  });

  it('honours a maxLength option', async () => {
    const e = await OnnxEncoder.open({ modelDir, device: 'cpu', maxLength: 8 });
    try {
      expect(e.version).toMatch(/-t8$/);
      expect((await e.encode([words(100)]))[0]).toEqual((await e.encode([words(6)]))[0]);
    } finally {
      await e.close();
    }
  });

  it('pools the CLS token when asked, and can skip normalisation', async () => {
    const cls = await OnnxEncoder.open({ modelDir, device: 'cpu', pooling: 'cls' });
    const raw = await OnnxEncoder.open({ modelDir, device: 'cpu', normalize: false });
    try {
      expect(cls.version).toMatch(/-cls-norm-t64$/);
      expect(raw.version).toMatch(/-mean-raw-t64$/);
      const text = MIXED[1];
      const [c] = await cls.encode([text]);
      const [m] = await onnx.encode([text]);
      expect(maxAbsDiff(c, m)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(c, await reference(modelDir, text, 'cls'))).toBeLessThan(1e-6);
      const [r] = await raw.encode([text]);
      expect(maxAbsDiff(r, await reference(modelDir, text, 'mean', false))).toBeLessThan(1e-6);
      expect(Math.abs(norm(r) - 1)).toBeGreaterThan(1e-3);
    } finally {
      await cls.close();
      await raw.close();
    }
  });

  it('reads the pooling mode from 1_Pooling/config.json and rejects modes it cannot do', async () => {
    const dir = join(root, 'cls-config');
    await cp(modelDir, dir, { recursive: true });
    const poolingPath = join(dir, '1_Pooling', 'config.json');
    await writeFile(poolingPath, JSON.stringify({ pooling_mode_cls_token: true, pooling_mode_mean_tokens: false }));
    const e = await OnnxEncoder.open({ modelDir: dir, device: 'cpu' });
    expect(e.config.pooling).toBe('cls');
    await e.close();
    await writeFile(poolingPath, JSON.stringify({ pooling_mode_max_tokens: true }));
    const err = await OnnxEncoder.open({ modelDir: dir, device: 'cpu' }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/pooling_mode_max_tokens/);
  });

  it('serialises concurrent calls and keeps each call in order', async () => {
    const calls = [MIXED, [...MIXED].reverse(), MIXED.slice(2, 5)];
    const together = await Promise.all(calls.map((c) => onnx.encode(c)));
    for (let i = 0; i < calls.length; i++) {
      const alone = await onnx.encode(calls[i]);
      for (let j = 0; j < alone.length; j++) expect(maxAbsDiff(together[i][j], alone[j])).toBeLessThanOrEqual(1e-6);
    }
  });

  describe('a bad model directory gives a typed error naming the path', () => {
    const broken = async (name: string, change: (dir: string) => Promise<void>): Promise<string> => {
      const dir = join(root, name);
      await cp(modelDir, dir, { recursive: true });
      await change(dir);
      return dir;
    };
    const cases: [string, () => Promise<string>, RegExp][] = [
      [
        'a missing directory',
        () => Promise.resolve(join(tmpdir(), 'no-such-model-dir-for-hypersync')),
        /no-such-model-dir-for-hypersync does not exist/,
      ],
      [
        'no model.onnx',
        () => broken('no-model', (d) => rm(join(d, 'model.onnx'))),
        /no model\.onnx or onnx\/model\.onnx in model directory/,
      ],
      ['no tokenizer.json', () => broken('no-tokenizer', (d) => rm(join(d, 'tokenizer.json'))), /cannot read .*tokenizer\.json/],
      [
        'a corrupt tokenizer.json',
        () => broken('bad-tokenizer', (d) => writeFile(join(d, 'tokenizer.json'), '{"model":')),
        /tokenizer\.json is not a valid JSON object/,
      ],
      [
        'a corrupt model.onnx',
        () => broken('bad-model', (d) => writeFile(join(d, 'model.onnx'), 'not a model')),
        /model\.onnx cannot be loaded by onnxruntime/,
      ],
      [
        'a corrupt config.json',
        () => broken('bad-config', (d) => writeFile(join(d, 'config.json'), '[1, 2]')),
        /config\.json is not a valid JSON object/,
      ],
    ];
    for (const [what, makeDir, message] of cases) {
      it(what, async () => {
        const dir = await makeDir();
        const err = await OnnxEncoder.open({ modelDir: dir, device: 'cpu' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as Error).message).toMatch(message);
        expect((err as ConfigError).details?.path).toContain(dir);
      });
    }

    it('finds onnx/model.onnx as the sentence-transformers repository lays it out', async () => {
      const dir = await broken('onnx-subdir', async (d) => {
        await mkdir(join(d, 'onnx'));
        await cp(join(d, 'model.onnx'), join(d, 'onnx', 'model.onnx'));
        await rm(join(d, 'model.onnx'));
      });
      const e = await OnnxEncoder.open({ modelDir: dir, device: 'cpu' });
      expect(e.config.modelPath).toBe(join(dir, 'onnx', 'model.onnx'));
      expect((await e.encode(['hello']))[0]).toEqual((await onnx.encode(['hello']))[0]);
      await e.close();
    });
  });

  it('rejects bad options with InvalidArgumentError', async () => {
    const bad: [Parameters<typeof OnnxEncoder.open>[0], RegExp][] = [
      [{ modelDir: '' }, /modelDir is required/],
      [{ modelDir, pooling: 'max' as 'mean' }, /pooling must be "mean" or "cls"/],
      [{ modelDir, maxLength: 0 }, /maxLength must be a positive integer/],
      [{ modelDir, maxLength: 2 }, /leaves no room for text/],
      [{ modelDir, maxBatchSize: 1.5 }, /maxBatchSize must be a positive integer/],
      [{ modelDir, runOverheadTokens: -1 }, /runOverheadTokens must be a finite number >= 0/],
    ];
    for (const [opts, message] of bad) {
      const err = await OnnxEncoder.open({ device: 'cpu', ...opts }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('closes twice, lets the call in flight finish, and rejects use after close', async () => {
    const e = await OnnxEncoder.open({ modelDir, device: 'cpu' });
    const inFlight = e.encode(MIXED);
    const closing = e.close();
    expect(e.close()).toBe(closing);
    expect(await inFlight).toHaveLength(MIXED.length);
    await closing;
    await e.close();
    await expect(e.encode(['hello'])).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('planBuckets', () => {
  it('keeps texts of similar length together and gives outliers their own run', () => {
    expect(planBuckets([10, 10, 10, 10], 64, 8192, 32)).toEqual([4]);
    expect(planBuckets([8, 8, 8, 8, 8, 8, 8, 8, 200], 64, 8192, 32)).toEqual([8, 9]);
    expect(planBuckets([5], 64, 8192, 32)).toEqual([1]);
  });

  it('weighs padding against the cost of another run', () => {
    const lengths = [10, 10, 10, 10, 14, 14, 14, 14];
    // 16 padded tokens saved by splitting: worth it when a run costs less than that.
    expect(planBuckets(lengths, 64, 8192, 8)).toEqual([4, 8]);
    expect(planBuckets(lengths, 64, 8192, 32)).toEqual([8]);
  });

  it('respects the batch size and token limits', () => {
    const ends = planBuckets(new Array<number>(100).fill(20), 32, 8192, 32);
    let start = 0;
    for (const end of ends) {
      expect(end - start).toBeLessThanOrEqual(32);
      start = end;
    }
    expect(start).toBe(100);
    expect(planBuckets([100, 100, 100], 64, 200, 32)).toEqual([2, 3]);
  });
});
