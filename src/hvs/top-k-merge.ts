import type { TopKResult } from '../../kernels/types.js';

/** One candidate from the merge: which segment result it came from and the row in it. */
export interface MergedSlot {
  part: number;
  row: number;
  score: number;
}

/**
 * Merges the per-segment top-k lists of query `q` (each sorted best first, larger kernel score
 * first) into the best `k` overall: a k-way merge over a small binary heap, O(k log parts).
 */
export function mergeTopK(parts: readonly TopKResult[], q: number, k: number): MergedSlot[] {
  // Heap of [part, position] ordered by score descending.
  const heapPart: number[] = [];
  const heapPos: number[] = [];
  const score = (i: number): number => {
    const p = parts[heapPart[i]];
    return p.scores[q * p.k + heapPos[i]];
  };
  const swap = (a: number, b: number): void => {
    [heapPart[a], heapPart[b]] = [heapPart[b], heapPart[a]];
    [heapPos[a], heapPos[b]] = [heapPos[b], heapPos[a]];
  };
  const siftUp = (i: number): void => {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (score(parent) >= score(i)) break;
      swap(parent, i);
      i = parent;
    }
  };
  const siftDown = (i: number): void => {
    const n = heapPart.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < n && score(l) > score(best)) best = l;
      if (r < n && score(r) > score(best)) best = r;
      if (best === i) return;
      swap(best, i);
      i = best;
    }
  };
  const valid = (part: number, pos: number): boolean => {
    const p = parts[part];
    return pos < p.k && p.rows[q * p.k + pos] >= 0;
  };

  for (let part = 0; part < parts.length; part++) {
    if (valid(part, 0)) {
      heapPart.push(part);
      heapPos.push(0);
      siftUp(heapPart.length - 1);
    }
  }
  const out: MergedSlot[] = [];
  while (out.length < k && heapPart.length > 0) {
    const part = heapPart[0];
    const pos = heapPos[0];
    const p = parts[part];
    out.push({ part, row: p.rows[q * p.k + pos], score: p.scores[q * p.k + pos] });
    if (valid(part, pos + 1)) {
      heapPos[0] = pos + 1;
    } else {
      const last = heapPart.length - 1;
      swap(0, last);
      heapPart.pop();
      heapPos.pop();
    }
    siftDown(0);
  }
  return out;
}
