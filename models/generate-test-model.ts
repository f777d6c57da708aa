/**
 * Writes a small sentence-transformer-style model directory that the project generates itself, so
 * the onnx encoder's whole loading and inference path runs offline: a real `tokenizer.json` (BERT
 * WordPiece), a real ONNX graph of a BERT-like encoder with seeded random weights,
 * `1_Pooling/config.json`, `config.json` and `tokenizer_config.json`.
 *
 *   tsx models/generate-test-model.ts <dir> [--preset tiny|minilm-l6|minilm-l6-int8|minilm-l6-fused]
 *
 * The weights are random: the vectors carry no meaning. `tiny` is for tests; `minilm-l6` has the
 * shape of all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, intermediate 1536, 30522 tokens,
 * 256 positions), `minilm-l6-int8` the same with int8 weights and `minilm-l6-fused` the same
 * weights as `minilm-l6` in a graph of onnxruntime's com.microsoft contrib ops (`Attention`,
 * `SkipLayerNormalization`, `BiasGelu`), as `onnxruntime.transformers.optimizer` rewrites BERT;
 * they are for throughput measurements only. None is a real model.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto, { type onnx as OnnxTypes } from 'onnx-proto';
import { quantizeDynamic } from '../src/encoder/quantize.js';

const { onnx } = onnxProto;

/** Shape of a generated encoder. */
export interface TestModelShape {
  /** Layers (transformer blocks). */
  layers: number;
  /** Width of the hidden states, and so the dimension of the sentence vectors. */
  hidden: number;
  /** Attention heads; must divide `hidden`. */
  heads: number;
  /** Width of each feed-forward block. */
  intermediate: number;
  /** Position embeddings, and so the most tokens one text keeps (`model_max_length`). */
  maxLen: number;
  /** Vocabulary size to fill up to with generated word pieces; at least the built-in pieces (about 450). */
  vocabSize: number;
  /** Seed of the weights; the same seed writes the same bytes. */
  seed: number;
  /**
   * The float graph passed through `quantizeDynamic` (what `hypersync quantize` writes): int8
   * weights, one scale per output column, activations quantised at run time, as onnxruntime's
   * `quantize_dynamic` writes them (sentence-transformers ships such files as `onnx/model_qint8_*.onnx`).
   */
  quantized?: boolean;
  /**
   * The graph `onnxruntime.transformers.optimizer` makes of BERT: each attention block one
   * com.microsoft `Attention` node (Q, K and V in one [hidden, 3·hidden] weight, the 0/1 mask as
   * int32), residual adds and LayerNorms as `SkipLayerNormalization`, Gelu as `BiasGelu`. The same
   * seed gives the same weights, and so the same function, as the unfused graph. Not with `quantized`.
   */
  fused?: boolean;
}

/**
 * Named shapes: `tiny` for tests; `minilm-l6` (random weights), its int8-quantised form
 * `minilm-l6-int8` and its contrib-op fused form `minilm-l6-fused` for throughput measurements.
 */
export type TestModelPreset = 'tiny' | 'minilm-l6' | 'minilm-l6-int8' | 'minilm-l6-fused';

/** all-MiniLM-L6-v2's shape. */
const MINILM_L6: TestModelShape = {
  layers: 6,
  hidden: 384,
  heads: 12,
  intermediate: 1536,
  maxLen: 256,
  vocabSize: 30522,
  seed: 7,
};

export const TEST_MODEL_PRESETS: Readonly<Record<TestModelPreset, TestModelShape>> = {
  tiny: { layers: 2, hidden: 32, heads: 4, intermediate: 64, maxLen: 64, vocabSize: 0, seed: 7 },
  'minilm-l6': MINILM_L6,
  'minilm-l6-int8': { ...MINILM_L6, quantized: true },
  'minilm-l6-fused': { ...MINILM_L6, fused: true },
};

/** What {@link generateTestModel} wrote. */
export interface GeneratedTestModel {
  dir: string;
  shape: TestModelShape;
  /** Actual vocabulary size (at least `shape.vocabSize`). */
  vocabSize: number;
  /** Paths written, relative to `dir`. */
  files: string[];
}

/**
 * Common English words; every one is a whole token in the generated vocabulary (as in BERT's),
 * and the encoder benchmark builds its sentences from them.
 */
export const BASE_WORDS: readonly string[] = (
  'the of and to in is was for on that with as by at from it he she they we you i his her their our ' +
  'be are were been has have had do does did not no but or if then than so because when where which ' +
  'who what how why all any each every some many much more most few less other such only own same ' +
  'new old good great small large long little high low big early late young important public able ' +
  'first last next right left best better free full real true whole clear strong simple different ' +
  'time year day week month people way man woman child world life hand part place case point group ' +
  'number company system program question work government night home water room mother father area ' +
  'money story fact lot book eye job word business issue side kind head house service friend power ' +
  'hour game line end member law car city community name president team minute idea kid body ' +
  'information back parent face others level office door health person art war history party result ' +
  'change morning reason research girl boy moment air teacher force education food data model vector ' +
  'search query database server network user data file cache memory disk text code test report ' +
  'market price value rate plan project product order problem process price river road street ' +
  'school student class music movie picture paper letter news weather rain sun sky tree garden ' +
  'dog cat bird horse fish animal coffee tea bread table chair window phone computer screen machine ' +
  'say said get got make made go went know knew take took see saw come came think thought look ' +
  'want give use find found tell ask seem feel try leave call keep let begin help show hear play ' +
  'run move live believe bring happen write provide sit stand lose pay meet include continue set ' +
  'learn lead understand watch follow stop create speak read allow add spend grow open walk win ' +
  'offer remember love consider appear buy wait serve die send expect build stay fall cut reach ' +
  'kill remain suggest raise pass sell require decide return explain hope develop carry break ' +
  'very also just now here there still even well back again never always often together already ' +
  'quickly slowly really today tomorrow yesterday soon later about over after before under between ' +
  'through during without within along around across into against among toward upon'
)
  .split(' ')
  .filter((w, i, all) => all.indexOf(w) === i);

const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
const PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
const SUFFIXES = ['s', 'es', 'ed', 'ing', 'ly', 'er', 'est', 'tion', 'ment', 'ness', 'able', 'ful', 'less', 'ity', 'al'];
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** Every string of `n` lower-case letters, in order. */
function letterStrings(n: number): string[] {
  let out = [''];
  for (let i = 0; i < n; i++) out = out.flatMap((p) => [...LETTERS].map((c) => p + c));
  return out;
}

/**
 * The vocabulary, in id order: the special tokens (`[PAD]` = 0, `[UNK]`, `[CLS]`, `[SEP]`,
 * `[MASK]`), punctuation, digits and letters alone and as `##` continuations, {@link BASE_WORDS}
 * and common suffixes. A larger `size` is filled the way BERT's vocabulary behaves: whole numbers
 * 0–2100, two- and three-letter continuations and word starts (the word starts in a seeded order),
 * so a word it does not know splits into a few pieces rather than into single letters.
 */
export function buildTestVocab(size: number): string[] {
  const vocab: string[] = [...SPECIAL_TOKENS];
  const seen = new Set<string>(vocab);
  const add = (t: string): void => {
    if (vocab.length < size && !seen.has(t)) {
      seen.add(t);
      vocab.push(t);
    }
  };
  const base = (t: string): void => {
    if (!seen.has(t)) {
      seen.add(t);
      vocab.push(t);
    }
  };
  const chars = [...PUNCTUATION, ...'0123456789', ...LETTERS];
  for (const c of chars) base(c);
  for (const c of chars) base(`##${c}`);
  for (const w of BASE_WORDS) base(w);
  for (const s of SUFFIXES) base(`##${s}`);
  for (let i = 0; i <= 2100; i++) add(String(i));
  const two = letterStrings(2);
  const three = letterStrings(3);
  for (const p of two) add(`##${p}`);
  for (const p of two) add(p);
  for (const p of three) add(`##${p}`);
  const random = rng(1);
  for (let i = three.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [three[i], three[j]] = [three[j], three[i]];
  }
  for (const p of three) add(p);
  return vocab;
}

/**
 * A `tokenizer.json` as the Rust `tokenizers` library writes it for BERT: BertNormalizer
 * (lowercase), BertPreTokenizer, WordPiece, TemplateProcessing `[CLS] $A [SEP]`.
 */
export function buildTestTokenizerJson(vocab: readonly string[]): Record<string, unknown> {
  const ids = Object.fromEntries(vocab.map((t, i) => [t, i]));
  const special = (t: string): Record<string, unknown> => ({ id: t, ids: [ids[t]], tokens: [t] });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content) => ({
      id: ids[content],
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': special('[CLS]'), '[SEP]': special('[SEP]') },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: ids,
    },
  };
}

/** mulberry32: a small, well-known seeded generator; the same seed gives the same weights everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT32 = onnx.TensorProto.DataType.INT32;
const INT64 = onnx.TensorProto.DataType.INT64;
const INT_ATTR = onnx.AttributeProto.AttributeType.INT;
const FLOAT_ATTR = onnx.AttributeProto.AttributeType.FLOAT;
const INTS_ATTR = onnx.AttributeProto.AttributeType.INTS;
/**
 * The opset PyTorch's exporter uses for BERT in optimum (14): LayerNorm comes out decomposed into
 * ReduceMean/Sub/Pow/Sqrt/Div, which onnxruntime fuses back just as it does for a real export.
 */
const OPSET = 14;
/** onnxruntime's contrib ops (`Attention`, `SkipLayerNormalization`, `BiasGelu`), used by fused graphs. */
const MS_DOMAIN = 'com.microsoft';

/** Builds the graph's nodes and initializers; names are unique by construction. */
class GraphBuilder {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];
  private next = 0;

  constructor(private readonly random: () => number) {}

  op(opType: string, inputs: string[], attrs: OnnxTypes.IAttributeProto[] = [], outputs = 1, domain = ''): string[] {
    const out = Array.from({ length: outputs }, () => `${opType.toLowerCase()}_${this.next++}`);
    // The default domain stays unset, so unfused graphs keep their bytes.
    this.nodes.push({ opType, ...(domain ? { domain } : {}), input: inputs, output: out, attribute: attrs, name: out[0] });
    return out;
  }

  op1(opType: string, inputs: string[], attrs: OnnxTypes.IAttributeProto[] = []): string {
    return this.op(opType, inputs, attrs)[0];
  }

  /** A com.microsoft contrib op with one output. */
  ms1(opType: string, inputs: string[], attrs: OnnxTypes.IAttributeProto[] = []): string {
    return this.op(opType, inputs, attrs, 1, MS_DOMAIN)[0];
  }

  /** Removes the initializer named `name` and returns its float data. */
  takeFloats(name: string): Float32Array {
    const at = this.initializers.findIndex((t) => t.name === name);
    const [tensor] = this.initializers.splice(at, 1);
    const raw = tensor.rawData!;
    return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  }

  floats(name: string, data: Float32Array, dims: number[]): string {
    const rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name, dims, dataType: FLOAT, rawData });
    return name;
  }

  int64s(name: string, values: number[], dims: number[] = [values.length]): string {
    const data = BigInt64Array.from(values.map(BigInt));
    this.initializers.push({ name, dims, dataType: INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  /** Normal(0, std) weights (Box–Muller over the seeded generator). */
  normal(name: string, dims: number[], std: number): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = 1 - this.random();
      const v = this.random();
      const r = Math.sqrt(-2 * Math.log(u)) * std;
      data[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) data[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return this.floats(name, data, dims);
  }

  constant(name: string, value: number, dims: number[] = []): string {
    const n = dims.reduce((a, b) => a * b, 1);
    return this.floats(name, new Float32Array(n).fill(value), dims);
  }
}

const ints = (name: string, values: number[]): OnnxTypes.IAttributeProto => ({ name, type: INTS_ATTR, ints: values });
const int = (name: string, i: number): OnnxTypes.IAttributeProto => ({ name, type: INT_ATTR, i });
const float = (name: string, f: number): OnnxTypes.IAttributeProto => ({ name, type: FLOAT_ATTR, f });

function valueInfo(name: string, elemType: number, dims: (number | string)[]): OnnxTypes.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}

const WEIGHT_STD = 0.02;

/**
 * The transformer blocks as Hugging Face exports BERT: separate Q/K/V projections, the attention
 * mask as an additive −10000 bias, Gelu as its Erf form.
 */
function plainLayers(
  g: GraphBuilder,
  shape: TestModelShape,
  input: string,
  layerNorm: (x: string, prefix: string) => string,
  linear: (x: string, prefix: string, inDim: number, outDim: number) => string,
): string {
  const { hidden: h, heads, intermediate, layers } = shape;
  const headDim = h / heads;
  let x = input;
  // Mask → additive bias [batch, 1, 1, seq]: 0 for tokens, −10000 for padding (exp underflows to 0).
  const maskFloat = g.op1(
    'Cast',
    [g.op1('Unsqueeze', [g.op1('Unsqueeze', ['attention_mask', g.int64s('axes_1', [1])]), g.int64s('axes_2', [2])])],
    [int('to', FLOAT)],
  );
  const inverted = g.op1('Sub', [g.constant('one', 1), maskFloat]);
  const maskBias = g.op1('Mul', [inverted, g.constant('neg_large', -10000)]);
  const headShape = g.int64s('head_shape', [0, 0, heads, headDim]);
  const mergedShape = g.int64s('merged_shape', [0, 0, h]);
  const scale = g.constant('attn_scale', Math.sqrt(headDim));
  const sqrt2 = g.constant('sqrt2', Math.SQRT2);
  const half = g.constant('half', 0.5);

  for (let l = 0; l < layers; l++) {
    const p = `layer.${l}`;
    const split = (name: string, perm: number[]): string =>
      g.op1('Transpose', [g.op1('Reshape', [linear(x, `${p}.attention.${name}`, h, h), headShape])], [ints('perm', perm)]);
    const q = split('query', [0, 2, 1, 3]);
    const k = split('key', [0, 2, 3, 1]);
    const v = split('value', [0, 2, 1, 3]);
    const scores = g.op1('Add', [g.op1('Div', [g.op1('MatMul', [q, k]), scale]), maskBias]);
    const probs = g.op1('Softmax', [scores], [int('axis', -1)]);
    const context = g.op1('Reshape', [
      g.op1('Transpose', [g.op1('MatMul', [probs, v])], [ints('perm', [0, 2, 1, 3])]),
      mergedShape,
    ]);
    const attended = layerNorm(g.op1('Add', [linear(context, `${p}.attention.output`, h, h), x]), `${p}.attention.norm`);
    const up = linear(attended, `${p}.intermediate`, h, intermediate);
    // gelu(x) = 0.5·x·(1 + erf(x/√2)), the form BERT exports and onnxruntime fuses.
    const gelu = g.op1('Mul', [g.op1('Mul', [up, g.op1('Add', [g.op1('Erf', [g.op1('Div', [up, sqrt2])]), 'one'])]), half]);
    const down = linear(gelu, `${p}.output`, intermediate, h);
    x = layerNorm(g.op1('Add', [down, attended]), `${p}.output.norm`);
  }
  return x;
}

/**
 * The same transformer blocks, with the same weights drawn in the same order, as
 * `onnxruntime.transformers.optimizer` rewrites them into com.microsoft contrib ops: `Attention`
 * (Q, K and V as one [hidden, 3·hidden] weight, the raw 0/1 mask as int32 [batch, seq]),
 * `SkipLayerNormalization` (residual add, bias and LayerNorm in one) and `BiasGelu`.
 */
function fusedLayers(g: GraphBuilder, shape: TestModelShape, input: string): string {
  const { hidden: h, heads, intermediate, layers } = shape;
  const maskIndex = g.op1('Cast', ['attention_mask'], [int('to', INT32)]);
  const epsilon = [float('epsilon', 1e-12)];
  let x = input;
  for (let l = 0; l < layers; l++) {
    const p = `layer.${l}`;
    // Draw Q, K and V as the plain graph does, then lay them side by side: row i is [q_i, k_i, v_i].
    const [q, k, v] = ['query', 'key', 'value'].map((name) =>
      g.takeFloats(g.normal(`${p}.attention.${name}.weight`, [h, h], WEIGHT_STD)),
    );
    const qkv = new Float32Array(h * 3 * h);
    for (let i = 0; i < h; i++) {
      qkv.set(q.subarray(i * h, (i + 1) * h), i * 3 * h);
      qkv.set(k.subarray(i * h, (i + 1) * h), i * 3 * h + h);
      qkv.set(v.subarray(i * h, (i + 1) * h), i * 3 * h + 2 * h);
    }
    const context = g.ms1(
      'Attention',
      [x, g.floats(`${p}.attention.qkv.weight`, qkv, [h, 3 * h]), g.constant(`${p}.attention.qkv.bias`, 0, [3 * h]), maskIndex],
      [int('num_heads', heads)],
    );
    const projected = g.op1('MatMul', [context, g.normal(`${p}.attention.output.weight`, [h, h], WEIGHT_STD)]);
    const attended = g.ms1(
      'SkipLayerNormalization',
      [
        projected,
        x,
        g.constant(`${p}.attention.norm.gamma`, 1, [h]),
        g.constant(`${p}.attention.norm.beta`, 0, [h]),
        g.constant(`${p}.attention.output.bias`, 0, [h]),
      ],
      epsilon,
    );
    const up = g.op1('MatMul', [attended, g.normal(`${p}.intermediate.weight`, [h, intermediate], WEIGHT_STD)]);
    const gelu = g.ms1('BiasGelu', [up, g.constant(`${p}.intermediate.bias`, 0, [intermediate])]);
    const down = g.op1('MatMul', [gelu, g.normal(`${p}.output.weight`, [intermediate, h], WEIGHT_STD)]);
    x = g.ms1(
      'SkipLayerNormalization',
      [
        down,
        attended,
        g.constant(`${p}.output.norm.gamma`, 1, [h]),
        g.constant(`${p}.output.norm.beta`, 0, [h]),
        g.constant(`${p}.output.bias`, 0, [h]),
      ],
      epsilon,
    );
  }
  return x;
}

/**
 * The ONNX graph of a BERT-like encoder, written the way Hugging Face exports BERT (separate
 * Q/K/V projections, the attention mask as an additive −10000 bias, Gelu as its Erf form), so
 * onnxruntime's graph optimiser treats it as it treats a real export.
 *
 * Inputs `input_ids`, `attention_mask`, `token_type_ids` (int64 `[batch, seq]`); output
 * `last_hidden_state` (float `[batch, seq, hidden]`).
 */
export function buildTestEncoderGraph(shape: TestModelShape, vocabSize: number): Uint8Array {
  const { hidden: h, heads, maxLen } = shape;
  if (h % heads !== 0) throw new RangeError(`heads (${heads}) must divide hidden (${h})`);
  if (shape.fused && shape.quantized) throw new RangeError('a fused graph cannot also be quantized');
  const g = new GraphBuilder(rng(shape.seed));
  const std = 0.02;

  const epsilon = g.constant('layer_norm_eps', 1e-12);
  const two = g.constant('two', 2);
  // LayerNorm as PyTorch exports it at opset 14.
  const layerNorm = (x: string, prefix: string): string => {
    const mean = g.op1('ReduceMean', [x], [ints('axes', [-1])]);
    const centred = g.op1('Sub', [x, mean]);
    const variance = g.op1('ReduceMean', [g.op1('Pow', [centred, two])], [ints('axes', [-1])]);
    const normed = g.op1('Div', [centred, g.op1('Sqrt', [g.op1('Add', [variance, epsilon])])]);
    return g.op1('Add', [g.op1('Mul', [normed, g.constant(`${prefix}.gamma`, 1, [h])]), g.constant(`${prefix}.beta`, 0, [h])]);
  };
  const matmul = (x: string, name: string, inDim: number, outDim: number): string =>
    g.op1('MatMul', [x, g.normal(name, [inDim, outDim], std)]);
  const linear = (x: string, prefix: string, inDim: number, outDim: number): string =>
    g.op1('Add', [matmul(x, `${prefix}.weight`, inDim, outDim), g.constant(`${prefix}.bias`, 0, [outDim])]);

  // Embeddings: token + position (0..seq−1) + token type, then LayerNorm. Positions come from a
  // constant position_ids row sliced to the sequence length, as BERT's export has them.
  const words = g.op1('Gather', [g.normal('embeddings.word', [vocabSize, h], std), 'input_ids']);
  const seqLen = g.op1('Unsqueeze', [
    g.op1('Gather', [g.op1('Shape', ['input_ids']), g.int64s('one_index', [1], [])], [int('axis', 0)]),
    g.int64s('axes0', [0]),
  ]);
  const positionIds = g.op1('Slice', [
    g.int64s(
      'position_ids',
      Array.from({ length: maxLen }, (_, i) => i),
      [1, maxLen],
    ),
    g.int64s('zero1', [0]),
    seqLen,
    g.int64s('axes1', [1]),
  ]);
  const positions = g.op1('Gather', [g.normal('embeddings.position', [maxLen, h], std), positionIds]);
  const types = g.op1('Gather', [g.normal('embeddings.token_type', [2, h], std), 'token_type_ids']);
  let x = layerNorm(g.op1('Add', [g.op1('Add', [words, types]), positions]), 'embeddings.norm');

  if (shape.fused) x = fusedLayers(g, shape, x);
  else x = plainLayers(g, shape, x, layerNorm, linear);
  g.nodes.push({ opType: 'Identity', input: [x], output: ['last_hidden_state'], name: 'last_hidden_state' });

  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: shape.fused
      ? [
          { domain: '', version: OPSET },
          { domain: MS_DOMAIN, version: 1 },
        ]
      : [{ domain: '', version: OPSET }],
    producerName: 'hypersync generate-test-model (random weights)',
    graph: {
      name: 'test_bert_encoder',
      node: g.nodes,
      initializer: g.initializers,
      input: [
        valueInfo('input_ids', INT64, ['batch', 'sequence']),
        valueInfo('attention_mask', INT64, ['batch', 'sequence']),
        valueInfo('token_type_ids', INT64, ['batch', 'sequence']),
      ],
      output: [valueInfo('last_hidden_state', FLOAT, ['batch', 'sequence', h])],
    },
  });
  const bytes = onnx.ModelProto.encode(model).finish();
  // The float graph's own weights, quantised as `hypersync quantize` does it.
  return shape.quantized ? quantizeDynamic(bytes).model : bytes;
}

/**
 * Writes a complete model directory (see the file comment) into `dir` and returns what it wrote.
 * The same shape and seed always write the same bytes.
 */
export async function generateTestModel(
  dir: string,
  shape: TestModelPreset | TestModelShape = 'tiny',
): Promise<GeneratedTestModel> {
  const s = typeof shape === 'string' ? TEST_MODEL_PRESETS[shape] : shape;
  const vocab = buildTestVocab(s.vocabSize);
  const tokenizerJson = buildTestTokenizerJson(vocab);
  await mkdir(join(dir, '1_Pooling'), { recursive: true });
  const files: [string, string | Uint8Array][] = [
    ['tokenizer.json', JSON.stringify(tokenizerJson)],
    [
      'tokenizer_config.json',
      JSON.stringify(
        {
          tokenizer_class: 'BertTokenizer',
          do_lower_case: true,
          model_max_length: s.maxLen,
          cls_token: '[CLS]',
          sep_token: '[SEP]',
          pad_token: '[PAD]',
          unk_token: '[UNK]',
          mask_token: '[MASK]',
        },
        null,
        2,
      ),
    ],
    [
      'config.json',
      JSON.stringify(
        {
          _comment: 'generated by models/generate-test-model.ts: random weights, not a trained model',
          model_type: 'bert',
          architectures: ['BertModel'],
          hidden_size: s.hidden,
          num_hidden_layers: s.layers,
          num_attention_heads: s.heads,
          intermediate_size: s.intermediate,
          max_position_embeddings: s.maxLen,
          vocab_size: vocab.length,
          type_vocab_size: 2,
          hidden_act: 'gelu',
          layer_norm_eps: 1e-12,
          pad_token_id: 0,
        },
        null,
        2,
      ),
    ],
    [
      join('1_Pooling', 'config.json'),
      JSON.stringify(
        {
          word_embedding_dimension: s.hidden,
          pooling_mode_cls_token: false,
          pooling_mode_mean_tokens: true,
          pooling_mode_max_tokens: false,
          pooling_mode_mean_sqrt_len_tokens: false,
        },
        null,
        2,
      ),
    ],
    ['model.onnx', buildTestEncoderGraph(s, vocab.length)],
  ];
  for (const [name, data] of files) await writeFile(join(dir, name), data);
  return { dir, shape: s, vocabSize: vocab.length, files: files.map(([name]) => name) };
}

async function main(argv: string[]): Promise<void> {
  const dir = argv[0];
  const at = argv.indexOf('--preset');
  const preset = at >= 0 ? argv[at + 1] : 'tiny';
  if (!dir || dir.startsWith('--') || !(preset in TEST_MODEL_PRESETS)) {
    console.error('usage: tsx models/generate-test-model.ts <dir> [--preset tiny|minilm-l6|minilm-l6-int8|minilm-l6-fused]');
    process.exitCode = 2;
    return;
  }
  const out = await generateTestModel(dir, preset as TestModelPreset);
  const { layers, hidden, heads, intermediate, maxLen } = out.shape;
  console.log(
    `wrote ${out.files.join(', ')} to ${dir}: ${layers} layers, hidden ${hidden}, ${heads} heads, ` +
      `intermediate ${intermediate}, max ${maxLen} tokens, vocabulary ${out.vocabSize} (random weights, not a trained model)`,
  );
}

if (process.argv[1] === import.meta.filename) await main(process.argv.slice(2));
