/**
 * Encoder throughput: sentences per second at batch 1, 32 and 128 for the hashing encoder, the
 * generated tiny test model, a generated model with the shape of all-MiniLM-L6-v2 (random
 * weights: the same work per token as the real model, no meaning), the same with int8 weights
 * (as in sentence-transformers' `onnx/model_qint8_*.onnx` files), the same float weights as the
 * com.microsoft contrib-op graph that `onnxruntime.transformers.optimizer` makes of BERT
 * (`Attention`, `SkipLayerNormalization`, `BiasGelu`) and, when HYPERSYNC_MODEL_DIR is set, the
 * real model there.
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
import { BASE_WORDS, generateTestModel, rng } from '../models/generate-test-model.js';
import { loadConfig } from '../src/config.js';
import type { Encoder } from '../src/encoder/encoder.js';
import { HashingEncoder } from '../src/encoder/hashing-encoder.js';
import { OnnxEncoder } from '../src/encoder/onnx-encoder.js';
import { machine, median, printTable, writeResult } from './lib/stats.js';

const BATCHES = [1, 32, 128];
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 5));
const SENTENCES = 1000;
/** Seconds each run aims to last, so fast and slow encoders get comparable statistics. */
const RUN_SECONDS = 1;
const TARGET = { encoder: 'minilm-l6-shaped', batch: 32, sentencesPerSec: 300 };

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
      ['minilm-l6-shaped', 'minilm-l6', 'random weights'],
      ['minilm-l6-int8-shaped', 'minilm-l6-int8', 'random weights'],
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
      const encoder = await OnnxEncoder.open({ modelDir: config.modelDir, device: config.device });
      encoders.push({
        name: encoder.name,
        encoder,
        note: `HYPERSYNC_MODEL_DIR=${config.modelDir}`,
        tokens: avgTokens(encoder, sentences),
      });
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
    const target = rows.find((r) => r.encoder === TARGET.encoder && r.batch === TARGET.batch);
    const met = target !== undefined && target.sentencesPerSec >= TARGET.sentencesPerSec;
    console.log(
      `\n${TARGET.encoder} at batch ${TARGET.batch}: ${target?.sentencesPerSec.toFixed(1) ?? '?'} sentences/s ` +
        `(target for a MiniLM-class model: >= ${TARGET.sentencesPerSec}) ${met ? 'met' : 'NOT met'}`,
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
      target: { ...TARGET, measured: target?.sentencesPerSec, met },
    });
    console.log(`wrote ${path}`);
  } finally {
    for (const { encoder } of encoders) await encoder.close?.();
    await rm(scratch, { recursive: true, force: true });
  }
}

function avgTokens(encoder: OnnxEncoder, sentences: string[]): number {
  const counts = encoder.countTokens(sentences);
  return counts.reduce((a, b) => a + b, 0) / counts.length;
}

await main();
