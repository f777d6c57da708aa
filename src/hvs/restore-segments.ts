import { loc, locRow, locSegment } from './row-location.js';
import { SealedSegment } from './sealed-segment.js';
import { loadNativeIvf } from '../../kernels/native-ivf.js';
import { restoreIvfSegment } from './ivf/ivf-build.js';
import type { Segment } from './segment.js';
import type { RestoredSegment } from './snapshot.js';
import type { CollectionParts } from './types.js';

/** Stands in for vectors a kernel reads from the segment's file itself. */
const NO_VECTORS = new Float32Array(0);

/**
 * Puts a snapshot's segments back onto the device as sealed segments of `c` (an IVF segment as
 * one again, without retraining; as a plain sealed segment where the native kernel is missing),
 * and their live ids into its id map; resolves once every index is built. On failure, segments
 * already added stay in `c.segments` for the caller to retire (by closing the collection).
 */
export async function restoreSegments(c: CollectionParts, parts: readonly RestoredSegment[]): Promise<void> {
  const { dim, metric, dir, kernel } = c;
  // Every segment's index starts building before any is awaited, so the kernel's worker
  // threads build them side by side.
  const building: Promise<void>[] = [];
  try {
    for (const p of parts) {
      const id = c.newSegmentId();
      const dead: number[] = [];
      for (let r = 0; r < p.ids.length; r++) if (!p.live[r]) dead.push(r);
      const native = p.ivf ? loadNativeIvf() : undefined;
      let seg: Segment;
      if (p.ivf && native?.ok) {
        seg = await restoreIvfSegment(c, { kernel: native.kernel, isa: native.kernel.isa }, id, { ...p, ivf: p.ivf });
      } else {
        const sealed = await SealedSegment.create(
          {
            id,
            dim,
            metric,
            vectors: p.vectors ?? NO_VECTORS,
            ids: p.ids,
            versions: p.versions,
            dead,
            dir,
            file: p.vectorsRef,
            verifyFile: p.vectors === undefined,
          },
          kernel,
        );
        building.push(sealed.ready());
        seg = sealed;
      }
      c.segments.set(id, seg);
      for (let r = 0; r < p.ids.length; r++) {
        if (!p.live[r]) continue;
        // An id live twice (it cannot be in a snapshot this code wrote) keeps its last row.
        const earlier = c.locations.get(p.ids[r]);
        if (earlier !== undefined) c.segments.get(locSegment(earlier))?.tombstone(locRow(earlier));
        c.locations.set(p.ids[r], loc(id, r));
      }
    }
    await Promise.all(building);
  } catch (err) {
    await Promise.allSettled(building);
    throw err;
  }
}
