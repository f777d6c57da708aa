import type { GrowingSegment } from './growing-segment.js';
import { SealedSegment } from './sealed-segment.js';
import type { CollectionParts } from './types.js';

/** Full segments that may wait for their index while writes go on (each holds its buffer). */
const MAX_PENDING_SEALS = 3;

/**
 * Seals full growing segments into device-resident ones behind the writes, and orders a
 * collection's structural work (starting seals, compaction, snapshots) so it never interleaves.
 * A failed seal leaves its rows searchable in the old segment; the failure is reported once by
 * the next write or {@link settle}, and {@link retryFailed} seals it again.
 */
export class SealScheduler {
  /**
   * Orders structural work (starting seals, compaction, snapshots) so it never interleaves;
   * never rejects.
   */
  private structural: Promise<unknown> = Promise.resolve();
  /** Seals whose index is still being built; their old growing segment serves until then. */
  private readonly sealsInFlight = new Set<Promise<void>>();
  /** A sealing failure, reported by the next write; the rows stay searchable in the old segment. */
  private sealError: Error | undefined;
  private pendingSeals = 0;
  /** Full segments whose seal failed: still searched in place, sealed again by flush(). */
  private readonly unsealed = new Set<GrowingSegment>();
  /** The vectors buffer of the last sealed growing segment, reused by the next one (one kept). */
  private readonly spareBuffers: Float32Array[] = [];
  private runs = 0;

  constructor(private readonly target: CollectionParts) {}

  /** Seals started whose index is not yet on the device. */
  get pending(): number {
    return this.pendingSeals;
  }

  /**
   * Past MAX_PENDING_SEALS seals in flight, waits for some to finish (so the memory held by
   * segments being sealed stays bounded); then rethrows a sealing failure once.
   */
  async throttle(): Promise<void> {
    while (this.pendingSeals > MAX_PENDING_SEALS) await Promise.race(this.sealsInFlight);
    this.rethrowSealError();
  }

  /** Waits for sealing in progress and rethrows a sealing failure once. */
  async settle(): Promise<void> {
    await this.quiesce();
    this.rethrowSealError();
  }

  /** Waits until no structural work is queued and no seal is in flight. */
  async quiesce(): Promise<void> {
    for (;;) {
      const tail = this.structural;
      await tail;
      await Promise.all(this.sealsInFlight);
      if (tail === this.structural && this.sealsInFlight.size === 0) return;
    }
  }

  /**
   * Structural work started or ended (index swaps, compactions, snapshots): a search that saw the
   * same count before and after ran over unchanged segments.
   */
  get structuralRuns(): number {
    return this.runs;
  }

  /** Queues `work` after all structural work and the seals in flight now. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    // Only the seals started before this call: one started later begins after `work` (it is
    // queued behind it), so waiting for it here would wait forever.
    const before = [...this.sealsInFlight];
    const run = this.structural.then(async () => {
      await Promise.all(before);
      this.runs++;
      try {
        return await work();
      } finally {
        this.runs++;
      }
    });
    this.structural = run.catch(() => undefined);
    return run;
  }

  /** Seals again every segment whose seal failed before. */
  retryFailed(): void {
    for (const g of this.unsealed) {
      this.unsealed.delete(g);
      this.seal(g);
    }
  }

  /** A full-capacity vectors buffer a sealed segment left behind, if one is kept. */
  takeSpareBuffer(): Float32Array | undefined {
    return this.spareBuffers.pop();
  }

  /** Lets go of kept buffers (a bulk load has ended). */
  dropSpareBuffers(): void {
    this.spareBuffers.length = 0;
  }

  private rethrowSealError(): void {
    const err = this.sealError;
    if (err !== undefined) {
      this.sealError = undefined;
      throw err;
    }
  }

  /** Seals a segment that no longer takes writes; on failure it keeps serving and is retried. */
  seal(old: GrowingSegment): void {
    const t = this.target;
    this.pendingSeals++;
    // Starting a seal (writing its file, asking for its index) is ordered with other structural
    // work; the index is then built beside this thread while the next seal may already start.
    const started = this.structural.then(async () => {
      if (t.isClosed()) return undefined;
      const rows = old.rows;
      const vectors = old.full ? old.vectors : old.vectors.slice(0, rows * t.dim);
      const versions = old.full ? old.versions : old.versions.slice(0, rows);
      return SealedSegment.create(
        { id: old.id, dim: t.dim, metric: t.metric, vectors, ids: old.ids, versions, dir: t.dir },
        t.kernel,
      );
    });
    this.structural = started.catch(() => undefined);
    const done = started
      .then(async (sealed) => {
        if (!sealed) return;
        try {
          await sealed.ready();
        } catch (err) {
          await sealed.retire();
          throw err;
        }
        if (t.isClosed()) {
          await sealed.retire();
          return;
        }
        // Until now the old segment served searches and took deletes; carry those over and swap.
        for (let r = 0; r < sealed.rows; r++) if (!old.isLive(r)) sealed.tombstone(r);
        t.segments.set(old.id, sealed);
        const spare = old.takeBuffer();
        if (spare && this.spareBuffers.length < 1) this.spareBuffers.push(spare);
      })
      .catch((err: unknown) => {
        // The rows stay searchable where they are; the next flush() tries again.
        this.unsealed.add(old);
        this.sealError = err instanceof Error ? err : new Error(`sealing failed: ${String(err)}`);
      })
      .finally(() => {
        this.pendingSeals--;
        this.sealsInFlight.delete(done);
      });
    this.sealsInFlight.add(done);
  }
}
