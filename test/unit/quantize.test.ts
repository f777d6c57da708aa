import { readFile, rm, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto, { type onnx as OnnxTypes } from 'onnx-proto';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTestModel } from '../../models/generate-test-model.js';
import { loadConfig } from '../../src/config.js';
import { encodersFromConfig } from '../../src/encoder/from-config.js';
import { OnnxEncoder } from '../../src/encoder/onnx-encoder.js';
import { quantizeDynamic, quantizeModelDir, quantizeWeights } from '../../src/encoder/quantize.js';
import { SAMPLE_TEXTS } from '../../src/encoder/sample-texts.js';
import { ConfigError, InvalidArgumentError } from '../../src/core/errors.js';
import { freshSeed, randomVectors, rng } from '../fixtures/random.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT8 = onnx.TensorProto.DataType.INT8;

let root: string;
let modelDir: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'quantize-test-'));
  modelDir = join(root, 'tiny');
  await generateTestModel(modelDir, 'tiny');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const tensorInfo = (name: string, dims: (number | string)[]): OnnxTypes.IValueInfoProto => ({
  name,
  type: {
    tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } },
  },
});

/** A model of `y = x · w` (and, with `second`, `z = y · w` too, sharing the weight). */
function matmulModel(w: Float32Array, k: number, n: number, opts: { opset?: number; second?: boolean } = {}): Uint8Array {
  const nodes: OnnxTypes.INodeProto[] = [{ opType: 'MatMul', input: ['x', 'w'], output: ['y'], name: 'first' }];
  const outputs = [tensorInfo('y', ['m', n])];
  if (opts.second) {
    nodes.push({ opType: 'MatMul', input: ['y', 'w'], output: ['z'], name: 'second' });
    outputs.push(tensorInfo('z', ['m', n]));
  }
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: opts.opset ?? 14 }],
      graph: {
        name: 'matmul',
        node: nodes,
        initializer: [{ name: 'w', dims: [k, n], dataType: FLOAT, rawData: new Uint8Array(w.slice().buffer) }],
        input: [tensorInfo('x', ['m', k])],
        output: outputs,
      },
    }),
  ).finish();
}

/** ONNX round-half-to-even, as DynamicQuantizeLinear rounds. */
const roundEven = (v: number): number => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

describe('quantizeWeights', () => {
  it('keeps every weight within half a step of its float64 value, per column or per tensor, in 8 or 7 bits', () => {
    const seed = freshSeed();
    const random = rng(seed);
    const k = 37;
    const n = 23;
    const w = randomVectors(random, k, n);
    for (let i = 0; i < k; i++) w[i * n + 5] *= 50; // one column far wider than the rest
    for (let i = 0; i < k; i++) w[i * n + 7] = 0; // and one all zero
    for (const perChannel of [true, false]) {
      for (const qmax of [127, 63]) {
        const { q, scales } = quantizeWeights(w, k, n, perChannel, qmax);
        expect(scales.length, `seed ${seed}`).toBe(perChannel ? n : 1);
        for (let j = 0; j < n; j++) {
          const s = scales[perChannel ? j : 0];
          let colMax = 0;
          for (let i = 0; i < k; i++) {
            const exact = w[i * n + j];
            expect(Math.abs(q[i * n + j])).toBeLessThanOrEqual(qmax);
            // Half a step, plus float32 rounding of the scale.
            expect(Math.abs(q[i * n + j] * s - exact), `seed ${seed} w[${i},${j}]`).toBeLessThanOrEqual(
              s / 2 + 1e-6 * Math.abs(exact),
            );
            colMax = Math.max(colMax, Math.abs(q[i * n + j]));
          }
          if (perChannel) expect(colMax, `seed ${seed} column ${j}`).toBe(j === 7 ? 0 : qmax);
        }
        if (perChannel) expect(scales[7]).toBe(1);
      }
    }
  });
});

describe('quantizeDynamic', () => {
  it('computes x · w in int8 as DynamicQuantizeLinear + MatMulInteger specify, against a float64 reference', async () => {
    const seed = freshSeed();
    const random = rng(seed);
    const [m, k, n] = [9, 64, 40];
    const w = randomVectors(random, k, n);
    const x = randomVectors(random, m, k);
    for (let i = 0; i < k; i++) x[i] += 3; // lopsided activations: a non-zero zero point
    const { model, report } = quantizeDynamic(matmulModel(w, k, n));
    expect(report).toMatchObject({ matmuls: 1, quantized: 1, skipped: [], perChannel: true, reduceRange: false });
    expect(report.floatWeightBytes).toBe(k * n * 4);
    expect(report.int8WeightBytes).toBe(k * n + n * 8);

    const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all' });
    try {
      const y = (await session.run({ x: new ort.Tensor('float32', x, [m, k]) })).y.data as Float32Array;
      // The quantised arithmetic, in float64: x to uint8 with a scale over the whole tensor, w to
      // int8 with one scale per column, an exact integer product, scaled back.
      const { q, scales } = quantizeWeights(w, k, n, true, 127);
      let lo = 0;
      let hi = 0;
      for (const v of x) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
      const xs = Math.fround((hi - lo) / 255);
      const xz = Math.min(255, Math.max(0, roundEven(-lo / xs)));
      const xq = Array.from(x, (v) => Math.min(255, Math.max(0, roundEven(v / xs) + xz)));
      let worstSim = 0;
      let worstBound = Infinity;
      for (let r = 0; r < m; r++) {
        for (let c = 0; c < n; c++) {
          let acc = 0;
          let exact = 0;
          let bound = 0;
          for (let i = 0; i < k; i++) {
            acc += (xq[r * k + i] - xz) * q[i * n + c];
            exact += x[r * k + i] * w[i * n + c];
            bound += (Math.abs(x[r * k + i]) * scales[c]) / 2 + (Math.abs(w[i * n + c]) * xs) / 2 + (xs * scales[c]) / 4;
          }
          const sim = acc * xs * scales[c];
          const got = y[r * n + c];
          worstSim = Math.max(worstSim, Math.abs(got - sim) / (Math.abs(sim) + 1));
          // Never further from the float64 product than rounding both operands allows.
          worstBound = Math.min(worstBound, bound * 1.001 - Math.abs(got - exact));
        }
      }
      expect(worstSim, `seed ${seed}`).toBeLessThan(1e-4);
      expect(worstBound, `seed ${seed}`).toBeGreaterThanOrEqual(0);
    } finally {
      await session.release();
    }
  });

  it('rewrites every MatMul with a float weight, leaves activation products and shared weights right', async () => {
    const bytes = await readFile(join(modelDir, 'model.onnx'));
    const { model, report } = quantizeDynamic(bytes);
    // Tiny: 2 layers × (Q, K, V, output, two feed-forward) weights, and 2 × 2 attention products.
    expect(report.matmuls).toBe(16);
    expect(report.quantized).toBe(12);
    expect(report.skipped).toHaveLength(1);
    expect(report.skipped[0].nodes).toHaveLength(4);
    expect(report.skipped[0].reason).toMatch(/not a weight/);
    const decoded = onnx.ModelProto.decode(model);
    const inits = new Map(decoded.graph!.initializer!.map((t) => [t.name!, t]));
    for (const node of decoded.graph!.node!) {
      if (node.opType === 'MatMul') expect(inits.has(node.input![1])).toBe(false);
    }
    const int8 = [...inits.values()].filter((t) => t.dataType === INT8 && t.name!.endsWith('_quantized'));
    expect(int8).toHaveLength(12);
    expect(decoded.graph!.node!.filter((n) => n.opType === 'MatMulInteger')).toHaveLength(12);
    expect(decoded.metadataProps.find((p) => p.key === 'hypersync.quantization')?.value).toMatch(
      /12 MatMul weights, per output column/,
    );
    // The float weights it replaced are gone (the embeddings stay float).
    expect(bytes.length - model.length).toBeGreaterThan(0.8 * (report.floatWeightBytes - report.int8WeightBytes));

    // A weight shared by two MatMuls is quantised once and the two products both use it.
    const w = randomVectors(rng(freshSeed()), 8, 8);
    const shared = onnx.ModelProto.decode(quantizeDynamic(matmulModel(w, 8, 8, { second: true })).model);
    expect(shared.graph!.initializer!.filter((t) => t.dataType === INT8 && t.name!.endsWith('_quantized'))).toHaveLength(1);
    expect(shared.graph!.initializer!.some((t) => t.name === 'w')).toBe(false);
    expect(shared.graph!.node!.filter((n) => n.opType === 'MatMulInteger')).toHaveLength(2);
  });

  it('refuses what it cannot quantise, with the reason', () => {
    expect(() => quantizeDynamic(new TextEncoder().encode('not a model at all'))).toThrow(InvalidArgumentError);
    expect(() => quantizeDynamic(new Uint8Array(0))).toThrow(/not an ONNX model/);
    const w = new Float32Array(16).fill(0.5);
    expect(() => quantizeDynamic(matmulModel(w, 4, 4, { opset: 10 }))).toThrow(/opset is 10; .* needs 11/);
    const once = quantizeDynamic(matmulModel(w, 4, 4)).model;
    expect(() => quantizeDynamic(once)).toThrow(/nothing to quantise: it has no MatMul nodes \(is it already quantised\?\)/);
    // Weights kept in external data files are reported, not misread.
    const external = onnx.ModelProto.decode(matmulModel(w, 4, 4));
    external.graph!.initializer![0].dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    external.graph!.initializer![0].rawData = new Uint8Array(0);
    expect(() => quantizeDynamic(onnx.ModelProto.encode(external).finish())).toThrow(
      /none of its 1 MatMul nodes has a float weight it can read \(its weight cannot be read: its data is stored outside the .onnx file/,
    );
  });
});

describe('quantizeModelDir', () => {
  it('writes model_qint8.onnx that the encoder runs, close to the float model, and refuses to overwrite it', async () => {
    const report = await quantizeModelDir(modelDir);
    expect(report.output).toBe(join(modelDir, 'model_qint8.onnx'));
    expect(report.modelFile).toBe('model_qint8.onnx');
    expect(report.check).toBeDefined();
    const check = report.check!;
    expect(check.texts).toBe(SAMPLE_TEXTS.length);
    expect(check.cosine.min).toBeGreaterThan(0.99);
    expect(check.cosine.median).toBeGreaterThanOrEqual(check.cosine.min);
    expect(check.neighboursKept).toBeGreaterThan(0.7);
    expect(check.neighboursKept).toBeLessThanOrEqual(1);
    expect(check.sentencesPerSec.float).toBeGreaterThan(0);
    expect(check.sentencesPerSec.int8).toBeGreaterThan(0);

    await expect(quantizeModelDir(modelDir)).rejects.toThrow(/already exists \(pass force/);
    const again = await quantizeModelDir(modelDir, { force: true, check: false, perChannel: false });
    expect(again.perChannel).toBe(false);
    expect(again).not.toHaveProperty('check');
    await expect(quantizeModelDir(modelDir, { out: 'model.onnx', force: true })).rejects.toThrow(/would replace the float model/);
    await expect(quantizeModelDir(join(root, 'nowhere'))).rejects.toBeInstanceOf(ConfigError);

    const float = await OnnxEncoder.open({ modelDir, device: 'cpu' });
    const int8 = await OnnxEncoder.open({ modelDir, modelFile: 'model_qint8.onnx', device: 'cpu' });
    try {
      expect(int8.dim).toBe(float.dim);
      // The version names the file's contents, so collections see that the model changed.
      expect(int8.version).not.toBe(float.version);
      const [a] = await float.encode([SAMPLE_TEXTS[0]]);
      const [b] = await int8.encode([SAMPLE_TEXTS[0]]);
      let dot = 0;
      for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
      expect(dot).toBeGreaterThan(0.99);
    } finally {
      await float.close();
      await int8.close();
    }
  });

  it('is what HYPERSYNC_MODEL_FILE loads; the file without the directory is a configuration error', async () => {
    const dir = join(root, 'for-config');
    await generateTestModel(dir, 'tiny');
    await quantizeModelDir(dir, { out: 'onnx/int8.onnx', check: false });
    const encoders = await encodersFromConfig(
      loadConfig({ HYPERSYNC_MODEL_DIR: dir, HYPERSYNC_MODEL_FILE: 'onnx/int8.onnx', HYPERSYNC_DEVICE: 'cpu' }),
    );
    try {
      expect((encoders.encoder as OnnxEncoder).config.modelPath).toBe(join(dir, 'onnx', 'int8.onnx'));
    } finally {
      await encoders.close();
    }
    await expect(encodersFromConfig(loadConfig({ HYPERSYNC_MODEL_FILE: 'model_qint8.onnx' }))).rejects.toThrow(
      /HYPERSYNC_MODEL_FILE is set but HYPERSYNC_MODEL_DIR is not/,
    );
    await expect(
      encodersFromConfig(loadConfig({ HYPERSYNC_MODEL_DIR: dir, HYPERSYNC_MODEL_FILE: 'missing.onnx', HYPERSYNC_DEVICE: 'cpu' })),
    ).rejects.toThrow(/no missing.onnx in model directory/);
    await writeFile(join(dir, 'broken.onnx'), 'garbage');
    await expect(quantizeModelDir(dir, { modelFile: 'broken.onnx' })).rejects.toThrow(/not an ONNX model/);
  });
});
