import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { availableParallelism, endianness } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Mutex } from 'async-mutex';
import ort from 'onnxruntime-node';
import { type DeviceInfo, resolveDevice } from '../../kernels/device.js';
import { NO_SPIN } from '../../kernels/onnx-kernel.js';
import type { DevicePreference } from '../core/device-preference.js';
import { ClosedError, ConfigError, InvalidArgumentError } from '../core/errors.js';
import type { Encoder } from './encoder.js';
import { EncoderWorkerPool } from './encoder-worker-pool.js';
import { checkTexts } from './input.js';

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

/**
 * The part of `@huggingface/tokenizers`' `Tokenizer` used here. The package's bundled typings use
 * extensionless relative imports, which TypeScript's NodeNext resolution cannot follow (the class
 * comes out as `any`), so its shape is stated here.
 */
interface TextTokenizer {
  encode(
    text: string,
    options?: { add_special_tokens?: boolean; return_token_type_ids?: boolean },
  ): { ids: number[]; token_type_ids?: number[] };
  token_to_id(token: string): number | undefined;
}
const TokenizerClass = Tokenizer as unknown as new (tokenizerJson: object, tokenizerConfig: object) => TextTokenizer;

/** One text after tokenisation and truncation. */
interface Tokens {
  ids: number[];
  typeIds: number[] | undefined;
}

/** Little-endian hosts (all that Node ships for) can write int64 inputs through an int32 view. */
const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * One reusable int32 or int64 input buffer (onnxruntime takes the model's own integer type), grown
 * as buckets need and never shrunk. Filled with typed-array `fill`/`set`; int64 token ids are
 * written as low words through an int32 view, with no BigInt per token.
 */
class IntFeed {
  private wide = new BigInt64Array(0);
  private narrow = new Int32Array(0);

  constructor(readonly type: 'int32' | 'int64') {}

  /** Makes room for `n` values, all set to `value` (a non-negative int32). */
  reset(n: number, value: number): void {
    if (this.type === 'int64') {
      if (this.wide.length < n) {
        this.wide = new BigInt64Array(Math.max(n, this.wide.length * 2, 1024));
        this.narrow = new Int32Array(this.wide.buffer);
      }
      this.wide.fill(BigInt(value), 0, n);
    } else {
      if (this.narrow.length < n) this.narrow = new Int32Array(Math.max(n, this.narrow.length * 2, 1024));
      this.narrow.fill(value, 0, n);
    }
  }

  fill(value: number, start: number, end: number): void {
    if (this.type === 'int64') this.wide.fill(BigInt(value), start, end);
    else this.narrow.fill(value, start, end);
  }

  /** Writes non-negative int32 values at `offset`, over values written by `reset`. */
  set(values: readonly number[], offset: number): void {
    if (this.type === 'int32') {
      this.narrow.set(values, offset);
    } else if (LITTLE_ENDIAN) {
      const view = this.narrow;
      for (let j = 0; j < values.length; j++) view[2 * (offset + j)] = values[j];
    } else {
      for (let j = 0; j < values.length; j++) this.wide[offset + j] = BigInt(values[j]);
    }
  }

  /** A copy of the first `n` values' bytes (for a transfer to a worker thread). */
  take(n: number): ArrayBuffer {
    return this.type === 'int64' ? this.wide.slice(0, n).buffer : this.narrow.slice(0, n).buffer;
  }

  tensor(rows: number, cols: number): ort.Tensor {
    const n = rows * cols;
    return this.type === 'int64'
      ? new ort.Tensor('int64', this.wide.subarray(0, n), [rows, cols])
      : new ort.Tensor('int32', this.narrow.subarray(0, n), [rows, cols]);
  }
}

/** Only these inputs are understood; a model that needs any other would be run wrongly. */
const KNOWN_INPUTS = new Set(['input_ids', 'attention_mask', 'token_type_ids']);
/** Output names that sentence-transformer exports use for the token vectors, in preference order. */
const HIDDEN_OUTPUTS = ['last_hidden_state', 'token_embeddings'];
/** Texts longer than this many characters per allowed token are tokenised from a prefix (see `tokenize`). */
const CHARS_PER_TOKEN_BUDGET = 8;

async function readJson(path: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${path} is not a valid JSON object: ${(err as Error).message}`, { cause: err, details: { path } });
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** A positive integer from a JSON config, or undefined (HF writes huge sentinels like 1e30 for "no limit"). */
function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 1_000_000 ? v : undefined;
}

async function sha256Files(paths: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const p of paths) {
    for await (const chunk of createReadStream(p)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

function checkPositiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${String(v)}`);
  }
}

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
  /** Input buffers reused across runs: calls are serialised, so one set suffices. */
  private readonly feeds: { ids: IntFeed; mask: IntFeed; types: IntFeed | undefined };
  private readonly hasTypeIds: boolean;
  private readonly outputName: string;
  /** Runs buckets in worker threads when set (the calling thread's session is then released). */
  private workers: EncoderWorkerPool | undefined;
  private sessionReleased = false;

  private constructor(
    private readonly session: ort.InferenceSession,
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
    const inputs = session.inputNames;
    const unknown = inputs.filter((n) => !KNOWN_INPUTS.has(n));
    if (!inputs.includes('input_ids') || !inputs.includes('attention_mask') || unknown.length > 0) {
      throw new ConfigError(
        `${config.modelPath} has inputs [${inputs.join(', ')}]; expected input_ids, attention_mask and optionally token_type_ids`,
        { details: { path: config.modelPath } },
      );
    }
    this.hasTypeIds = inputs.includes('token_type_ids');
    const typeOf = (name: string): 'int32' | 'int64' => {
      const meta = session.inputMetadata.find((m) => m.name === name);
      return meta?.isTensor && meta.type === 'int32' ? 'int32' : 'int64';
    };
    this.feeds = {
      ids: new IntFeed(typeOf('input_ids')),
      mask: new IntFeed(typeOf('attention_mask')),
      types: this.hasTypeIds ? new IntFeed(typeOf('token_type_ids')) : undefined,
    };
    this.outputName = HIDDEN_OUTPUTS.find((n) => session.outputNames.includes(n)) ?? session.outputNames[0];
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
    const { modelDir, modelPath } = await findModelFile(opts.modelDir, opts.modelFile);
    const tokenizerPath = join(modelDir, 'tokenizer.json');
    const tokenizerJson = await readJson(tokenizerPath, true);
    const tokenizerConfig = (await readJson(join(modelDir, 'tokenizer_config.json'), false)) ?? {};
    const modelConfig = await readJson(join(modelDir, 'config.json'), false);
    const stConfig = await readJson(join(modelDir, 'sentence_bert_config.json'), false);
    const poolingConfig = await readJson(join(modelDir, '1_Pooling', 'config.json'), false);

    let tokenizer: TextTokenizer;
    try {
      tokenizer = new TokenizerClass(tokenizerJson!, tokenizerConfig);
    } catch (err) {
      throw new ConfigError(`${tokenizerPath} cannot be loaded: ${(err as Error).message}`, {
        cause: err,
        details: { path: tokenizerPath },
      });
    }

    const pooling = opts.pooling ?? poolingFromConfig(poolingConfig, join(modelDir, '1_Pooling', 'config.json'));
    const positions = positiveInt(modelConfig?.max_position_embeddings);
    let maxLength =
      opts.maxLength ?? positiveInt(stConfig?.max_seq_length) ?? positiveInt(tokenizerConfig.model_max_length) ?? 512;
    if (positions !== undefined) maxLength = Math.min(maxLength, positions);

    // Where the template puts the text's own tokens among the special ones, e.g. [CLS] $A [SEP].
    const probeText = 'hello';
    const content = tokenizer.encode(probeText, { add_special_tokens: false }).ids;
    const full = tokenizer.encode(probeText).ids;
    let before = full.length;
    for (let p = 0; p + content.length <= full.length; p++) {
      if (content.every((id, j) => full[p + j] === id)) {
        before = p;
        break;
      }
    }
    const after = Math.max(0, full.length - before - content.length);
    if (maxLength <= before + after) {
      throw new InvalidArgumentError(`maxLength ${maxLength} leaves no room for text beside ${before + after} special tokens`);
    }
    const padToken = tokenizerConfig.pad_token;
    const padName = typeof padToken === 'string' ? padToken : (padToken as { content?: unknown } | undefined)?.content;
    const padId = (typeof padName === 'string' ? tokenizer.token_to_id(padName) : undefined) ?? 0;

    const device = typeof opts.device === 'object' ? opts.device : await resolveDevice(opts.device ?? 'auto');
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
    let encoder: OnnxEncoder | undefined;
    try {
      encoder = new OnnxEncoder(
        session,
        tokenizer,
        {
          modelDir,
          modelPath,
          pooling,
          normalize: opts.normalize ?? true,
          maxLength,
          maxBatchSize: opts.maxBatchSize ?? 64,
          maxBatchTokens: Math.max(opts.maxBatchTokens ?? 8192, maxLength),
          runOverheadTokens: opts.runOverheadTokens ?? (device.device === 'cpu' ? 32 : 256),
          padId,
          specialsBefore: before,
          specialsAfter: after,
          device,
        },
        opts.name ?? `onnx:${basename(modelDir)}`,
        digest,
      );
      const workers = opts.workers ?? (device.device === 'cpu' ? 1 : 0);
      if (workers > 0) {
        encoder.workers = new EncoderWorkerPool(workers, {
          modelPath,
          executionProviders: device.executionProviders,
          outputName: encoder.outputName,
          intraOpThreads: opts.workerIntraOpThreads ?? opts.intraOpThreads ?? availableParallelism(),
        });
        encoder.sessionReleased = true;
        await session.release();
      }
      const [v] = await encoder.encode(['warm up']);
      encoder.outputDim = v.length;
    } catch (err) {
      await encoder?.workers?.close();
      if (!encoder?.sessionReleased) await session.release();
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
    this.closing ??= this.mutex.runExclusive(async () => {
      if (this.workers) await this.workers.close();
      if (!this.sessionReleased) await this.session.release();
    });
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Token ids of one text, truncated to `maxLength` with the closing special tokens kept. */
  private tokenize(text: string): Tokens {
    const { maxLength, specialsAfter } = this.config;
    const encodeOpts = { return_token_type_ids: this.hasTypeIds };
    let enc: { ids: number[]; token_type_ids?: number[] } | undefined;
    // A long document is tokenised from a prefix cut at ASCII whitespace (a token boundary for
    // WordPiece, BPE and Unigram alike), grown until it yields more tokens than are kept; the
    // kept tokens are then the same as the whole text's, without tokenising 100k characters.
    for (let budget = maxLength * CHARS_PER_TOKEN_BUDGET; !enc && budget < text.length; budget *= 4) {
      const cut = text.slice(budget).search(/[ \t\n\r]/);
      if (cut < 0) break;
      const prefix = this.tokenizer.encode(text.slice(0, budget + cut), encodeOpts);
      if (prefix.ids.length > maxLength) enc = prefix;
    }
    enc ??= this.tokenizer.encode(text, encodeOpts);
    let ids: number[] = enc.ids;
    let typeIds = this.hasTypeIds ? enc.token_type_ids : undefined;
    if (ids.length > maxLength) {
      const keep = maxLength - specialsAfter;
      ids = ids.slice(0, keep).concat(ids.slice(ids.length - specialsAfter));
      typeIds = typeIds?.slice(0, keep).concat(typeIds.slice(typeIds.length - specialsAfter));
    }
    return { ids, typeIds };
  }

  /** Runs the texts in length buckets and returns their vectors in input order. */
  private async run(tokens: Tokens[]): Promise<Float32Array[]> {
    const { maxBatchSize, maxBatchTokens, runOverheadTokens } = this.config;
    const order = tokens.map((_, i) => i).sort((a, b) => tokens[a].ids.length - tokens[b].ids.length || a - b);
    // With worker threads a call is cut into at least as many buckets as there are threads, so
    // that all of them work on it.
    const perBucket = this.workers ? Math.min(maxBatchSize, Math.ceil(tokens.length / this.workers.size)) : maxBatchSize;
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
    if (this.workers) {
      // Every bucket at once: the pool keeps each worker thread busy.
      await Promise.all(buckets.map(async (bucket) => place(bucket, await this.runBucket(bucket.map((i) => tokens[i])))));
    } else {
      for (const bucket of buckets) place(bucket, await this.runBucket(bucket.map((i) => tokens[i])));
    }
    return out;
  }

  private async runBucket(batch: Tokens[]): Promise<Float32Array[]> {
    const b = batch.length;
    const seq = batch[b - 1].ids.length;
    const { ids, mask, types } = this.feeds;
    ids.reset(b * seq, this.config.padId);
    mask.reset(b * seq, 0);
    types?.reset(b * seq, 0);
    for (let r = 0; r < b; r++) {
      const t = batch[r];
      ids.set(t.ids, r * seq);
      mask.fill(1, r * seq, r * seq + t.ids.length);
      if (types && t.typeIds) types.set(t.typeIds, r * seq);
    }
    if (this.workers) {
      // The shared feeds are copied out before the next bucket fills them.
      const r = await this.workers.run({
        b,
        seq,
        type: ids.type,
        ids: ids.take(b * seq),
        mask: mask.take(b * seq),
        ...(types ? { types: types.take(b * seq) } : {}),
      });
      return this.pool(r.data, r.dims, batch);
    }
    const input: Record<string, ort.Tensor> = { input_ids: ids.tensor(b, seq), attention_mask: mask.tensor(b, seq) };
    if (types) input.token_type_ids = types.tensor(b, seq);
    const result = await this.session.run(input, [this.outputName]);
    const hidden = result[this.outputName];
    if (!hidden || hidden.type !== 'float32') {
      throw new ConfigError(`${this.config.modelPath}: output ${this.outputName} is not a float32 tensor`);
    }
    return this.pool(hidden.data as Float32Array, hidden.dims, batch);
  }

  /** Pools `[b, seq, dim]` token vectors (or passes through `[b, dim]` sentence vectors) and normalises. */
  private pool(data: Float32Array, dims: readonly number[], batch: Tokens[]): Float32Array[] {
    const b = batch.length;
    const dim = dims[dims.length - 1];
    const seq = dims.length === 3 ? dims[1] : 1;
    if ((dims.length !== 3 && dims.length !== 2) || dims[0] !== b || data.length !== b * seq * dim) {
      throw new ConfigError(`${this.config.modelPath}: unexpected output shape [${dims.join(', ')}]`);
    }
    const acc = new Float64Array(dim);
    const out: Float32Array[] = [];
    for (let r = 0; r < b; r++) {
      const base = r * seq * dim;
      const v = new Float32Array(dim);
      if (dims.length === 2 || this.config.pooling === 'cls') {
        v.set(data.subarray(base, base + dim));
      } else {
        // Only the text's own tokens: padding positions never enter the mean.
        const len = batch[r].ids.length;
        acc.fill(0);
        for (let t = 0; t < len; t++) {
          const off = base + t * dim;
          for (let k = 0; k < dim; k++) acc[k] += data[off + k];
        }
        for (let k = 0; k < dim; k++) v[k] = acc[k] / len;
      }
      if (this.config.normalize) {
        let norm = 0;
        for (let k = 0; k < dim; k++) norm += v[k] * v[k];
        // As torch's F.normalize: an all-zero vector stays zero instead of becoming NaN.
        const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
        for (let k = 0; k < dim; k++) v[k] *= scale;
      }
      out.push(v);
    }
    return out;
  }
}

/**
 * Splits texts sorted by ascending token count into buckets (returned as exclusive end indexes),
 * each at most `maxBatchSize` texts and `maxBatchTokens` padded tokens, minimising padded tokens
 * plus `runOverheadTokens` per run (dynamic programming over the split points). Few long texts
 * among many short ones get a bucket of their own instead of padding the short ones.
 */
export function planBuckets(
  sortedLengths: readonly number[],
  maxBatchSize: number,
  maxBatchTokens: number,
  runOverheadTokens: number,
): number[] {
  const n = sortedLengths.length;
  const cost = new Float64Array(n + 1).fill(Infinity);
  const from = new Int32Array(n + 1);
  cost[0] = 0;
  for (let end = 1; end <= n; end++) {
    const longest = sortedLengths[end - 1];
    for (let start = end - 1; start >= 0 && end - start <= maxBatchSize; start--) {
      // A single text always fits: maxBatchTokens is at least the maximum length.
      if (end - start > 1 && (end - start) * longest > maxBatchTokens) break;
      const c = cost[start] + runOverheadTokens + (end - start) * longest;
      if (c < cost[end]) {
        cost[end] = c;
        from[end] = start;
      }
    }
  }
  const ends: number[] = [];
  for (let end = n; end > 0; end = from[end]) ends.push(end);
  return ends.reverse();
}

/**
 * The ONNX file of a model directory: `modelFile` (relative to the directory) when given, else
 * `model.onnx`, else `onnx/model.onnx`. Throws {@link ConfigError} naming the path when the
 * directory or the file is missing.
 */
export async function findModelFile(dir: string, modelFile?: string): Promise<{ modelDir: string; modelPath: string }> {
  const modelDir = resolve(dir);
  const dirStat = await stat(modelDir).catch(() => undefined);
  if (!dirStat?.isDirectory()) {
    throw new ConfigError(`model directory ${modelDir} does not exist or is not a directory`, { details: { path: modelDir } });
  }
  const candidates = modelFile ? [modelFile] : ['model.onnx', join('onnx', 'model.onnx')];
  for (const c of candidates) {
    if (await isFile(resolve(modelDir, c))) return { modelDir, modelPath: resolve(modelDir, c) };
  }
  throw new ConfigError(`no ${candidates.join(' or ')} in model directory ${modelDir}`, {
    details: { path: resolve(modelDir, candidates[0]) },
  });
}

/** Reads sentence-transformers' `1_Pooling/config.json`; mean when absent. */
function poolingFromConfig(cfg: Record<string, unknown> | undefined, path: string): Pooling {
  if (!cfg) return 'mean';
  if (cfg.pooling_mode_mean_tokens === true) return 'mean';
  if (cfg.pooling_mode_cls_token === true) return 'cls';
  const modes = Object.keys(cfg).filter((k) => k.startsWith('pooling_mode_') && cfg[k] === true);
  throw new ConfigError(`${path} asks for pooling ${modes.join(', ') || '(none)'}; supported: mean tokens, CLS token`, {
    details: { path },
  });
}
