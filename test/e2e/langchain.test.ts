import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Document } from '@langchain/core/documents';
import { Embeddings } from '@langchain/core/embeddings';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { HyperSyncApiError, HyperSyncVectorStore, type HyperSyncVectorStoreConfig } from '../../src/langchain/index.js';
import { Service } from '../../src/service.js';

/**
 * A deterministic bag-of-words embedder: each lower-cased word adds 1 to the dimension its FNV-1a
 * hash picks, and the sum is L2-normalised. Texts sharing words are near; no network, no model.
 */
class HashingEmbeddings extends Embeddings {
  constructor(readonly dim = 256) {
    super({});
  }

  embedDocuments(texts: string[]): Promise<number[][]> {
    return Promise.resolve(texts.map((t) => this.embed(t)));
  }

  embedQuery(text: string): Promise<number[]> {
    return Promise.resolve(this.embed(text));
  }

  private embed(text: string): number[] {
    const v = new Array<number>(this.dim).fill(0);
    for (const word of text.toLowerCase().match(/\w+/g) ?? []) {
      let h = 0x811c9dc5;
      for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193) >>> 0;
      v[h % this.dim] += 1;
    }
    const norm = Math.hypot(...v) || 1;
    return v.map((x) => x / norm);
  }
}

const KEY = 'langchain-test-key';
const embeddings = new HashingEmbeddings();
let dataDir: string;
let svc: Service;
let url: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'langchain-'));
  svc = await Service.start(
    loadConfig({
      HYPERSYNC_PORT: '0',
      HYPERSYNC_HOST: '127.0.0.1',
      HYPERSYNC_DATA_DIR: dataDir,
      HYPERSYNC_DEVICE: 'cpu',
      HYPERSYNC_API_KEYS: KEY,
    }),
    pino({ level: 'silent' }),
  );
  url = `http://127.0.0.1:${svc.port}`;
});
afterAll(async () => {
  await svc?.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** A config for a collection of its own. */
function config(extra: Partial<HyperSyncVectorStoreConfig> = {}): HyperSyncVectorStoreConfig {
  return { url, apiKey: KEY, collection: `lc_${randomUUID().replaceAll('-', '')}`, ...extra };
}

const TEXTS = [
  'the cat sat on the mat',
  'a dog barked at the mailman',
  'stock markets fell sharply today',
  'the cat chased a mouse in the garden',
  'central banks raised interest rates',
];
const METADATAS = [
  { lang: 'en', year: 2019, source: { kind: 'web' }, tags: ['pets'] },
  { lang: 'de', year: 2021, source: { kind: 'pdf' }, tags: ['pets'] },
  { lang: 'en', year: 2022, source: { kind: 'web' }, tags: ['finance', 'news'] },
  { lang: 'fr', year: 2023, source: { kind: 'book' }, tags: ['pets'] },
  { lang: 'de', year: 2018, source: { kind: 'web' }, tags: ['finance'] },
];

describe('HyperSyncVectorStore (hypersync/langchain) against the real service', () => {
  it('builds a collection fromTexts and searches it with and without filters', async () => {
    const store = await HyperSyncVectorStore.fromTexts(TEXTS, METADATAS, embeddings, config());
    expect(store._vectorstoreType()).toBe('hypersync');

    const [top] = await store.similaritySearch('a cat on a mat', 1);
    expect(top).toMatchObject({ pageContent: TEXTS[0], metadata: METADATAS[0] });
    expect(typeof top.id).toBe('string');

    const cats = await store.similaritySearch('cat', 5, { tags: { $contains: 'pets' }, lang: { $ne: 'de' } });
    expect(cats.map((d) => d.pageContent).sort()).toEqual([TEXTS[0], TEXTS[3]].sort());

    const or = await store.similaritySearch('markets', 5, { $or: [{ lang: 'fr' }, { year: { $gte: 2022 } }] });
    expect(or.map((d) => d.pageContent)).toEqual([TEXTS[2], TEXTS[3]]);

    const inDotted = await store.similaritySearch('the', 5, { 'source.kind': { $in: ['pdf', 'book'] } });
    expect(
      inDotted.map((d) => d.metadata.source as unknown).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toEqual([{ kind: 'book' }, { kind: 'pdf' }]);

    // Exact filtering: k hits whenever k items match, however far they are from the query.
    expect(await store.similaritySearch('cat', 2, { year: { $lt: 2020 } })).toHaveLength(2);
    expect(await store.similaritySearch('cat', 5, { lang: 'es' })).toEqual([]);
  });

  it('upserts by ids (options.ids, else Document.id) and stores in batches', async () => {
    const requests: string[] = [];
    const store = new HyperSyncVectorStore(
      embeddings,
      config({
        batchSize: 2,
        fetch: (req) => {
          requests.push(`${req.method} ${new URL(req.url).pathname}`);
          return fetch(req);
        },
      }),
    );
    const docs = TEXTS.map((pageContent, i) => new Document({ pageContent, metadata: { n: i } }));
    const ids = await store.addDocuments(docs, { ids: ['a', 'b', 'c', 'd', 'e'] });
    expect(ids).toEqual(['a', 'b', 'c', 'd', 'e']);
    const itemPosts = requests.filter((r) => r.startsWith('POST') && r.endsWith('/items'));
    expect(itemPosts).toHaveLength(3);

    // Re-adding an id replaces that item: same count, new content and metadata.
    expect(
      await store.addDocuments([new Document({ id: 'c', pageContent: 'the cat sat on the mat again', metadata: { n: 99 } })]),
    ).toEqual(['c']);
    const count = await store.client.POST('/v1/collections/{c}/count', { params: { path: { c: store.collection } }, body: {} });
    expect(count.data).toEqual({ count: 5 });
    const hits = await store.similaritySearch('the cat sat on the mat again', 1);
    expect(hits[0]).toMatchObject({ id: 'c', pageContent: 'the cat sat on the mat again', metadata: { n: 99 } });

    // Without ids the service makes them, distinct and returned in order.
    const made = await store.addDocuments([new Document({ pageContent: 'x y z' }), new Document({ pageContent: 'y z w' })]);
    expect(made).toHaveLength(2);
    expect(new Set(made).size).toBe(2);
    expect(made).not.toContain('');
  });

  it('returns scores ordered best first: similarity descending, L2 distance ascending', async () => {
    const cosine = await HyperSyncVectorStore.fromTexts(TEXTS, METADATAS, embeddings, config());
    const query = await embeddings.embedQuery('the cat sat on the mat');
    const scored = await cosine.similaritySearchVectorWithScore(query, 5);
    expect(scored).toHaveLength(5);
    expect(scored[0][0].pageContent).toBe(TEXTS[0]);
    expect(scored[0][1]).toBeCloseTo(1, 5);
    const scores = scored.map(([, s]) => s);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));

    const l2 = await HyperSyncVectorStore.fromTexts(TEXTS, METADATAS, embeddings, config({ metric: 'l2' }));
    const distances = (await l2.similaritySearchWithScore('the cat sat on the mat', 5, { lang: 'en' })).map(([, s]) => s);
    expect(distances).toHaveLength(2);
    expect(distances[0]).toBeCloseTo(0, 5);
    expect(distances).toEqual([...distances].sort((a, b) => a - b));
  });

  it('maxMarginalRelevanceSearch trades a near-duplicate for a different document', async () => {
    const store = await HyperSyncVectorStore.fromTexts(
      ['apple banana cherry', 'apple banana cherry date', 'apple kiwi lemon', 'melon grape orange'],
      [{ group: 'fruit' }, { group: 'fruit' }, { group: 'fruit' }, { group: 'other' }],
      embeddings,
      config(),
    );
    const similar = await store.similaritySearch('apple banana', 2);
    expect(similar.map((d) => d.pageContent)).toEqual(['apple banana cherry', 'apple banana cherry date']);
    const diverse = await store.maxMarginalRelevanceSearch('apple banana', { k: 2, fetchK: 4, lambda: 0.5 }, undefined);
    expect(diverse.map((d) => d.pageContent)).toEqual(['apple banana cherry', 'apple kiwi lemon']);
    expect(diverse[1]).toMatchObject({ metadata: { group: 'fruit' } });
    // The filter applies to the candidates too.
    const filtered = await store.maxMarginalRelevanceSearch(
      'apple banana',
      { k: 2, lambda: 0.5, filter: { group: 'fruit', $not: { 'group.x': { $exists: true } } } },
      undefined,
    );
    expect(filtered.map((d) => d.metadata.group as string)).toEqual(['fruit', 'fruit']);

    const mmrRetriever = store.asRetriever({ k: 2, searchType: 'mmr', searchKwargs: { fetchK: 4, lambda: 0.5 } });
    expect((await mmrRetriever.invoke('apple banana')).map((d) => d.pageContent)).toEqual([
      'apple banana cherry',
      'apple kiwi lemon',
    ]);
  });

  it('deletes by ids and by filter', async () => {
    const store = new HyperSyncVectorStore(embeddings, config());
    await store.addDocuments(
      TEXTS.map((pageContent, i) => new Document({ pageContent, metadata: METADATAS[i] })),
      { ids: ['t0', 't1', 't2', 't3', 't4'] },
    );
    await store.delete({ ids: ['t0', 't3'] });
    const left = await store.similaritySearch('cat', 10);
    expect(left.map((d) => d.id).sort()).toEqual(['t1', 't2', 't4']);

    await store.delete({ filter: { tags: { $contains: 'finance' } } });
    expect((await store.similaritySearch('cat', 10)).map((d) => d.id)).toEqual(['t1']);
    await store.delete({ ids: ['absent'] });
    await expect(store.delete({} as never)).rejects.toThrow(TypeError);
  });

  it('fromExistingIndex opens an existing collection, and creates a missing one only when told to', async () => {
    const cfg = config();
    await HyperSyncVectorStore.fromTexts(TEXTS, METADATAS, embeddings, cfg);
    const existing = await HyperSyncVectorStore.fromExistingIndex(embeddings, { ...cfg, dim: embeddings.dim });
    expect((await existing.similaritySearch('stock markets', 1))[0]).toMatchObject({
      pageContent: TEXTS[2],
      metadata: METADATAS[2],
    });
    await expect(HyperSyncVectorStore.fromExistingIndex(embeddings, { ...cfg, dim: 3 })).rejects.toThrow(RangeError);
    await expect(HyperSyncVectorStore.fromExistingIndex(embeddings, { ...cfg, metric: 'ip' })).rejects.toThrow(RangeError);

    const missing = config();
    const refused = await HyperSyncVectorStore.fromExistingIndex(embeddings, missing).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HyperSyncApiError);
    expect(refused).toMatchObject({ status: 404, code: 'collection_not_found' });

    const created = await HyperSyncVectorStore.fromExistingIndex(embeddings, { ...missing, createIfMissing: true, metric: 'ip' });
    const status = await created.client.GET('/v1/collections/{c}', { params: { path: { c: missing.collection } } });
    expect(status.data).toMatchObject({ dim: embeddings.dim, metric: 'ip', count: 0 });
    await created.addDocuments([new Document({ pageContent: 'hello world' })]);
    expect(await created.similaritySearch('hello', 1)).toHaveLength(1);
  });

  it('rejects a bad filter, a bad key and a missing collection with HyperSyncApiError', async () => {
    const store = await HyperSyncVectorStore.fromTexts(TEXTS, METADATAS, embeddings, config());
    const bad = await store
      .similaritySearch('cat', 3, { $or: [{ lang: 'en' }, { year: { $between: [1, 2] } }] })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(HyperSyncApiError);
    expect(bad).toMatchObject({ status: 400, code: 'invalid_argument' });
    expect((bad as Error).message).toContain('filter.$or[1].year.$between');

    const mismatch = await store.similaritySearch('cat', 3, { year: { $gt: true } }).catch((e: unknown) => e);
    expect(mismatch).toMatchObject({ status: 400, code: 'invalid_argument' });

    const anonymous = new HyperSyncVectorStore(embeddings, { url, collection: store.collection });
    await expect(anonymous.similaritySearch('cat', 1)).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    const nowhere = new HyperSyncVectorStore(embeddings, config());
    await expect(nowhere.similaritySearch('cat', 1)).rejects.toMatchObject({ status: 404, code: 'collection_not_found' });

    expect(() => new HyperSyncVectorStore(embeddings, config({ batchSize: 1001 }))).toThrow(RangeError);
    expect(() => new HyperSyncVectorStore(embeddings, { url, collection: '' })).toThrow(TypeError);
  });

  it('works as a retriever with a filter', async () => {
    const store = await HyperSyncVectorStore.fromTexts(TEXTS, METADATAS, embeddings, config());
    const retriever = store.asRetriever({ k: 2, filter: { lang: 'de' } });
    const docs = await retriever.invoke('interest rates at the banks');
    expect(docs.map((d) => d.pageContent)).toEqual([TEXTS[4], TEXTS[1]]);
    expect(docs.every((d) => d.metadata.lang === 'de')).toBe(true);

    const byPosition = store.asRetriever(1, { 'source.kind': 'book' });
    expect((await byPosition.invoke('cat'))[0]).toMatchObject({ pageContent: TEXTS[3] });
  });
});
