import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClosedError,
  CollectionExistsError,
  CollectionNotFoundError,
  DimensionMismatchError,
  HyperSyncError,
  InvalidArgumentError,
  InvalidVectorError,
} from '../../src/core/errors.js';
import type { HvsCollection } from '../../src/hvs/hvs-collection.js';
import { Hvs } from '../../src/hvs/hvs.js';

let dataDir: string;
let hvs: Hvs;
let c: HvsCollection;
const v = (...xs: number[]): Float32Array => Float32Array.from(xs);

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hvs-err-'));
  hvs = await Hvs.open({ dataDir, device: 'cpu' });
  c = hvs.createCollection('errs', { dim: 3, metric: 'cosine' });
  await c.upsert(['a', 'b'], [v(1, 0, 0), v(0, 1, 0)]);
});
afterAll(async () => {
  await hvs.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function expectUnchanged(): Promise<void> {
  expect(c.count).toBe(2);
  expect(c.get('a')?.vector).toEqual(v(1, 0, 0));
  expect((await c.search([v(0, 1, 0)], 2))[0].map((h) => h.id)).toEqual(['b', 'a']);
}

describe('bad input throws typed errors with clear messages and writes nothing', () => {
  const cases: [string, () => Promise<unknown>, new (...a: never[]) => HyperSyncError, RegExp][] = [
    ['wrong dimension', () => c.upsert(['x'], [v(1, 2)]), DimensionMismatchError, /expected dimension 3, got 2/],
    ['wrong flat length', () => c.upsert(['x', 'y'], v(1, 2, 3, 4)), DimensionMismatchError, /multiple of the dimension/],
    ['NaN', () => c.upsert(['x'], [v(1, NaN, 0)]), InvalidVectorError, /\[0\]\[1\] is NaN/],
    ['Infinity', () => c.upsert(['x', 'y'], [v(1, 0, 0), v(0, 0, Infinity)]), InvalidVectorError, /\[1\]\[2\] is Infinity/],
    ['zero vector under cosine', () => c.upsert(['x'], [v(0, 0, 0)]), InvalidVectorError, /zero vector/],
    [
      'ids and vectors differ in count',
      () => c.upsert(['x', 'y'], [v(1, 0, 0)]),
      InvalidArgumentError,
      /expected 2 vectors, got 1/,
    ],
    ['empty batch', () => c.upsert([], []), InvalidArgumentError, /non-empty/],
    ['empty id', () => c.upsert([''], [v(1, 0, 0)]), InvalidArgumentError, /non-empty string/],
    [
      'non-Float32Array vector',
      () => c.upsert(['x'], [[1, 0, 0] as unknown as Float32Array]),
      InvalidArgumentError,
      /Float32Array/,
    ],
    ['negative version', () => c.upsert(['x'], [v(1, 0, 0)], [-1]), InvalidArgumentError, /version/],
    ['k = 0', () => c.search([v(1, 0, 0)], 0), InvalidArgumentError, /k must be an integer between 1 and 1024, got 0/],
    ['k = 1025', () => c.search([v(1, 0, 0)], 1025), InvalidArgumentError, /got 1025/],
    ['k = 1e9', () => c.search([v(1, 0, 0)], 1e9), InvalidArgumentError, /got 1000000000/],
    ['k fractional', () => c.search([v(1, 0, 0)], 2.5), InvalidArgumentError, /got 2.5/],
    ['empty query batch', () => c.search([], 1), InvalidArgumentError, /batch is empty/],
    ['query of wrong dimension', () => c.search([v(1, 0, 0, 0)], 1), DimensionMismatchError, /queries\[0\]/],
    ['query with NaN', () => c.search([v(NaN, 0, 0)], 1), InvalidVectorError, /finite/],
  ];
  it.each(cases)('%s', async (_name, call, type, message) => {
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(type);
    expect(err).toBeInstanceOf(HyperSyncError);
    expect((err as HyperSyncError).httpStatus).toBe(400);
    expect((err as Error).message).toMatch(message);
    await expectUnchanged();
  });
});

describe('collections', () => {
  it('refuses bad names, dimensions and metrics', () => {
    expect(() => hvs.createCollection('drop table x', { dim: 3, metric: 'l2' })).toThrow(InvalidArgumentError);
    expect(() => hvs.createCollection('1abc', { dim: 3, metric: 'l2' })).toThrow(/invalid collection name/);
    expect(() => hvs.createCollection('ok', { dim: 0, metric: 'l2' })).toThrow(/dim must be an integer between 1 and 4096/);
    expect(() => hvs.createCollection('ok', { dim: 5000, metric: 'l2' })).toThrow(/got 5000/);
    expect(() => hvs.createCollection('ok', { dim: 3, metric: 'dot' as 'l2' })).toThrow(/metric must be one of/);
  });

  it('duplicate → CollectionExistsError (409), unknown → CollectionNotFoundError (404)', () => {
    expect(() => hvs.createCollection('errs', { dim: 3, metric: 'l2' })).toThrow(CollectionExistsError);
    expect(() => hvs.collection('nope')).toThrow(CollectionNotFoundError);
    try {
      hvs.collection('nope');
    } catch (e) {
      expect((e as HyperSyncError).httpStatus).toBe(404);
      expect((e as HyperSyncError).code).toBe('collection_not_found');
    }
  });

  it('use after close rejects with ClosedError; close is idempotent', async () => {
    const h = await Hvs.open({ dataDir, device: 'cpu' });
    const col = h.createCollection('closing', { dim: 2, metric: 'ip' });
    await col.upsert(['a'], [v(1, 2)]);
    await h.close();
    await h.close();
    expect(() => h.collection('closing')).toThrow(ClosedError);
    await expect(col.search([v(1, 2)], 1)).rejects.toThrow(ClosedError);
  });
});
