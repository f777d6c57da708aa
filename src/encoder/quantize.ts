/**
 * Dynamic int8 quantisation of an ONNX encoder, as onnxruntime's `quantize_dynamic` does it:
 * every `MatMul` whose right-hand side is a float weight becomes
 *
 *   DynamicQuantizeLinear(x) → MatMulInteger(x_u8, w_s8) → Cast(float) → × (x_scale · w_scale)
 *
 * with the weight stored as symmetric int8 (one scale per output column by default) and the
 * activation scale computed at run time over the whole input. onnxruntime fuses the pattern into
 * `DynamicQuantizeMatMul`, which runs on the CPU's integer dot-product instructions (AVX512-VNNI,
 * AVX-VNNI, AVX2, ARM dot product). Everything else (embeddings, LayerNorm, softmax, biases) stays
 * float. On the 2-core build machine this makes a MiniLM-L6-shaped model about 2.5× faster (see
 * `npm run bench:encode`), at the cost of a small error: the bench and `hypersync quantize`
 * report the cosine between the float and int8 vectors of the same texts.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import onnxProto, { type onnx as OnnxTypes } from 'onnx-proto';
import type { DevicePreference } from '../core/device-preference.js';
import { ConfigError, InvalidArgumentError } from '../core/errors.js';
import { findModelFile } from './model-dir.js';
import { OnnxEncoder } from './onnx-encoder.js';
import { SAMPLE_TEXTS } from './sample-texts.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT8 = onnx.TensorProto.DataType.INT8;
const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;
const INT_ATTR = onnx.AttributeProto.AttributeType.INT;
/** DynamicQuantizeLinear needs opset 11 (MatMulInteger 10). */
const MIN_OPSET = 11;

/** Options of {@link quantizeDynamic}. */
export interface QuantizeOptions {
  /** One weight scale per output column (default true), else one per weight matrix. */
  perChannel?: boolean;
  /**
   * Weights in 7 bits (±63) instead of 8 (±127). For CPUs without VNNI (AVX2 only), where
   * onnxruntime's u8×s8 kernel adds pairs of products in int16 and can saturate; not needed on
   * AVX512-VNNI or AVX-VNNI. Default false.
   */
  reduceRange?: boolean;
}

/** What {@link quantizeDynamic} did. */
export interface QuantizeReport {
  /** `MatMul` nodes in the graph. */
  matmuls: number;
  /** Of them, those now computed in int8. */
  quantized: number;
  /** Those left in float, by reason (e.g. both operands are activations, as in attention). */
  skipped: { reason: string; nodes: string[] }[];
  /** Bytes of float weights replaced, and of the int8 weights (with scales) that replaced them. */
  floatWeightBytes: number;
  int8WeightBytes: number;
  perChannel: boolean;
  reduceRange: boolean;
}

/** The float values of an initializer, or why they cannot be read. */
function floatsOf(t: OnnxTypes.ITensorProto): Float32Array | string {
  if (t.dataLocation === EXTERNAL) return 'its data is stored outside the .onnx file (external data is not supported)';
  const n = (t.dims ?? []).reduce<number>((a, b) => a * Number(b), 1);
  if (t.rawData && t.rawData.length > 0) {
    if (t.rawData.length !== n * 4) return `raw data of ${t.rawData.length} bytes does not hold ${n} floats`;
    // A copy: rawData may sit at an offset that a Float32Array view cannot start at.
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(t.rawData);
    return out;
  }
  if (t.floatData && t.floatData.length === n) return Float32Array.from(t.floatData);
  return `it holds no data for its ${n} values`;
}

/** Every name a node of `graph` (or of a graph nested in one of its attributes) reads. */
function namesRead(graph: OnnxTypes.IGraphProto, into: Map<string, number>): void {
  for (const node of graph.node ?? []) {
    for (const name of node.input ?? []) into.set(name, (into.get(name) ?? 0) + 1);
    for (const attr of node.attribute ?? []) {
      if (attr.g) namesRead(attr.g, into);
      for (const g of attr.graphs ?? []) namesRead(g, into);
    }
  }
  for (const out of graph.output ?? []) if (out.name) into.set(out.name, (into.get(out.name) ?? 0) + 1);
}

/** Symmetric int8 weights of a `[k, n]` matrix: values, and one scale per column (or one in all). */
export function quantizeWeights(
  w: Float32Array,
  k: number,
  n: number,
  perChannel: boolean,
  qmax: number,
): { q: Int8Array; scales: Float32Array } {
  const scales = new Float32Array(perChannel ? n : 1);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < n; j++) {
      const a = Math.abs(w[i * n + j]);
      const s = perChannel ? j : 0;
      if (a > scales[s]) scales[s] = a;
    }
  }
  // An all-zero column keeps scale 1, so dequantisation stays finite.
  for (let s = 0; s < scales.length; s++) scales[s] = scales[s] > 0 ? scales[s] / qmax : 1;
  const q = new Int8Array(k * n);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < n; j++) {
      const v = Math.round(w[i * n + j] / scales[perChannel ? j : 0]);
      q[i * n + j] = Math.max(-qmax, Math.min(qmax, v));
    }
  }
  return { q, scales };
}

/**
 * Quantises the model in `bytes` (a serialized ONNX `ModelProto`) and returns the new model with
 * a report. Throws {@link InvalidArgumentError} when the bytes are not an ONNX model, the opset is
 * below 11, or no `MatMul` has a float weight to quantise (for instance an already quantised model).
 */
export function quantizeDynamic(bytes: Uint8Array, opts: QuantizeOptions = {}): { model: Uint8Array; report: QuantizeReport } {
  const perChannel = opts.perChannel ?? true;
  const reduceRange = opts.reduceRange ?? false;
  const qmax = reduceRange ? 63 : 127;
  let model: OnnxTypes.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new InvalidArgumentError(`not an ONNX model: ${(err as Error).message}`, { cause: err });
  }
  const graph = model.graph;
  if (!graph || (graph.node ?? []).length === 0) throw new InvalidArgumentError('not an ONNX model: it has no graph');
  const opset = (model.opsetImport ?? []).find((o) => !o.domain);
  const version = Number(opset?.version ?? 0);
  if (version < MIN_OPSET) {
    throw new InvalidArgumentError(
      `the model's opset is ${version}; dynamic quantisation needs ${MIN_OPSET} or later (re-export it)`,
    );
  }

  const initializers = new Map<string, OnnxTypes.ITensorProto>();
  for (const t of graph.initializer ?? []) if (t.name) initializers.set(t.name, t);
  const graphInputs = new Set((graph.input ?? []).map((i) => i.name ?? ''));
  const taken = new Set<string>(initializers.keys());
  for (const node of graph.node ?? []) for (const name of [...(node.input ?? []), ...(node.output ?? [])]) taken.add(name);
  const fresh = (base: string): string => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };

  const report: QuantizeReport = {
    matmuls: 0,
    quantized: 0,
    skipped: [],
    floatWeightBytes: 0,
    int8WeightBytes: 0,
    perChannel,
    reduceRange,
  };
  /** Quantised weights by float weight name, made once however many MatMuls share them. */
  const made = new Map<string, { q: string; scale: string; zero: string }>();
  const added: OnnxTypes.ITensorProto[] = [];
  const nodes: OnnxTypes.INodeProto[] = [];

  for (const node of graph.node ?? []) {
    if (node.opType !== 'MatMul' || (node.domain ?? '') !== '') {
      nodes.push(node);
      continue;
    }
    report.matmuls++;
    const label = node.name || node.output?.[0] || `MatMul #${report.matmuls}`;
    const [x, wName] = node.input ?? [];
    const w = wName === undefined ? undefined : initializers.get(wName);
    let reason: string | undefined;
    let floats: Float32Array | undefined;
    if (!w) reason = 'its right-hand side is not a weight (an activation, as in attention)';
    else if (w.dataType !== FLOAT) reason = 'its weight is not float32';
    else if ((w.dims ?? []).length !== 2) reason = `its weight has ${(w.dims ?? []).length} dimensions, not 2`;
    else if (graphInputs.has(wName)) reason = 'its weight is also a graph input, which callers may override';
    else {
      const f = floatsOf(w);
      if (typeof f === 'string') reason = `its weight cannot be read: ${f}`;
      else floats = f;
    }
    if (reason !== undefined || !floats || !w || x === undefined) {
      const why = reason ?? 'it has no left-hand input';
      const group = report.skipped.find((g) => g.reason === why);
      if (group) group.nodes.push(label);
      else report.skipped.push({ reason: why, nodes: [label] });
      nodes.push(node);
      continue;
    }

    let qw = made.get(wName);
    if (!qw) {
      const [k, n] = (w.dims ?? []).map(Number);
      const { q, scales } = quantizeWeights(floats, k, n, perChannel, qmax);
      qw = { q: fresh(`${wName}_quantized`), scale: fresh(`${wName}_scale`), zero: fresh(`${wName}_zero_point`) };
      const channelDims = perChannel ? [n] : [];
      added.push(
        { name: qw.q, dims: [k, n], dataType: INT8, rawData: new Uint8Array(q.buffer) },
        { name: qw.scale, dims: channelDims, dataType: FLOAT, rawData: new Uint8Array(scales.buffer) },
        { name: qw.zero, dims: channelDims, dataType: INT8, rawData: new Uint8Array(scales.length) },
      );
      made.set(wName, qw);
      report.floatWeightBytes += floats.byteLength;
      report.int8WeightBytes += q.byteLength + scales.byteLength * 2;
    }
    const out = node.output?.[0] ?? fresh(`${label}_out`);
    const xq = fresh(`${out}_x_quantized`);
    const xScale = fresh(`${out}_x_scale`);
    const xZero = fresh(`${out}_x_zero_point`);
    const product = fresh(`${out}_int32`);
    const productF = fresh(`${out}_float`);
    const scale = fresh(`${out}_scale`);
    const base = node.name || out;
    nodes.push(
      { opType: 'DynamicQuantizeLinear', input: [x], output: [xq, xScale, xZero], name: fresh(`${base}_quant`) },
      { opType: 'MatMulInteger', input: [xq, qw.q, xZero, qw.zero], output: [product], name: fresh(`${base}_matmul_int`) },
      {
        opType: 'Cast',
        input: [product],
        output: [productF],
        attribute: [{ name: 'to', type: INT_ATTR, i: FLOAT }],
        name: fresh(`${base}_cast`),
      },
      { opType: 'Mul', input: [xScale, qw.scale], output: [scale], name: fresh(`${base}_scale_mul`) },
      { opType: 'Mul', input: [productF, scale], output: [out], name: fresh(`${base}_output_mul`) },
    );
    report.quantized++;
  }

  if (report.quantized === 0) {
    const why =
      report.matmuls === 0
        ? 'it has no MatMul nodes'
        : `none of its ${report.matmuls} MatMul nodes has a float weight it can read (${report.skipped.map((g) => g.reason).join('; ')})`;
    throw new InvalidArgumentError(`nothing to quantise: ${why} (is it already quantised?)`, {
      details: { skipped: report.skipped },
    });
  }
  graph.node = nodes;
  // Float weights that nothing reads any more are dropped (one still read elsewhere stays).
  const read = new Map<string, number>();
  namesRead(graph, read);
  graph.initializer = [...(graph.initializer ?? []).filter((t) => !made.has(t.name ?? '') || read.has(t.name ?? '')), ...added];
  model.metadataProps = [
    ...(model.metadataProps ?? []).filter((p) => p.key !== 'hypersync.quantization'),
    {
      key: 'hypersync.quantization',
      value: `dynamic int8: ${report.quantized} MatMul weights, ${perChannel ? 'per output column' : 'per tensor'}, ${reduceRange ? '7' : '8'}-bit`,
    },
  ];
  return { model: onnx.ModelProto.encode(model).finish(), report };
}

/** Options of {@link quantizeModelDir}. */
export interface QuantizeModelDirOptions extends QuantizeOptions {
  /** The float model, relative to the directory (default `model.onnx`, else `onnx/model.onnx`). */
  modelFile?: string;
  /** Where to write, relative to the directory (default `model_qint8.onnx` beside the float model). */
  out?: string;
  /** Replace an existing output file (default false: refuse). */
  force?: boolean;
  /**
   * Encode {@link SAMPLE_TEXTS} (or these texts) with both models and report how close the int8
   * vectors are to the float ones, and how fast each model runs; default true.
   */
  check?: boolean | readonly string[];
  /** Device of the check's encoders (default `cpu`, where int8 pays off). */
  device?: DevicePreference;
}

/** How an int8 model compares with its float original on the same texts. */
export interface QuantizeCheck {
  texts: number;
  /** Cosine between each text's float and int8 vectors. */
  cosine: { min: number; median: number };
  /** Share of each text's 5 nearest neighbours (among the texts) that the int8 vectors keep. */
  neighboursKept: number;
  /** Median of 3 passes over the texts in calls of 32. */
  sentencesPerSec: { float: number; int8: number };
}

/** What {@link quantizeModelDir} wrote and measured. */
export interface QuantizeModelDirReport extends QuantizeReport {
  input: string;
  /** The written file, and the same path relative to the model directory (for HYPERSYNC_MODEL_FILE). */
  output: string;
  modelFile: string;
  check?: QuantizeCheck;
}

/**
 * Quantises the float model of a sentence-transformer directory (see {@link quantizeDynamic}),
 * writes the result beside it (atomically: a temporary file, then a rename) and, unless
 * `check: false`, compares the two models on sample texts. Throws {@link ConfigError} when the
 * directory or model is missing or the output exists (without `force`), and
 * {@link InvalidArgumentError} when the model cannot be quantised.
 */
export async function quantizeModelDir(dir: string, opts: QuantizeModelDirOptions = {}): Promise<QuantizeModelDirReport> {
  const { modelDir, modelPath } = await findModelFile(dir, opts.modelFile);
  const output = resolve(modelDir, opts.out ?? join(relative(modelDir, dirname(modelPath)), 'model_qint8.onnx'));
  if (output === modelPath) throw new ConfigError(`the output ${output} would replace the float model`);
  if (!opts.force && (await stat(output).catch(() => undefined))) {
    throw new ConfigError(`${output} already exists (pass force to replace it)`, { details: { path: output } });
  }
  const { model, report } = quantizeDynamic(await readFile(modelPath), opts);
  const tmp = `${output}.${process.pid}.tmp`;
  await mkdir(dirname(output), { recursive: true });
  try {
    await writeFile(tmp, model);
    await rename(tmp, output);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new ConfigError(`cannot write ${output}: ${(err as Error).message}`, { cause: err, details: { path: output } });
  }
  const modelFile = relative(modelDir, output);
  const result: QuantizeModelDirReport = { ...report, input: modelPath, output, modelFile };
  if (opts.check !== false) {
    const texts = Array.isArray(opts.check) ? (opts.check as readonly string[]) : SAMPLE_TEXTS;
    result.check = await compareEncoders(modelDir, relative(modelDir, modelPath), modelFile, texts, opts.device ?? 'cpu');
  }
  return result;
}

async function compareEncoders(
  modelDir: string,
  floatFile: string,
  int8File: string,
  texts: readonly string[],
  device: DevicePreference,
): Promise<QuantizeCheck> {
  const float = await OnnxEncoder.open({ modelDir, modelFile: floatFile, device });
  try {
    const int8 = await OnnxEncoder.open({ modelDir, modelFile: int8File, device });
    try {
      const pass = async (e: OnnxEncoder): Promise<{ vectors: Float32Array[]; rate: number }> => {
        const rates: number[] = [];
        let vectors: Float32Array[] = [];
        for (let r = 0; r < 3; r++) {
          vectors = [];
          const t = performance.now();
          for (let i = 0; i < texts.length; i += 32) vectors.push(...(await e.encode(texts.slice(i, i + 32))));
          rates.push(texts.length / ((performance.now() - t) / 1000));
        }
        return { vectors, rate: rates.sort((a, b) => a - b)[1] };
      };
      const f = await pass(float);
      const q = await pass(int8);
      const cosines = f.vectors.map((v, i) => cosine(v, q.vectors[i])).sort((a, b) => a - b);
      const k = Math.min(5, texts.length - 1);
      let kept = 0;
      for (let i = 0; i < texts.length; i++) {
        const a = nearest(f.vectors, i, k);
        const b = new Set(nearest(q.vectors, i, k));
        kept += a.filter((j) => b.has(j)).length;
      }
      return {
        texts: texts.length,
        cosine: { min: cosines[0], median: cosines[Math.floor(cosines.length / 2)] },
        neighboursKept: k > 0 ? kept / (k * texts.length) : 1,
        sentencesPerSec: { float: f.rate, int8: q.rate },
      };
    } finally {
      await int8.close();
    }
  } finally {
    await float.close();
  }
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.max(Math.sqrt(na * nb), 1e-30);
}

/** Indexes of the `k` vectors most similar (cosine) to vector `i`, itself excluded. */
export function nearest(vectors: readonly Float32Array[], i: number, k: number): number[] {
  return vectors
    .map((v, j) => ({ j, s: j === i ? -Infinity : cosine(vectors[i], v) }))
    .sort((x, y) => y.s - x.s || x.j - y.j)
    .slice(0, k)
    .map((x) => x.j);
}
