import { loadNativeIvf } from '../../../kernels/native-ivf.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { SealedSegment } from '../sealed-segment.js';
import type { CollectionParts } from '../types.js';
import { DEFAULT_RERANK, nprobeFor } from './calibrate.js';
import type { IvfProgress } from './ivf-index.js';
import { trainIvfSegment, type IvfTrainOptions } from './ivf-build.js';
import { IvfSegment, type IvfProbe } from './ivf-segment.js';
import type { AnnOptions, AnnPlan, IndexStats } from './ivf-types.js';

export type { AnnOptions, AnnPlan, IndexStats } from './ivf-types.js';

/**
 * A collection's approximate index: trains an IVF segment over its sealed rows (by itself once
 * `minRows` rows are sealed, or when asked), folds new rows into it, and plans each search:
 * exact below the threshold or when asked, IVF otherwise.
 */
export class CollectionIndex {
  private training: Promise<IvfSegment | undefined> | undefined;
  private progress: IvfProgress | undefined;
  private failure: string | undefined;
  private closed = false;

  constructor(
    private readonly t: CollectionParts,
    private readonly exclusive: <T>(work: () => Promise<T>) => Promise<T>,
    /** Sealed rows at which training starts by itself; 0 turns that off. */
    readonly minRows: number,
  ) {}

  /** The IVF segment, if one is trained. */
  segment(): IvfSegment | undefined {
    for (const s of this.t.segments.values()) if (s instanceof IvfSegment) return s;
    return undefined;
  }

  /**
   * Trains (or, with `reuse`, folds new rows into) the IVF segment; a call while one runs waits
   * for it and then runs its own. Searches stay exact over the old segments meanwhile.
   */
  async train(opts: IvfTrainOptions = {}): Promise<IvfSegment | undefined> {
    const native = loadNativeIvf();
    if (!native.ok) throw new InvalidArgumentError(`IVF index unavailable: ${native.reason}`);
    while (this.training) await this.training.catch(() => undefined);
    const run = trainIvfSegment(this.t, { kernel: native.kernel, isa: native.kernel.isa }, this.exclusive, {
      ...opts,
      cancelled: () => this.closed || opts.cancelled?.() === true,
      onProgress: (p) => {
        this.progress = p;
        opts.onProgress?.(p);
      },
    });
    this.training = run;
    try {
      const seg = await run;
      this.failure = undefined;
      return seg;
    } catch (err) {
      this.failure = `training failed: ${err instanceof Error ? err.message : String(err)}`;
      throw err;
    } finally {
      this.training = undefined;
      this.progress = undefined;
    }
  }

  /**
   * After writes: starts training in the background once `minRows` rows are sealed and no index
   * exists, or a fold once the sealed rows outside the index reach a quarter of it.
   */
  maybeStart(): void {
    if (this.minRows === 0 || this.training || this.closed || this.failure || !loadNativeIvf().ok) return;
    const ivf = this.segment();
    let sealed = 0;
    for (const s of this.t.segments.values()) if (s instanceof SealedSegment) sealed += s.rows - s.tombstones;
    const live = ivf ? ivf.rows - ivf.tombstones : 0;
    if (ivf ? sealed < Math.max(this.minRows / 4, live / 4) : sealed < this.minRows) return;
    // The failure is kept for stats; the collection stays exact meanwhile.
    this.train({ reuse: ivf !== undefined }).catch(() => undefined);
  }

  /**
   * Folds the sealed rows outside the index, and its tombstones, into its lists (kept as they
   * are while the rows have not outgrown them); returns the rows folded in.
   */
  async fold(): Promise<number> {
    const ivf = this.segment();
    if (!ivf) return 0;
    let sealed = 0;
    for (const s of this.t.segments.values()) if (s instanceof SealedSegment) sealed += s.rows - s.tombstones;
    if (sealed > 0 || ivf.tombstones > 0) await this.train({ reuse: true });
    return sealed;
  }

  /** The plan of a search for `k` results with `opts`. */
  plan(k: number, opts: AnnOptions = {}): AnnPlan {
    const { nprobe: asked, targetRecall } = opts;
    if (asked !== undefined && (!Number.isInteger(asked) || asked < 1)) {
      throw new InvalidArgumentError(`nprobe must be a positive integer, got ${String(asked)}`);
    }
    if (targetRecall !== undefined && !(typeof targetRecall === 'number' && targetRecall > 0 && targetRecall <= 1)) {
      throw new InvalidArgumentError(`targetRecall must be a number in (0, 1], got ${String(targetRecall)}`);
    }
    const ivf = this.segment();
    if (!ivf) return { index: 'flat', reason: this.reason() };
    if (opts.exact) return { index: 'flat', reason: 'exact: true' };
    const c = ivf.calibration;
    const nlist = ivf.index.nlist;
    const nprobe = opts.nprobe ?? (opts.targetRecall !== undefined ? nprobeFor(c, nlist, opts.targetRecall) : c.nprobe);
    if (nprobe >= nlist || (opts.targetRecall ?? 0) >= 1) return { index: 'flat', reason: 'every list probed: exact scan' };
    // The recall measured at the largest calibrated nprobe not above this one.
    const point = c.points.filter((p) => p.nprobe <= nprobe).at(-1);
    return {
      index: 'ivf',
      nprobe,
      nlist,
      candidates: Math.ceil(k * (c.rerank || DEFAULT_RERANK)),
      expectedRecall: point?.recall ?? 0,
      deltaRows: this.deltaRows(),
    };
  }

  probe(plan: AnnPlan): IvfProbe | undefined {
    return plan.index === 'ivf' ? { nprobe: plan.nprobe, candidates: plan.candidates } : undefined;
  }

  stats(): IndexStats {
    const ivf = this.segment();
    return {
      state: this.training ? 'training' : ivf ? 'ivf' : 'flat',
      ...(ivf ? {} : { reason: this.reason() }),
      minRows: this.minRows,
      ...(this.progress ? { progress: this.progress } : {}),
      deltaRows: this.deltaRows(),
      ...(ivf ? { ivf: ivf.summary() } : {}),
    };
  }

  /** Stops a training run (it ends at its next step) and waits for it. */
  async close(): Promise<void> {
    this.closed = true;
    await this.training?.catch(() => undefined);
  }

  private deltaRows(): number {
    let n = 0;
    for (const s of this.t.segments.values()) if (!(s instanceof IvfSegment)) n += s.rows - s.tombstones;
    return n;
  }

  private reason(): string {
    const native = loadNativeIvf();
    if (!native.ok) return native.reason;
    if (this.failure) return this.failure;
    if (this.training) return 'training';
    return this.minRows === 0 ? 'no IVF index trained (automatic training is off)' : `fewer than ${this.minRows} sealed rows`;
  }
}
