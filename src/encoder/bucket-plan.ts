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
