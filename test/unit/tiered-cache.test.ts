import { describe, expect, it } from 'vitest';
import { TieredCache } from '../../src/integration/tiered-cache.js';

describe('TieredCache', () => {
  it('counts hits and misses and forgets invalidated ids', () => {
    const c = new TieredCache({ maxBytes: 1 << 20 });
    expect(c.getBlock('a', 'x')).toBeUndefined();
    c.setBlock('a', 'x', { content: 'hello', metadata: { k: 1 }, version: 2 });
    c.setVector('a', 'x', { vector: new Float32Array([1, 2]), version: 2 });
    c.setBlock('b', 'x', { content: 'other collection', metadata: {}, version: 1 });
    expect(c.getBlock('a', 'x')).toEqual({ content: 'hello', metadata: { k: 1 }, version: 2 });
    expect(c.getVector('a', 'x')?.version).toBe(2);
    c.invalidate('a', ['x']);
    expect(c.getBlock('a', 'x')).toBeUndefined();
    expect(c.getVector('a', 'x')).toBeUndefined();
    expect(c.getBlock('b', 'x')?.content).toBe('other collection');
    const s = c.stats();
    expect(s.blocks).toMatchObject({ hits: 2, misses: 2, entries: 1 });
    expect(s.vectors).toMatchObject({ hits: 1, misses: 1, entries: 0 });
    expect(s.hitRatio).toBeCloseTo(3 / 6);
    c.invalidateCollection('b');
    expect(c.getBlock('b', 'x')).toBeUndefined();
  });

  it('keeps within its byte budgets, evicting the least recently used', () => {
    const c = new TieredCache({ maxBytes: 400_000, vectorShare: 0.5 });
    for (let i = 0; i < 100; i++) c.setVector('a', `v${i}`, { vector: new Float32Array(1000), version: 1 });
    const s = c.stats().vectors;
    expect(s.bytes).toBeLessThanOrEqual(200_000);
    expect(s.entries).toBeLessThan(100);
    expect(c.getVector('a', 'v99')).toBeDefined();
    expect(c.getVector('a', 'v0')).toBeUndefined();
    for (let i = 0; i < 1000; i++) c.setBlock('a', `b${i}`, { content: 'x'.repeat(500), metadata: { i }, version: 1 });
    expect(c.stats().blocks.bytes).toBeLessThanOrEqual(200_000);
  });

  it('is off with a budget of 0', () => {
    const c = new TieredCache({ maxBytes: 0 });
    c.setBlock('a', 'x', { content: null, metadata: {}, version: 1 });
    expect(c.getBlock('a', 'x')).toBeUndefined();
    expect(() => new TieredCache({ maxBytes: -1 })).toThrow(RangeError);
  });
});
