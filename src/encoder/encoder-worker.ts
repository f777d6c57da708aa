/**
 * A worker thread that runs an encoder's ONNX model in a session of its own: onnxruntime-node runs
 * inference on the calling thread, so the model runs here, beside the event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { NO_SPIN } from '../../kernels/onnx-kernel.js';

/** What the worker is started with. */
export interface EncoderWorkerData {
  modelPath: string;
  executionProviders: ort.InferenceSession.SessionOptions['executionProviders'];
  outputName: string;
  intraOpThreads: number;
}

/** One bucket to run: `b × seq` token ids, attention mask and (optionally) token type ids. */
export interface EncoderWorkerRequest {
  id: number;
  b: number;
  seq: number;
  type: 'int32' | 'int64';
  ids: ArrayBuffer;
  mask: ArrayBuffer;
  types?: ArrayBuffer;
}

export type EncoderWorkerReply =
  { id: number; ok: true; data: Float32Array; dims: number[] } | { id: number; ok: false; message: string };

const data = workerData as EncoderWorkerData;
const port = parentPort;
if (!port) throw new Error('encoder-worker runs as a worker thread');

const session = ort.InferenceSession.create(data.modelPath, {
  executionProviders: data.executionProviders,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  intraOpNumThreads: data.intraOpThreads,
  logSeverityLevel: 3,
  extra: NO_SPIN,
});
session.catch(() => undefined);

function tensor(type: 'int32' | 'int64', buf: ArrayBuffer, b: number, seq: number): ort.Tensor {
  return type === 'int64'
    ? new ort.Tensor('int64', new BigInt64Array(buf), [b, seq])
    : new ort.Tensor('int32', new Int32Array(buf), [b, seq]);
}

port.on('message', (req: EncoderWorkerRequest) => {
  void (async () => {
    let reply: EncoderWorkerReply;
    const transfer: ArrayBuffer[] = [];
    try {
      const s = await session;
      const input: Record<string, ort.Tensor> = {
        input_ids: tensor(req.type, req.ids, req.b, req.seq),
        attention_mask: tensor(req.type, req.mask, req.b, req.seq),
      };
      if (req.types) input.token_type_ids = tensor(req.type, req.types, req.b, req.seq);
      const out = (await s.run(input, [data.outputName]))[data.outputName];
      if (!out || out.type !== 'float32') throw new Error(`output ${data.outputName} is not a float32 tensor`);
      // A copy the worker owns outright, handed over without another copy.
      const floats = (out.data as Float32Array).slice();
      transfer.push(floats.buffer);
      reply = { id: req.id, ok: true, data: floats, dims: [...out.dims] };
    } catch (err) {
      reply = { id: req.id, ok: false, message: (err as Error).message };
    }
    port.postMessage(reply, transfer);
  })();
});
