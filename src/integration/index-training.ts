import { InvalidArgumentError, UnavailableError } from '../core/errors.js';
import type { IvfProgress } from '../hvs/ivf/ivf-index.js';
import type { IndexStats } from '../hvs/ivf/ivf-types.js';
import type { SnapshotManifest } from '../hvs/snapshot.js';
import type { CollectionState } from './collection-state.js';

/** Options of {@link HyperSync.trainIndex}. */
export interface TrainIndexOptions {
  /** Inverted lists (default ≈ 4·√rows). */
  nlist?: number;
  /** Recall@10 the calibrated default `nprobe` must reach (default 0.95). */
  targetRecall?: number;
  /** Stops the training at its next step (it throws the signal's reason); searches were never affected. */
  signal?: AbortSignal;
  onProgress?: (p: IvfProgress) => void;
}

/** What {@link HyperSync.trainIndex} did. */
export interface TrainIndexResult {
  collection: string;
  /** The index as it stands after training (`ivf`, with its lists and calibrated default). */
  index: IndexStats;
  /** The snapshot written after training, so a restart loads the index instead of retraining. */
  snapshotLsn?: number;
  ms: number;
}

/**
 * Trains a collection's IVF index in the HVS over every row it holds (growing rows are sealed
 * first), then writes the collection's snapshot. Queries stay exact meanwhile, and writes go on:
 * rows written during training are searched exactly beside the lists until a compaction folds
 * them in.
 */
export async function trainCollectionIndex(
  state: CollectionState,
  snapshot: (state: CollectionState) => Promise<SnapshotManifest[]>,
  opts: TrainIndexOptions = {},
): Promise<TrainIndexResult> {
  const { nlist, targetRecall, signal, onProgress } = opts;
  if (nlist !== undefined && (!Number.isSafeInteger(nlist) || nlist < 1)) {
    throw new InvalidArgumentError(`nlist must be a positive integer, got ${String(nlist)}`);
  }
  if (targetRecall !== undefined && !(typeof targetRecall === 'number' && targetRecall > 0 && targetRecall < 1)) {
    throw new InvalidArgumentError(`targetRecall must be a number in (0, 1), got ${String(targetRecall)}`);
  }
  const t0 = performance.now();
  await state.whenReady();
  const h = state.hvs;
  if (!h) throw new UnavailableError(`the HVS does not hold collection ${state.name} (being rebuilt); try again`);
  if (h.count === 0) throw new InvalidArgumentError(`collection ${state.name} is empty: there is nothing to train an index on`);
  const aborted = (): void => signal?.throwIfAborted();
  aborted();
  await h.flush();
  try {
    await h.trainIndex({
      ...(nlist !== undefined ? { nlist } : {}),
      ...(targetRecall !== undefined ? { targetRecall } : {}),
      ...(onProgress ? { onProgress } : {}),
      cancelled: () => signal?.aborted === true,
    });
  } catch (err) {
    aborted();
    throw err;
  }
  aborted();
  const manifests = await snapshot(state);
  const lsn = manifests.find((m) => m.collection.name === state.name)?.lsn;
  return {
    collection: state.name,
    index: h.stats().index,
    ...(lsn !== undefined ? { snapshotLsn: lsn } : {}),
    ms: Math.round(performance.now() - t0),
  };
}
