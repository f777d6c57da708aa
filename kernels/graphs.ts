import onnxProto, { type onnx as OnnxTypes } from 'onnx-proto';
import type { Metric } from '../src/core/metric.js';

const { onnx } = onnxProto;
type Dim = number | string;

/** ONNX opset the graphs are written against (Gemm-13, TopK-11, GatherElements-13). */
export const OPSET = 13;
const IR_VERSION = 8;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const INT = onnx.AttributeProto.AttributeType.INT;
const FLOAT_ATTR = onnx.AttributeProto.AttributeType.FLOAT;

function valueInfo(name: string, elemType: number, dims: Dim[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function intAttr(name: string, i: number): OnnxTypes.IAttributeProto {
  return { name, type: INT, i };
}

function node(
  opType: string,
  input: string[],
  output: string[],
  attribute: OnnxTypes.IAttributeProto[] = [],
): OnnxTypes.INodeProto {
  return { opType, input, output, attribute, name: output[0] ?? opType };
}

function floatInitializer(name: string, data: Float32Array, dims: number[]): OnnxTypes.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** An ONNX model plus the in-memory buffers its external initializers point at. */
export interface ModelWithData {
  model: Uint8Array;
  /** Handed to onnxruntime as `externalData`: the tensor bytes are not copied into the protobuf. */
  externalData: { path: string; data: Uint8Array }[];
}

/**
 * An initializer whose bytes stay in the caller's buffer: the model names an external file and
 * onnxruntime reads it from memory (`externalData`), so the (large) segment is never copied into
 * the protobuf encoding.
 */
function externalFloatInitializer(
  name: string,
  data: Float32Array,
  dims: number[],
): { tensor: OnnxTypes.ITensorProto; file: { path: string; data: Uint8Array } } {
  const path = `${name}.bin`;
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return {
    tensor: {
      name,
      dims,
      dataType: FLOAT,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: path },
        { key: 'offset', value: '0' },
        { key: 'length', value: String(bytes.byteLength) },
      ],
    },
    file: { path, data: bytes },
  };
}

function encodeModel(graph: OnnxTypes.IGraphProto): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'hypersync',
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Gemm's `alpha`: L2 ranks by `2·q·x − ‖x‖²`, the others by `q·x`. */
export function gemmAlpha(metric: Metric): number {
  return metric === 'l2' ? 2 : 1;
}

/**
 * The graph of a sealed segment. The segment's vectors are an initializer, so they are loaded
 * into device memory once (pre-packed for the Gemm on CPU) and only queries travel per call.
 *
 * Inputs: `queries [B, dim]`, `k [1]`, `mask [rows]` (0 for rows that may be returned,
 * −Infinity for tombstones and rows a filter excludes).
 *
 * `scores = Gemm(queries, vectors^T, C)` with `C = mask` (plus `−‖x‖²` for L2, a constant of the
 * segment): the mask is the Gemm's bias, added as the scores are written rather than in another
 * pass over the `B × rows` scores, so masking costs nothing whatever share of the rows it masks;
 * then `TopK(k)`. A masked row never surfaces with a finite score.
 */
export function buildSealedGraph(vectors: Float32Array, rows: number, dim: number, metric: Metric): ModelWithData {
  const segment = externalFloatInitializer('vectors', vectors.subarray(0, rows * dim), [rows, dim]);
  const initializer: OnnxTypes.ITensorProto[] = [segment.tensor];
  const nodes: OnnxTypes.INodeProto[] = [];
  let bias = 'mask';
  if (metric === 'l2') {
    initializer.push(floatInitializer('norms', negSquaredNorms(vectors, rows, dim), [rows]));
    nodes.push(node('Add', ['norms', 'mask'], ['bias']));
    bias = 'bias';
  }
  const model = encodeModel({
    name: 'hypersync_sealed_segment',
    node: [
      ...nodes,
      node(
        'Gemm',
        ['queries', 'vectors', bias],
        ['scores'],
        [intAttr('transB', 1), { name: 'alpha', type: FLOAT_ATTR, f: gemmAlpha(metric) }],
      ),
      node('TopK', ['scores', 'k'], ['top_scores', 'top_rows'], [intAttr('axis', 1)]),
    ],
    initializer,
    input: [valueInfo('queries', FLOAT, ['B', dim]), valueInfo('k', INT64, [1]), valueInfo('mask', FLOAT, [rows])],
    output: [valueInfo('top_scores', FLOAT, ['B', 'K']), valueInfo('top_rows', INT64, ['B', 'K'])],
  });
  return { model, externalData: [segment.file] };
}

/**
 * The graph of the growing segment: its vectors travel as an input (they change between calls),
 * together with a bias row that holds `−‖x‖²` for L2 and −Infinity for tombstones.
 * Inputs: `queries [B, dim]`, `vectors [N, dim]`, `bias [N]`, `k [1]`.
 */
export function buildDynamicGraph(dim: number, alpha: number): Uint8Array {
  return encodeModel({
    name: 'hypersync_growing_segment',
    node: [
      node(
        'Gemm',
        ['queries', 'vectors', 'bias'],
        ['scores'],
        [intAttr('transB', 1), { name: 'alpha', type: FLOAT_ATTR, f: alpha }],
      ),
      node('TopK', ['scores', 'k'], ['top_scores', 'top_rows'], [intAttr('axis', 1)]),
    ],
    input: [
      valueInfo('queries', FLOAT, ['B', dim]),
      valueInfo('vectors', FLOAT, ['N', dim]),
      valueInfo('bias', FLOAT, ['N']),
      valueInfo('k', INT64, [1]),
    ],
    output: [valueInfo('top_scores', FLOAT, ['B', 'K']), valueInfo('top_rows', INT64, ['B', 'K'])],
  });
}

/**
 * The baseline of the benchmarks: one plain Gemm + TopK over vectors held as an initializer,
 * with nothing of the HVS around it (no mask, no segments, no merge).
 */
export function buildRawGemmTopKGraph(vectors: Float32Array, rows: number, dim: number): ModelWithData {
  const segment = externalFloatInitializer('vectors', vectors.subarray(0, rows * dim), [rows, dim]);
  const model = encodeModel({
    name: 'raw_gemm_topk',
    node: [
      node('Gemm', ['queries', 'vectors'], ['scores'], [intAttr('transB', 1)]),
      node('TopK', ['scores', 'k'], ['top_scores', 'top_rows'], [intAttr('axis', 1)]),
    ],
    initializer: [segment.tensor],
    input: [valueInfo('queries', FLOAT, ['B', dim]), valueInfo('k', INT64, [1])],
    output: [valueInfo('top_scores', FLOAT, ['B', 'K']), valueInfo('top_rows', INT64, ['B', 'K'])],
  });
  return { model, externalData: [segment.file] };
}

/** `−‖x‖²` per row, the L2 bias folded into the Gemm. */
export function negSquaredNorms(vectors: Float32Array, rows: number, dim: number): Float32Array {
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * dim;
    for (let j = 0; j < dim; j++) {
      const v = vectors[base + j];
      s += v * v;
    }
    out[r] = -s;
  }
  return out;
}
