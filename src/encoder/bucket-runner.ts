import type ort from 'onnxruntime-node';
import { ConfigError } from '../core/errors.js';
import type { EncoderWorkerData } from './encoder-worker.js';
import { EncoderWorkerPool } from './encoder-worker-pool.js';
import { IntFeed } from './int-feed.js';
import type { Tokens } from './text-tokenizer.js';

/** Only these inputs are understood; a model that needs any other would be run wrongly. */
const KNOWN_INPUTS = new Set(['input_ids', 'attention_mask', 'token_type_ids']);
/** Output names that sentence-transformer exports use for the token vectors, in preference order. */
const HIDDEN_OUTPUTS = ['last_hidden_state', 'token_embeddings'];

/**
 * Runs one padded bucket of tokenised texts through the model, on the calling thread's session
 * or, after {@link useWorkers}, on worker threads that hold sessions of their own; returns the
 * model's raw output (token vectors, or sentence vectors) for pooling.
 */
export class BucketRunner {
  /** Input buffers reused across runs: a bucket is copied out of them before the next fills them. */
  private readonly feeds: { ids: IntFeed; mask: IntFeed; types: IntFeed | undefined };
  /** Whether the model takes `token_type_ids`. */
  readonly hasTypeIds: boolean;
  readonly outputName: string;
  /** Runs buckets in worker threads when set (the calling thread's session is then released). */
  private workers: EncoderWorkerPool | undefined;
  private sessionReleased = false;

  /** Throws {@link ConfigError} when the model's inputs are not the ones understood here. */
  constructor(
    private readonly session: ort.InferenceSession,
    private readonly modelPath: string,
    private readonly padId: number,
  ) {
    const inputs = session.inputNames;
    const unknown = inputs.filter((n) => !KNOWN_INPUTS.has(n));
    if (!inputs.includes('input_ids') || !inputs.includes('attention_mask') || unknown.length > 0) {
      throw new ConfigError(
        `${modelPath} has inputs [${inputs.join(', ')}]; expected input_ids, attention_mask and optionally token_type_ids`,
        { details: { path: modelPath } },
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

  /** Worker threads running buckets (0 when they run on the calling thread). */
  get workerCount(): number {
    return this.workers?.size ?? 0;
  }

  /** Moves inference to `size` worker threads and releases the calling thread's session. */
  async useWorkers(size: number, data: Omit<EncoderWorkerData, 'outputName'>): Promise<void> {
    this.workers = new EncoderWorkerPool(size, { ...data, outputName: this.outputName });
    this.sessionReleased = true;
    await this.session.release();
  }

  /**
   * Runs `batch` (sorted by ascending length) padded to its longest text; resolves with the
   * output's data and dims. With worker threads several calls may be in flight at once.
   */
  async run(batch: Tokens[]): Promise<{ data: Float32Array; dims: readonly number[] }> {
    const b = batch.length;
    const seq = batch[b - 1].ids.length;
    const { ids, mask, types } = this.feeds;
    ids.reset(b * seq, this.padId);
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
      return this.workers.run({
        b,
        seq,
        type: ids.type,
        ids: ids.take(b * seq),
        mask: mask.take(b * seq),
        ...(types ? { types: types.take(b * seq) } : {}),
      });
    }
    const input: Record<string, ort.Tensor> = { input_ids: ids.tensor(b, seq), attention_mask: mask.tensor(b, seq) };
    if (types) input.token_type_ids = types.tensor(b, seq);
    const result = await this.session.run(input, [this.outputName]);
    const hidden = result[this.outputName];
    if (!hidden || hidden.type !== 'float32') {
      throw new ConfigError(`${this.modelPath}: output ${this.outputName} is not a float32 tensor`);
    }
    return { data: hidden.data as Float32Array, dims: hidden.dims };
  }

  /** Terminates the worker threads, or releases the session; callers wait for their runs first. */
  async close(): Promise<void> {
    if (this.workers) await this.workers.close();
    if (!this.sessionReleased) {
      this.sessionReleased = true;
      await this.session.release();
    }
  }
}
