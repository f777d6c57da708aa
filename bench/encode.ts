/**
 * Encoder throughput: sentences per second at batch 1, 32 and 128 for the hashing encoder, the
 * generated tiny test model, a generated model with the shape of all-MiniLM-L6-v2 (random
 * weights: the same work per token as the real model, no meaning), that model passed through
 * `hypersync quantize` (int8 weights, as in sentence-transformers' `onnx/model_qint8_*.onnx`
 * files), the same float weights as the com.microsoft contrib-op graph that
 * `onnxruntime.transformers.optimizer` makes of BERT (`Attention`, `SkipLayerNormalization`,
 * `BiasGelu`) and, when HYPERSYNC_MODEL_DIR is set, the real model there (and its int8 copy
 * when HYPERSYNC_MODEL_FILE names one).
 *
 * Two more measurements put the MiniLM figures in context:
 * - fidelity: how close the int8 model's vectors are to the float model's on the same sentences
 *   (cosine, and how many of each sentence's 10 nearest neighbours it keeps);
 * - the float32 ceiling: the same run times onnxruntime's float MatMul alone on the model's
 *   matrix shapes; a float model cannot encode faster than its MatMuls take, whatever the graph.
 *
 *   npm run bench:encode
 *   BENCH_RUNS=9 HYPERSYNC_MODEL_DIR=./models/all-MiniLM-L6-v2 npm run bench:encode
 *
 * Sentences are 8–30 English-like words (common words, some rarer words that split into word
 * pieces, numbers and punctuation), generated from a fixed seed. Each run encodes about a second's
 * worth of them in calls of the given batch size; the table shows the median of the runs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The generator's seeded PRNG (mulberry32): the same sentences on every machine.
import { BASE_WORDS, generateTestModel, rng, TEST_MODEL_PRESETS } from '../models/generate-test-model.js';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import { NO_SPIN } from '../kernels/onnx-kernel.js';
import { loadConfig } from '../src/config.js';
import type { Encoder } from '../src/encoder/encoder.js';
import { HashingEncoder } from '../src/encoder/hashing-encoder.js';
import { OnnxEncoder } from '../src/encoder/onnx-encoder.js';
import { nearest } from '../src/encoder/quantize.js';
import { machine, median, printTable, writeResult } from './lib/stats.js';

const BATCHES = [1, 32, 128];
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 5));
const SENTENCES = 1000;
/** Seconds each run aims to last, so fast and slow encoders get comparable statistics. */
const RUN_SECONDS = 1;
const TARGET = { batch: 32, sentencesPerSec: 300 };
const FLOAT_MODEL = 'minilm-l6-shaped';
const INT8_MODEL = 'minilm-l6-int8-shaped';
/** Sentences whose neighbours the fidelity check compares, among all SENTENCES. */
const FIDELITY_QUERIES = 200;

/** Less common words (names, technical terms) that a WordPiece vocabulary splits into several pieces. */
const RARE_WORDS =
  'hypersync postgres kubernetes embedding tokenizer latency throughput amsterdam nairobi kyoto rosalind ' +
  'photosynthesis archaeology bureaucracy cinnamon velociraptor saxophone quarantine labyrinth mozzarella ' +
  'thermodynamics choreography skateboard whistleblower microservices';

/** `count` sentences of 8–30 words: mostly common words (Zipf-like), some rare words, numbers, commas. */
function makeSentences(count: number, seed = 42): string[] {
  const random = rng(seed);
  const rare = RARE_WORDS.split(' ');
  const out: string[] = [];
  for (let s = 0; s < count; s++) {
    const n = 8 + Math.floor(random() * 23);
    const words: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = random();
      let w: string;
      if (r < 0.05) w = rare[Math.floor(random() * rare.length)];
      else if (r < 0.08) w = String(Math.floor(random() * 2000));
      // Squaring skews towards the front of the list, where the commonest words are.
      else w = BASE_WORDS[Math.floor(random() ** 2 * BASE_WORDS.length)];
      if (i > 2 && i < n - 2 && random() < 0.08) w += ',';
      words.push(w);
    }
    words[0] = words[0][0].toUpperCase() + words[0].slice(1);
    out.push(`${words.join(' ')}${random() < 0.15 ? '?' : '.'}`);
  }
  return out;
}

interface Row {
  encoder: string;
  batch: number;
  sentencesPerSec: number;
  msPerCall: number;
  sentencesPerRun: number;
  runs: number[];
}

async function measure(name: string, encoder: Encoder, sentences: string[]): Promise<Row[]> {
  const rows: Row[] = [];
  let cursor = 0;
  const next = (b: number): string[] => {
    if (cursor + b > sentences.length) cursor = 0;
    return sentences.slice(cursor, (cursor += b));
  };
  for (const batch of BATCHES) {
    // Warm-up, then size each run to about RUN_SECONDS from the warm-up's speed.
    let t = performance.now();
    await encoder.encode(next(batch));
    await encoder.encode(next(batch));
    const perSentenceMs = (performance.now() - t) / (2 * batch);
    const calls = Math.max(
      1,
      Math.min(Math.ceil(sentences.length / batch), Math.round((RUN_SECONDS * 1000) / (perSentenceMs * batch))),
    );
    const runs: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      t = performance.now();
      for (let c = 0; c < calls; c++) await encoder.encode(next(batch));
      runs.push((calls * batch) / ((performance.now() - t) / 1000));
    }
    const sentencesPerSec = median(runs);
    rows.push({
      encoder: name,
      batch,
      sentencesPerSec,
      msPerCall: (batch / sentencesPerSec) * 1000,
      sentencesPerRun: calls * batch,
      runs,
    });
    console.error(`${name} B=${batch}: ${sentencesPerSec.toFixed(1)} sentences/s`);
  }
  return rows;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const sentences = makeSentences(SENTENCES);
  const avgWords = sentences.reduce((s, x) => s + x.split(' ').length, 0) / sentences.length;
  const scratch = await mkdtemp(join(tmpdir(), 'bench-encode-'));
  const encoders: { name: string; encoder: Encoder; note: string; tokens?: number }[] = [];
  try {
    encoders.push({ name: 'hashing', encoder: new HashingEncoder(), note: 'feature hashing, d=384' });
    for (const [name, preset, note] of [
      ['tiny-generated', 'tiny', 'random weights'],
      [FLOAT_MODEL, 'minilm-l6', 'random weights'],
      [INT8_MODEL, 'minilm-l6-int8', 'random weights, float32 model through hypersync quantize'],
      [
        'minilm-l6-fused-shaped',
        'minilm-l6-fused',
        'random weights, contrib-op fused graph (what onnxruntime.transformers.optimizer produces)',
      ],
    ] as const) {
      const dir = join(scratch, preset);
      const t = performance.now();
      await generateTestModel(dir, preset);
      const encoder = await OnnxEncoder.open({ modelDir: dir, device: config.device });
      console.error(`${name}: generated and opened in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      encoders.push({ name, encoder, note: `generated ${preset}, ${note}`, tokens: avgTokens(encoder, sentences) });
    }
    if (config.modelDir) {
      // The directory's float model, and the file HYPERSYNC_MODEL_FILE names (e.g. its int8 copy).
      for (const modelFile of config.modelFile ? [undefined, config.modelFile] : [undefined]) {
        const encoder = await OnnxEncoder.open({ modelDir: config.modelDir, modelFile, device: config.device });
        encoders.push({
          name: `${encoder.name}${modelFile ? `/${modelFile}` : ''}`,
          encoder,
          note: `HYPERSYNC_MODEL_DIR=${config.modelDir}${modelFile ? ` HYPERSYNC_MODEL_FILE=${modelFile}` : ''}`,
          tokens: avgTokens(encoder, sentences),
        });
      }
    }
    const device = (encoders[1].encoder as OnnxEncoder).config.device;
    console.log(
      `device: ${device.device} (${device.reason}); ${SENTENCES} sentences, ${avgWords.toFixed(1)} words on average; ` +
        `median of ${RUNS} runs of about ${RUN_SECONDS} s`,
    );
    if (!config.modelDir) console.log('HYPERSYNC_MODEL_DIR is not set: no real model measured (see models/README.md)');

    const rows: Row[] = [];
    for (const { name, encoder } of encoders) rows.push(...(await measure(name, encoder, sentences)));

    console.log();
    printTable(
      ['encoder', 'dim', 'tokens/sentence', 'batch', 'sentences/s', 'tokens/s', 'ms/call'],
      rows.map((r) => {
        const e = encoders.find((x) => x.name === r.encoder)!;
        return [
          r.encoder,
          e.encoder.dim,
          e.tokens?.toFixed(1) ?? '-',
          r.batch,
          r.sentencesPerSec.toFixed(1),
          e.tokens === undefined ? '-' : (r.sentencesPerSec * e.tokens).toFixed(0),
          r.msPerCall.toFixed(2),
        ];
      }),
    );

    const byName = (name: string): (typeof encoders)[number] => encoders.find((e) => e.name === name)!;
    const fidelity = await compare(byName(FLOAT_MODEL).encoder, byName(INT8_MODEL).encoder, sentences);
    console.log(
      `\nint8 vs float32 (${INT8_MODEL} vs ${FLOAT_MODEL}, same weights, ${SENTENCES} sentences): cosine min ` +
        `${fidelity.cosine.min.toFixed(5)}, median ${fidelity.cosine.median.toFixed(5)}; ` +
        `${(fidelity.neighboursKept * 100).toFixed(1)}% of ${FIDELITY_QUERIES} sentences' 10 nearest neighbours kept`,
    );

    const floatTokens = byName(FLOAT_MODEL).tokens!;
    const ceiling = await floatCeiling(TEST_MODEL_PRESETS['minilm-l6'], floatTokens);
    const bare = await bareGraphGflops(
      join(scratch, 'minilm-l6', 'model.onnx'),
      ceiling.flopsPerToken,
      TARGET.batch,
      Math.round(floatTokens),
    );
    const at = (name: string): number | undefined =>
      rows.find((r) => r.encoder === name && r.batch === TARGET.batch)?.sentencesPerSec;
    const float = at(FLOAT_MODEL);
    const int8 = at(INT8_MODEL);
    console.log(
      `float32 ceiling on this CPU: the model's MatMuls alone run at up to ${ceiling.gflops.toFixed(0)} GFLOP/s in onnxruntime; ` +
        `at ${(ceiling.flopsPerToken / 1e6).toFixed(1)} MFLOP per token and ${floatTokens.toFixed(1)} tokens per sentence ` +
        `no float32 graph of this model passes ${ceiling.sentencesPerSec.toFixed(0)} sentences/s ` +
        `(measured: ${float?.toFixed(1) ?? '?'}, ${float === undefined ? '?' : ((float / ceiling.sentencesPerSec) * 100).toFixed(0)}% of it)`,
    );
    const encoderGflops = ((float ?? 0) * floatTokens * ceiling.flopsPerToken) / 1e9;
    console.log(
      `where the rest goes: the whole float graph on one unpadded batch of ${TARGET.batch} × ${Math.round(floatTokens)} tokens ` +
        `does ${bare.toFixed(0)} GFLOP/s of MatMul work (${((bare / ceiling.gflops) * 100).toFixed(0)}% of MatMuls alone: ` +
        `the other ops take the rest); the encoder does ${encoderGflops.toFixed(0)} ` +
        `(${((encoderGflops / bare) * 100).toFixed(0)}% of the bare graph: padding, smaller runs, tokenising, pooling)`,
    );
    const met = int8 !== undefined && int8 >= TARGET.sentencesPerSec;
    console.log(
      `MiniLM-L6 shape at batch ${TARGET.batch}: float32 ${float?.toFixed(1) ?? '?'} sentences/s, ` +
        `int8 ${int8?.toFixed(1) ?? '?'} sentences/s; target for a MiniLM-class model >= ${TARGET.sentencesPerSec}: ` +
        `${met ? 'met by the int8 model' : 'NOT met'}${float !== undefined && float >= TARGET.sentencesPerSec ? ' (and by float32)' : ''}`,
    );
    const path = await writeResult('encode', {
      machine: machine(),
      device,
      runs: RUNS,
      sentences: { count: SENTENCES, avgWords },
      encoders: encoders.map((e) => ({
        name: e.name,
        version: e.encoder.version,
        dim: e.encoder.dim,
        note: e.note,
        tokensPerSentence: e.tokens,
      })),
      results: rows,
      fidelity: { float: FLOAT_MODEL, int8: INT8_MODEL, queries: FIDELITY_QUERIES, k: 10, ...fidelity },
      floatCeiling: { ...ceiling, bareGraphGflops: bare, encoderGflops },
      target: { ...TARGET, float32: float, int8, met },
    });
    console.log(`wrote ${path}`);
  } finally {
    for (const { encoder } of encoders) await encoder.close?.();
    await rm(scratch, { recursive: true, force: true });
  }
}

/** How close `b`'s vectors are to `a`'s: cosines, and the share of 10 nearest neighbours kept. */
async function compare(
  a: Encoder,
  b: Encoder,
  sentences: string[],
): Promise<{ cosine: { min: number; median: number }; neighboursKept: number }> {
  const encodeAll = async (e: Encoder): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    for (let i = 0; i < sentences.length; i += 32) out.push(...(await e.encode(sentences.slice(i, i + 32))));
    return out;
  };
  const va = await encodeAll(a);
  const vb = await encodeAll(b);
  const cosines = va.map((v, i) => v.reduce((s, x, k) => s + x * vb[i][k], 0)).sort((x, y) => x - y);
  let kept = 0;
  for (let q = 0; q < FIDELITY_QUERIES; q++) {
    const want = nearest(va, q, 10);
    const got = new Set(nearest(vb, q, 10));
    kept += want.filter((j) => got.has(j)).length;
  }
  return { cosine: { min: cosines[0], median: median(cosines) }, neighboursKept: kept / (10 * FIDELITY_QUERIES) };
}

/**
 * The fastest a float32 graph of a BERT-shaped model could run here: the model's weight MatMuls
 * alone (per layer Q, K, V, output, and both feed-forward halves, chained, with every other op
 * left out) run by onnxruntime for several token counts; the best rate over them bounds what
 * any graph of the model can reach, since its MatMuls are nearly all of its arithmetic and
 * everything else (attention, LayerNorm, Gelu) only adds time.
 */
async function floatCeiling(
  shape: { layers: number; hidden: number; intermediate: number },
  tokensPerSentence: number,
): Promise<{ gflops: number; flopsPerToken: number; sentencesPerSec: number; byTokens: Record<string, number> }> {
  const { onnx } = onnxProto;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const { hidden: h, intermediate: i, layers } = shape;
  const random = rng(1);
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const initializer: onnxProto.onnx.ITensorProto[] = [];
  let x = 'x';
  let flopsPerToken = 0;
  for (let l = 0; l < layers; l++) {
    for (const [name, k, n] of [
      ['q', h, h],
      ['k', h, h],
      ['v', h, h],
      ['o', h, h],
      ['up', h, i],
      ['down', i, h],
    ] as const) {
      // Unit-scale values throughout (std 1/sqrt(k)): no overflow, no denormals.
      const w = Float32Array.from({ length: k * n }, () => ((random() - 0.5) * Math.sqrt(12)) / Math.sqrt(k));
      const wName = `${name}${l}.w`;
      initializer.push({ name: wName, dims: [k, n], dataType: FLOAT, rawData: new Uint8Array(w.buffer) });
      const out = `${name}${l}`;
      nodes.push({ opType: 'MatMul', input: [x, wName], output: [out], name: out });
      x = out;
      flopsPerToken += 2 * k * n;
    }
  }
  const info = (name: string): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'tokens' }, { dimValue: h }] } } },
  });
  const model = onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 14 }],
      graph: { name: 'matmuls', node: nodes, initializer, input: [info('x')], output: [info(x)] },
    }),
  ).finish();
  // As the encoder's session: every core, no spinning.
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', extra: NO_SPIN });
  const byTokens: Record<string, number> = {};
  try {
    for (const tokens of [64, 128, 256, 512, 1024]) {
      const feed = {
        x: new ort.Tensor(
          'float32',
          Float32Array.from({ length: tokens * h }, () => random() - 0.5),
          [tokens, h],
        ),
      };
      for (let r = 0; r < 3; r++) await session.run(feed);
      const reps = Math.max(3, Math.round(4e9 / (flopsPerToken * tokens)));
      const runs: number[] = [];
      for (let r = 0; r < 5; r++) {
        const t = performance.now();
        for (let j = 0; j < reps; j++) await session.run(feed);
        runs.push((flopsPerToken * tokens * reps) / ((performance.now() - t) / 1000) / 1e9);
      }
      byTokens[tokens] = median(runs);
    }
  } finally {
    await session.release();
  }
  const gflops = Math.max(...Object.values(byTokens));
  return { gflops, flopsPerToken, sentencesPerSec: (gflops * 1e9) / (flopsPerToken * tokensPerSentence), byTokens };
}

/**
 * The float model's own graph on one full batch with no padding (`batch` texts of `seq` tokens
 * each, every position real), run by onnxruntime directly: the model's MatMul GFLOP/s with all of
 * its other ops included and none of the encoder's work (tokenising, bucketing, pooling).
 */
async function bareGraphGflops(modelPath: string, flopsPerToken: number, batch: number, seq: number): Promise<number> {
  const session = await ort.InferenceSession.create(modelPath, {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    extra: NO_SPIN,
  });
  try {
    const n = batch * seq;
    const ids = new BigInt64Array(n);
    for (let j = 0; j < n; j++) ids[j] = BigInt(1000 + (j % 5000));
    const feed = {
      input_ids: new ort.Tensor('int64', ids, [batch, seq]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [batch, seq]),
      token_type_ids: new ort.Tensor('int64', new BigInt64Array(n), [batch, seq]),
    };
    for (let r = 0; r < 3; r++) await session.run(feed);
    const runs: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      for (let j = 0; j < 5; j++) await session.run(feed);
      runs.push((flopsPerToken * n * 5) / ((performance.now() - t) / 1000) / 1e9);
    }
    return median(runs);
  } finally {
    await session.release();
  }
}

function avgTokens(encoder: OnnxEncoder, sentences: string[]): number {
  const counts = encoder.countTokens(sentences);
  return counts.reduce((a, b) => a + b, 0) / counts.length;
}

await main();
