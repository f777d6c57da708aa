import { describe, expect, it } from 'vitest';
import { DimensionMismatchError, InvalidArgumentError, InvalidVectorError } from '../../src/core/errors.js';
import { QueryBatch } from '../../src/core/vector.js';
import { freshSeed, randomVectors, rng } from '../fixtures/random.js';

describe('QueryBatch: query vectors checked and copied once, where they enter', () => {
  const seed = freshSeed();
  const rand = rng(seed);
  const dim = 37;
  const n = 9;

  it(`normalises cosine rows against a float64 reference, from a flat array or an array of rows (seed ${seed})`, () => {
    const flat = randomVectors(rand, n, dim);
    const rows = Array.from({ length: n }, (_, i) => flat.slice(i * dim, (i + 1) * dim));
    for (const input of [flat, rows]) {
      const b = QueryBatch.of(input, dim, 'cosine');
      expect(b.count).toBe(n);
      for (let i = 0; i < n; i++) {
        let norm = 0;
        for (let j = 0; j < dim; j++) norm += flat[i * dim + j] ** 2;
        const inv = 1 / Math.sqrt(norm);
        for (let j = 0; j < dim; j++) expect(b.data[i * dim + j]).toBeCloseTo(flat[i * dim + j] * inv, 6);
      }
    }
  });

  it('owns its data: the caller keeps its arrays unchanged, and one copy is made', () => {
    const flat = randomVectors(rand, n, dim);
    const before = flat.slice();
    const rows = Array.from({ length: n }, (_, i) => flat.slice(i * dim, (i + 1) * dim));
    const rowsBefore = rows.map((r) => r.slice());
    for (const metric of ['cosine', 'l2', 'ip'] as const) {
      const a = QueryBatch.of(flat, dim, metric);
      const b = QueryBatch.of(rows, dim, metric);
      expect(a.data.buffer).not.toBe(flat.buffer);
      expect(a.data.byteLength).toBe(a.data.buffer.byteLength); // its own buffer, exactly its rows
      expect(b.data.byteLength).toBe(b.data.buffer.byteLength);
      expect(Array.from(b.data)).toEqual(Array.from(a.data));
      if (metric !== 'cosine') expect(Array.from(a.data)).toEqual(Array.from(flat));
      // Rows are views into the one buffer, not copies.
      expect(a.row(2).buffer).toBe(a.data.buffer);
      expect(a.rows()).toHaveLength(n);
    }
    expect(Array.from(flat)).toEqual(Array.from(before));
    rows.forEach((r, i) => expect(Array.from(r)).toEqual(Array.from(rowsBefore[i])));
  });

  it('refuses what a query cannot be, with typed errors', () => {
    expect(() => QueryBatch.of([new Float32Array(3)], 4, 'l2')).toThrow(DimensionMismatchError);
    expect(() => QueryBatch.of([new Float32Array(4)], 4, 'cosine')).toThrow(InvalidVectorError);
    expect(() => QueryBatch.of([new Float32Array([1, NaN, 0, 0])], 4, 'l2')).toThrow(InvalidVectorError);
    expect(() => QueryBatch.of([], 4, 'l2')).toThrow(InvalidArgumentError);
    expect(() => QueryBatch.of([[1, 2, 3, 4]] as unknown as Float32Array[], 4, 'l2')).toThrow(InvalidArgumentError);
  });
});
