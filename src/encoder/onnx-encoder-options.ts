import type { DeviceInfo } from '../../kernels/device.js';
import type { DevicePreference } from '../core/device-preference.js';
import { InvalidArgumentError } from '../core/errors.js';

/** How token vectors become one sentence vector. */
export type Pooling = 'mean' | 'cls';

/** Options of {@link OnnxEncoder.open}. */
export interface OnnxEncoderOptions {
  /**
   * Local directory of a sentence-transformer export: `model.onnx` (or `onnx/model.onnx`),
   * `tokenizer.json`, and optionally `tokenizer_config.json`, `config.json`,
   * `sentence_bert_config.json` and `1_Pooling/config.json`. Nothing is ever downloaded.
   */
  modelDir: string;
  /**
   * The ONNX file, relative to `modelDir` (e.g. `model_qint8.onnx` written by `hypersync quantize`,
   * or `onnx/model_qint8_avx512_vnni.onnx`); default `model.onnx`, else `onnx/model.onnx`.
   */
  modelFile?: string;
  /** `HYPERSYNC_DEVICE`, or a device already resolved (shared with the search kernels); default `auto`. */
  device?: DevicePreference | DeviceInfo;
  /** Default: from `1_Pooling/config.json` (mean or CLS token), else `mean`. */
  pooling?: Pooling;
  /** L2-normalise each vector (sentence-transformers' `Normalize` module); default true. */
  normalize?: boolean;
  /**
   * Most tokens kept per text, special tokens included; longer texts are truncated. Default:
   * `max_seq_length` of `sentence_bert_config.json`, else `model_max_length` of
   * `tokenizer_config.json`, else 512; never more than `max_position_embeddings` of `config.json`.
   */
  maxLength?: number;
  /** Most texts in one inference run; default 64. */
  maxBatchSize?: number;
  /** Most tokens (texts × padded length) in one inference run, which bounds its memory; default 8192. */
  maxBatchTokens?: number;
  /**
   * What one more inference run costs, in padded tokens, when texts are split into length buckets:
   * small matrix products use the cores poorly. Default 32 on CPU (measured on the 2-core build
   * machine with a MiniLM-L6-shaped model: a lone 24-token text takes as long as about 40 tokens
   * inside a large batch); 256 on CUDA, where each run's launch costs more (an estimate).
   */
  runOverheadTokens?: number;
  /** Threads of onnxruntime's intra-op pool; default: the machine's available parallelism. */
  intraOpThreads?: number;
  /**
   * Worker threads that run the model, each with a session of its own (default 1 on CPU, 0 on
   * CUDA). onnxruntime-node runs inference on the calling thread, so with 0 every bucket blocks
   * the event loop for its whole run (≈0.1 s for 32 sentences of MiniLM-L6 on 2 cores). Measured
   * on 2 cores: one worker with 2 intra-op threads matches the calling thread's throughput; two
   * single-threaded workers were 5–10% slower on real batch sizes.
   */
  workers?: number;
  /** Intra-op threads of each worker's session (default: `intraOpThreads`, or the core count). */
  workerIntraOpThreads?: number;
  /** `name` of the encoder; default `onnx:<basename of modelDir>`. */
  name?: string;
}

/** Throws {@link InvalidArgumentError} on the first option out of range. */
export function checkOnnxEncoderOptions(opts: OnnxEncoderOptions): void {
  if (typeof opts.modelDir !== 'string' || opts.modelDir.length === 0) {
    throw new InvalidArgumentError('modelDir is required (a local directory holding model.onnx and tokenizer.json)');
  }
  checkPositiveInt('maxLength', opts.maxLength);
  checkPositiveInt('maxBatchSize', opts.maxBatchSize);
  checkPositiveInt('maxBatchTokens', opts.maxBatchTokens);
  checkPositiveInt('intraOpThreads', opts.intraOpThreads);
  checkPositiveInt('workerIntraOpThreads', opts.workerIntraOpThreads);
  if (opts.workers !== undefined && !(Number.isInteger(opts.workers) && opts.workers >= 0)) {
    throw new InvalidArgumentError(`workers must be a non-negative integer, got ${String(opts.workers)}`);
  }
  if (opts.runOverheadTokens !== undefined && !(Number.isFinite(opts.runOverheadTokens) && opts.runOverheadTokens >= 0)) {
    throw new InvalidArgumentError(`runOverheadTokens must be a finite number >= 0, got ${String(opts.runOverheadTokens)}`);
  }
  if (opts.pooling !== undefined && opts.pooling !== 'mean' && opts.pooling !== 'cls') {
    throw new InvalidArgumentError(`pooling must be "mean" or "cls", got ${JSON.stringify(opts.pooling)}`);
  }
}

function checkPositiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${String(v)}`);
  }
}
