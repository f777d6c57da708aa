import { describe, expect, it } from 'vitest';
import { compileFilter } from '../../src/core/filter.js';
import { QueryBatch } from '../../src/core/vector.js';
import { ResultCache, resultKey, resultStamp, type ResultKeyParts } from '../../src/integration/result-cache.js';
import type { QueryHit } from '../../src/integration/types.js';

const batch = (...vs: number[][]): QueryBatch =>
  QueryBatch.of(
    vs.map((v) => Float32Array.from(v)),
    3,
    'l2',
  );
const base: ResultKeyParts = { k: 5, include: ['content', 'metadata'], filter: undefined, minScore: undefined, ann: {} };
const hit = (id: string, extra: Partial<QueryHit> = {}): QueryHit => ({ id, score: 0.5, version: 1, source: 'hvs', ...extra });

describe('resultKey', () => {
  const q = batch([1, 2, 3]);
  const key = resultKey('c', q, base);

  it('is the same for the same bytes in another buffer and includes in any order, with repeats', () => {
    expect(resultKey('c', batch([1, 2, 3]), { ...base, include: ['metadata', 'content', 'metadata'] })).toBe(key);
    expect(resultKey('c', q, { ...base, filter: compileFilter({ g: 1 }) })).toBe(
      resultKey('c', batch([1, 2, 3]), { ...base, filter: compileFilter({ g: 1 }) }),
    );
  });

  it('differs for anything that changes the answer', () => {
    const oneBit = Float32Array.from([1, 2, 3]);
    new Uint32Array(oneBit.buffer)[2] ^= 1;
    const others = [
      resultKey('d', q, base),
      resultKey('c', QueryBatch.of([oneBit], 3, 'l2'), base),
      resultKey('c', batch([1, 2, 3], [1, 2, 3]), base),
      resultKey('c', q, { ...base, k: 6 }),
      resultKey('c', q, { ...base, include: ['content'] }),
      resultKey('c', q, { ...base, include: [] }),
      resultKey('c', q, { ...base, filter: compileFilter({ g: 1 }) }),
      resultKey('c', q, { ...base, filter: compileFilter({ g: '1' }) }),
      resultKey('c', q, { ...base, filter: [compileFilter({ g: 1 })] }),
      resultKey('c', q, { ...base, minScore: 0 }),
      resultKey('c', q, { ...base, ann: { exact: true } }),
      resultKey('c', q, { ...base, ann: { nprobe: 4 } }),
      resultKey('c', q, { ...base, ann: { targetRecall: 0.9 } }),
    ];
    expect(new Set([key, ...others]).size).toBe(others.length + 1);
  });
});

describe('resultStamp', () => {
  it('names the objects (never reused) and the change count', () => {
    const state = {};
    const hvs = { changes: 3 };
    const s = resultStamp(state, hvs);
    expect(resultStamp(state, hvs)).toBe(s);
    expect(resultStamp({}, hvs)).not.toBe(s);
    expect(resultStamp(state, { changes: 3 })).not.toBe(s);
    hvs.changes++;
    expect(resultStamp(state, hvs)).not.toBe(s);
  });
});

describe('ResultCache', () => {
  it('answers copies under the stamp it stored, and drops every answer of a collection once its stamp moves', () => {
    const cache = new ResultCache({ maxBytes: 1 << 20 });
    const answer = [[hit('a', { metadata: { g: 1 }, vector: Float32Array.from([1, 2, 3]) })]];
    expect(cache.get('c', 'k1', 's1')).toBeUndefined();
    cache.set('c', 'k1', 's1', answer);
    cache.set('c', 'k2', 's1', [[hit('b')]]);
    cache.set('other', 'k3', 'x', [[hit('z')]]);
    answer[0][0].metadata!.g = 2;
    const got = cache.get('c', 'k1', 's1');
    expect(got).toEqual([[hit('a', { metadata: { g: 1 }, vector: Float32Array.from([1, 2, 3]) })]]);
    got![0][0].id = 'changed';
    expect(cache.get('c', 'k1', 's1')![0][0].id).toBe('a');
    expect(cache.collectionStats('c')).toMatchObject({ hits: 2, misses: 1, entries: 2 });
    // The collection changed: its answers are unusable and go; another collection's stay.
    expect(cache.get('c', 'k2', 's2')).toBeUndefined();
    expect(cache.collectionStats('c')).toMatchObject({ entries: 0, bytes: 0, misses: 2 });
    expect(cache.get('other', 'k3', 'x')).toHaveLength(1);
    expect(cache.stats()).toMatchObject({ hits: 3, misses: 2, entries: 1 });
    expect(cache.stats().hitRatio).toBeCloseTo(0.6, 10);
    cache.forget('other');
    expect(cache.collectionStats('other')).toEqual({ hits: 0, misses: 0, hitRatio: 0, entries: 0, bytes: 0 });
    expect(cache.stats()).toMatchObject({ hits: 3, misses: 2, entries: 0, bytes: 0 });
  });

  it('keeps within its budget, counting evictions per collection and in all', () => {
    const cache = new ResultCache({ maxBytes: 4096 });
    for (let i = 0; i < 50; i++) cache.set(i % 2 ? 'a' : 'b', `k${i}`, 's', [[hit(`id${i}`, { content: 'x'.repeat(200) })]]);
    const s = cache.stats();
    expect(s.bytes).toBeLessThanOrEqual(4096);
    expect(s.evictions).toBeGreaterThan(0);
    expect(s.entries).toBeLessThan(50);
    const [a, b] = [cache.collectionStats('a'), cache.collectionStats('b')];
    expect(a.entries + b.entries).toBe(s.entries);
    expect(a.bytes + b.bytes).toBe(s.bytes);
    expect(cache.get('a', 'k49', 's')).toBeDefined();
    expect(cache.get('b', 'k0', 's')).toBeUndefined();
    // An answer larger than the whole budget is not kept.
    cache.set('a', 'huge', 's', [[hit('h', { content: 'x'.repeat(10_000) })]]);
    expect(cache.get('a', 'huge', 's')).toBeUndefined();
    expect(cache.stats().bytes).toBeLessThanOrEqual(4096);
  });

  it('does nothing with a budget of 0, and rejects a bad one', () => {
    const off = new ResultCache({ maxBytes: 0 });
    expect(off.enabled).toBe(false);
    off.set('c', 'k', 's', [[hit('a')]]);
    expect(off.get('c', 'k', 's')).toBeUndefined();
    expect(off.stats()).toEqual({ hits: 0, misses: 0, hitRatio: 0, entries: 0, bytes: 0, maxBytes: 0, evictions: 0 });
    expect(() => new ResultCache({ maxBytes: -1 })).toThrow(RangeError);
    expect(() => new ResultCache({ maxBytes: Number.NaN })).toThrow(RangeError);
  });
});
