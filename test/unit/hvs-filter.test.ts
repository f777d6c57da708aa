import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileFilter, type Filter, matchesFilter } from '../../src/core/filter.js';
import type { Metric } from '../../src/core/metric.js';
import { Hvs } from '../../src/hvs/hvs.js';
import type { HvsCollection } from '../../src/hvs/hvs-collection.js';
import { filterArb, metadataArb } from '../fixtures/filters.js';
import { freshSeed, randomRows, rng } from '../fixtures/random.js';
import { expectMatchesReference, type ModelRow } from '../fixtures/reference-check.js';

let dataDir: string;
let hvs: Hvs;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hvs-filter-'));
  // Small segments: sealed ones (searched in the worker thread) and a growing one (on this thread).
  hvs = await Hvs.open({ dataDir, device: 'cpu', sealThreshold: 128 });
});
afterAll(async () => {
  await hvs.close();
  await rm(dataDir, { recursive: true, force: true });
});

interface Item {
  vector: Float32Array;
  metadata: Record<string, unknown>;
}

/**
 * A collection of `n` items with random metadata, spread over sealed segments and a growing
 * one, then partly updated (new vectors and metadata) and deleted, with the model beside it.
 */
async function filledCollection(
  name: string,
  metric: Metric,
  n: number,
  seed: number,
): Promise<{ c: HvsCollection; model: Map<string, Item> }> {
  const rand = rng(seed);
  const dim = 12;
  const c = hvs.createCollection(name, { dim, metric });
  const metas = fc.sample(metadataArb, { numRuns: n, seed });
  const vecs = randomRows(rand, n, dim);
  const ids = vecs.map((_, i) => `doc-${i}`);
  const model = new Map<string, Item>();
  for (let from = 0; from < n; from += 200) {
    const to = Math.min(n, from + 200);
    await c.upsert(ids.slice(from, to), vecs.slice(from, to), undefined, metas.slice(from, to));
  }
  ids.forEach((id, i) => model.set(id, { vector: vecs[i], metadata: metas[i] }));
  const up = ids.filter((_, i) => i % 11 === 3);
  const upVecs = randomRows(rand, up.length, dim);
  const upMetas = fc.sample(metadataArb, { numRuns: up.length, seed: seed + 1 });
  await c.upsert(up, upVecs, undefined, upMetas);
  up.forEach((id, i) => model.set(id, { vector: upVecs[i], metadata: upMetas[i] }));
  const del = ids.filter((_, i) => i % 7 === 2);
  c.delete(del);
  for (const id of del) model.delete(id);
  await c.idle();
  return { c, model };
}

function matching(model: Map<string, Item>, filter: Filter): ModelRow[] {
  const node = compileFilter(filter);
  return [...model].filter(([, it]) => matchesFilter(node, it.metadata)).map(([id, it]) => ({ id, vector: it.vector }));
}

describe.each(['cosine', 'l2', 'ip'] as const)('HVS filtered search equals the float64 reference (%s)', (metric) => {
  it('random filters from every item down to none: exact, never short', async () => {
    const seed = freshSeed();
    const { c, model } = await filledCollection(`f_${metric}`, metric, 900, seed);
    expect(c.stats().sealedSegments).toBeGreaterThanOrEqual(4);
    expect(c.stats().growingRows).toBeGreaterThan(0);
    const rand = rng(seed + 2);
    const seen = { none: 0, few: 0, many: 0 };
    await fc.assert(
      fc.asyncProperty(filterArb, fc.constantFrom(1, 10, 50), async (filter, k) => {
        const queries = randomRows(rand, 3, 12);
        const node = compileFilter(filter);
        const rows = matching(model, filter);
        seen[rows.length === 0 ? 'none' : rows.length < model.size / 8 ? 'few' : 'many']++;
        const hits = await c.search(queries, k, { filter: node });
        hits.forEach((list, q) =>
          expectMatchesReference(
            metric,
            queries[q],
            rows,
            k,
            list,
            `seed ${seed}, ${JSON.stringify(filter)}, k ${k}, query ${q}`,
          ),
        );
        expect(c.estimate(node).matching).toBe(rows.length);
      }),
      {
        numRuns: 120,
        seed,
        // Random filters reach every regime most of the time, not always: one of each, every run.
        examples: [
          [{ tenant: 'nobody' }, 10],
          [{ $and: [{ tenant: 'acme' }, { lang: 'de' }] }, 10],
          [{ $not: { tenant: 'nobody' } }, 10],
        ],
      },
    );
    // Every regime was checked: nothing, few (gathered) and many rows (masked) matching.
    expect(seen.none).toBeGreaterThan(0);
    expect(seen.few).toBeGreaterThan(0);
    expect(seen.many).toBeGreaterThan(0);
  });
});

describe('HVS filters: batches, snapshots, writes', () => {
  it('one filter per query in one batch equals each query alone', async () => {
    const seed = freshSeed();
    const { c, model } = await filledCollection('per_query', 'cosine', 500, seed);
    const filters = fc.sample(filterArb, { numRuns: 6, seed });
    const rand = rng(seed + 3);
    const queries = randomRows(rand, 6, 12);
    const nodes = [...filters.map((f) => compileFilter(f)), undefined];
    queries.push(randomRows(rand, 1, 12)[0]);
    const hits = await c.search(queries, 8, { filter: nodes });
    hits.forEach((list, q) => {
      const rows = nodes[q] ? matching(model, filters[q]) : [...model].map(([id, it]) => ({ id, vector: it.vector }));
      expectMatchesReference('cosine', queries[q], rows, 8, list, `seed ${seed}, query ${q}`);
    });
  });

  it('a snapshot keeps the metadata: the restored collection filters the same', async () => {
    const seed = freshSeed();
    const { c, model } = await filledCollection('snap', 'l2', 400, seed);
    await hvs.snapshot('snap');
    await c.compact();
    const restored = await hvs.restoreDetached('snap', join(dataDir, 'hvs', 'snap'));
    try {
      const rand = rng(seed + 4);
      for (const filter of fc.sample(filterArb, { numRuns: 25, seed })) {
        const q = randomRows(rand, 1, 12);
        const rows = matching(model, filter);
        const [a] = await restored.search(q, 10, { filter: compileFilter(filter) });
        expectMatchesReference('l2', q[0], rows, 10, a, `seed ${seed}, ${JSON.stringify(filter)}`);
      }
      for (const id of ['doc-0', 'doc-3', 'doc-5']) expect(restored.metadataOf(id)).toEqual(model.get(id)?.metadata);
    } finally {
      await restored.close();
    }
  });

  it('metadata changes with upserts and goes with deletes', async () => {
    const c = hvs.createCollection('writes', { dim: 3, metric: 'ip' });
    await c.upsert(['a', 'b'], [Float32Array.of(1, 0, 0), Float32Array.of(0, 1, 0)], undefined, [{ t: 'x' }, { t: 'y' }]);
    const q = [Float32Array.of(1, 1, 0)];
    const f = compileFilter({ t: 'x' });
    expect((await c.search(q, 5, { filter: f }))[0].map((h) => h.id)).toEqual(['a']);
    await c.upsert(['a'], [Float32Array.of(1, 0, 0)], undefined, [{ t: 'y' }]);
    expect(await c.search(q, 5, { filter: f })).toEqual([[]]);
    await c.upsert(['b'], [Float32Array.of(0, 1, 0)], undefined, [{ t: 'x' }]);
    expect((await c.search(q, 5, { filter: f }))[0].map((h) => h.id)).toEqual(['b']);
    c.delete(['b']);
    expect(await c.search(q, 5, { filter: f })).toEqual([[]]);
    await c.upsert(['c'], [Float32Array.of(0, 0, 1)], undefined, [{ t: 'x' }]);
    expect((await c.search(q, 5, { filter: f }))[0].map((h) => h.id)).toEqual(['c']);
    expect(c.estimate(f)).toEqual({ matching: 1, live: 2, selectivity: 0.5 });
    // The growing segment seals under the same id and row count: the cached masks of the filter
    // were made for the old segment object and must not be used for the new one.
    await c.flush();
    expect(c.stats().sealedSegments).toBe(1);
    expect((await c.search(q, 5, { filter: f }))[0].map((h) => h.id)).toEqual(['c']);
    await c.compact();
    expect((await c.search(q, 5, { filter: f }))[0].map((h) => h.id)).toEqual(['c']);
  });
});
