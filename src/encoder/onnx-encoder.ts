import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { Mutex } from 'async-mutex';
import ort from 'onnxruntime-node';
import { type DeviceInfo, resolveDevice } from '../../kernels/device.js';
import { NO_SPIN } from '../../kernels/onnx-kernel.js';
import { ClosedError, ConfigError } from '../core/errors.js';
import { planBuckets } from './bucket-plan.js';
import { BucketRunner } from './bucket-runner.js';
import type { Encoder } from './encoder.js';
import { checkTexts } from './input.js';
import { loadModelDir, sha256Files } from './model-dir.js';
import { checkOnnxEncoderOptions, type OnnxEncoderOptions, type Pooling } from './onnx-encoder-options.js';
import { poolVectors } from './pooling.js';
import { type TextTokenizer, tokenize, type Tokens } from './text-tokenizer.js';

/** Buckets sent to each worker thread before the first comes back (one running, one queued). */
const BUCKETS_IN_FLIGHT_PER_WORKER = 2;

/**
 * An {@link Encoder} for sentence-transformer models exported to ONNX (e.g. all-MiniLM-L6-v2),
 * read from a local directory and run on onnxruntime on the device chosen by `HYPERSYNC_DEVICE`.
 *
 * Texts are tokenised with `@huggingface/tokenizers` from the model's own `tokenizer.json`,
 * truncated to the model's maximum length (keeping the closing special tokens), sorted by length
 * and run in buckets padded only to their longest text (dynamic padding), then pooled (mean over
 * real tokens only, or the CLS token) and L2-normalised. Padding never changes a vector beyond
 * float rounding: padded keys get an additive −large attention bias from the mask, and pooling
 * skips padded positions. (Dynamically quantised int8 models are the exception: their activation
 * scale spans the whole batch, so batch-mates move a vector by about 1e-4.)
 *
 * Calls are serialised on one session (it already uses every core); `close()` waits for the
 * call in flight. onnxruntime-node runs each inference on the calling thread, so every bucket
 * blocks the event loop while it runs (about 0.1 s for 32 MiniLM-sized sentences on 2 cores).
 */
export class OnnxEncoder implements Encoder {
  readonly name: string;
  readonly version: string;
  private outputDim = 0;
  private readonly mutex = new Mutex();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly runner: BucketRunner,
    private readonly tokenizer: TextTokenizer,
    /** The options as resolved from the model directory. */
    readonly config: {
      modelDir: string;
      modelPath: string;
      pooling: Pooling;
      normalize: boolean;
      maxLength: number;
      maxBatchSize: number;
      maxBatchTokens: number;
      runOverheadTokens: number;
      padId: number;
      /** Special tokens the tokenizer adds before and after a text's own tokens. */
      specialsBefore: number;
      specialsAfter: number;
      device: DeviceInfo;
    },
    name: string,
    digest: string,
  ) {
    this.name = name;
    this.version = `onnx-v1-${digest.slice(0, 16)}-${config.pooling}-${config.normalize ? 'norm' : 'raw'}-t${config.maxLength}`;
  }

  /** Width of the model's output, found by the warm-up run in {@link OnnxEncoder.open}. */
  get dim(): number {
    return this.outputDim;
  }

  /**
   * Loads the model directory, resolves the device, creates the inference session and runs one
   * warm-up text (which also fixes `dim`). Throws {@link ConfigError} naming the path when the
   * directory or a file is missing or unusable, {@link InvalidArgumentError} on bad options and
   * `DeviceUnavailableError` when `device: 'cuda'` cannot be had.
   */
  static async open(opts: OnnxEncoderOptions): Promise<OnnxEncoder> {
    checkOnnxEncoderOptions(opts);
    const { modelDir, modelPath, tokenizerPath, tokenizer, pooling, maxLength, padId, specialsBefore, specialsAfter } =
      await loadModelDir(opts);
    const device = typeof opts.device === 'object' ? opts.device : await resolveDevice(opts.device ?? 'auto');
    // The search kernel may run on CUDA (the addon) while onnxruntime's CUDA provider is missing.
    const onCpu = device.executionProviders[0] !== 'cuda';
    const digest = await sha256Files([modelPath, tokenizerPath]);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelPath, {
        executionProviders: device.executionProviders,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: opts.intraOpThreads ?? availableParallelism(),
        logSeverityLevel: 3,
        extra: NO_SPIN,
      });
    } catch (err) {
      throw new ConfigError(`${modelPath} cannot be loaded by onnxruntime: ${(err as Error).message}`, {
        cause: err,
        details: { path: modelPath },
      });
    }
    let runner: BucketRunner | undefined;
    let encoder: OnnxEncoder;
    try {
      runner = new BucketRunner(session, modelPath, padId);
      encoder = new OnnxEncoder(
        runner,
        tokenizer,
        {
          modelDir,
          modelPath,
          pooling,
          normalize: opts.normalize ?? true,
          maxLength,
          maxBatchSize: opts.maxBatchSize ?? 64,
          maxBatchTokens: Math.max(opts.maxBatchTokens ?? 8192, maxLength),
          runOverheadTokens: opts.runOverheadTokens ?? (onCpu ? 32 : 256),
          padId,
          specialsBefore,
          specialsAfter,
          device,
        },
        opts.name ?? `onnx:${basename(modelDir)}`,
        digest,
      );
      const workers = opts.workers ?? (onCpu ? 1 : 0);
      if (workers > 0) {
        await runner.useWorkers(workers, {
          modelPath,
          executionProviders: device.executionProviders,
          intraOpThreads: opts.workerIntraOpThreads ?? opts.intraOpThreads ?? availableParallelism(),
        });
      }
      const [v] = await encoder.encode(['warm up']);
      encoder.outputDim = v.length;
    } catch (err) {
      if (runner) await runner.close();
      else await session.release();
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`${modelPath} failed its warm-up run: ${(err as Error).message}`, {
        cause: err,
        details: { path: modelPath },
      });
    }
    return encoder;
  }

  /** One vector per text, in input order. Rejects with {@link InvalidArgumentError} on bad input. */
  async encode(texts: readonly string[]): Promise<Float32Array[]> {
    if (this.closing) throw new ClosedError('onnx encoder');
    checkTexts(texts);
    // Tokenising before taking the lock lets it overlap another call's inference.
    const tokens = texts.map((t) => this.tokenize(t));
    return this.mutex.runExclusive(() => this.run(tokens));
  }

  /** Tokens each text runs with (special tokens included, after truncation); for diagnostics and benchmarks. */
  countTokens(texts: readonly string[]): number[] {
    checkTexts(texts);
    return texts.map((t) => this.tokenize(t).ids.length);
  }

  /** Releases the session once the call in flight (if any) has finished; safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.mutex.runExclusive(() => this.runner.close());
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private tokenize(text: string): Tokens {
    const { maxLength, specialsAfter } = this.config;
    return tokenize(this.tokenizer, text, { maxLength, specialsAfter, typeIds: this.runner.hasTypeIds });
  }

  /** Runs the texts in length buckets and returns their vectors in input order. */
  private async run(tokens: Tokens[]): Promise<Float32Array[]> {
    const { maxBatchSize, maxBatchTokens, runOverheadTokens } = this.config;
    const workers = this.runner.workerCount;
    const order = tokens.map((_, i) => i).sort((a, b) => tokens[a].ids.length - tokens[b].ids.length || a - b);
    // With worker threads a call is cut into at least as many buckets as there are threads, so
    // that all of them work on it.
    const perBucket = workers > 0 ? Math.min(maxBatchSize, Math.ceil(tokens.length / workers)) : maxBatchSize;
    const ends = planBuckets(
      order.map((i) => tokens[i].ids.length),
      perBucket,
      maxBatchTokens,
      runOverheadTokens,
    );
    const out = new Array<Float32Array>(tokens.length);
    const buckets = ends.map((end, k) => order.slice(k === 0 ? 0 : ends[k - 1], end));
    const place = (bucket: number[], vectors: Float32Array[]): void => {
      for (let j = 0; j < bucket.length; j++) out[bucket[j]] = vectors[j];
    };
    if (workers > 0) {
      // A few buckets in flight per worker thread keep each one busy; the rest wait here, so a
      // call of 100,000 texts never holds every bucket's input and output buffers at once.
      let next = 0;
      let failed = false;
      const lane = async (): Promise<void> => {
        while (!failed && next < buckets.length) {
          const bucket = buckets[next++];
          place(bucket, await this.runBucket(bucket.map((i) => tokens[i])));
        }
      };
      const lanes = Math.min(buckets.length, BUCKETS_IN_FLIGHT_PER_WORKER * workers);
      await Promise.all(Array.from({ length: lanes }, lane)).catch((err: unknown) => {
        failed = true;
        throw err;
      });
    } else {
      for (const bucket of buckets) place(bucket, await this.runBucket(bucket.map((i) => tokens[i])));
    }
    return out;
  }

  /** Runs one bucket and pools its output into one vector per text. */
  private async runBucket(batch: Tokens[]): Promise<Float32Array[]> {
    const { data, dims } = await this.runner.run(batch);
    return poolVectors(
      data,
      dims,
      batch.map((t) => t.ids.length),
      this.config,
    );
  }
}
