import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { createClient, type HyperSyncClient } from '../../src/client/index.js';
import { loadConfig } from '../../src/config.js';
import { RESPONSE_SCHEMAS, type ResponseSchemaName } from '../../src/http/response-schemas.js';
import { Service } from '../../src/service.js';
import { clusteredSource, recallAt } from '../fixtures/clustered.js';
import { freshSeed, rng } from '../fixtures/random.js';

const KEY = 'client-test-key';
let dataDir: string;
let svc: Service;
let base: string;
let hs: HyperSyncClient;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'client-'));
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
  base = `http://127.0.0.1:${svc.port}`;
  hs = createClient(base, { apiKey: KEY });
});
afterAll(async () => {
  await svc.close();
  await rm(dataDir, { recursive: true, force: true });
});

/**
 * The data of a 2xx answer, checked against the document's schema for it (strict: a field the
 * server sends that the document does not name fails here, and so does a missing one).
 */
function expectOk<N extends ResponseSchemaName>(
  name: N,
  r: { data?: unknown; error?: unknown; response: Response },
): z.infer<(typeof RESPONSE_SCHEMAS)[N]> {
  expect(r.error, `${r.response.status} ${JSON.stringify(r.error)}`).toBeUndefined();
  return RESPONSE_SCHEMAS[name].parse(r.data) as z.infer<(typeof RESPONSE_SCHEMAS)[N]>;
}

describe('hypersync/client against the real HTTP service', () => {
  it('creates, stores, queries, gets, deletes, lists and drops through typed calls', async () => {
    const c = { path: { c: 'docs' } };
    const created = await hs.POST('/v1/collections', { body: { name: 'docs', dim: 3, metric: 'l2' } });
    expect(created.response.status).toBe(201);
    expect(expectOk('Collection', created)).toEqual({ name: 'docs', dim: 3, metric: 'l2' });

    const stored = expectOk(
      'StoreResult',
      await hs.POST('/v1/collections/{c}/items', {
        params: c,
        body: {
          items: [
            { id: 'a', vector: [1, 0, 0], content: 'alpha', metadata: { n: 1 } },
            { id: 'b', vector: [0, 1, 0], content: 'beta' },
            { id: 'c', vector: [0.1, 0.2, 0.3] },
          ],
        },
      }),
    );
    expect(stored).toMatchObject({ ids: ['a', 'b', 'c'], persisted: true });

    const q = expectOk(
      'QueryResult',
      await hs.POST('/v1/collections/{c}/query', {
        params: c,
        body: { queries: [{ vector: [0.9, 0, 0] }], k: 2, include: ['content', 'metadata', 'vector'], minLsn: stored.lsn },
      }),
    );
    expect(q.results[0]).toHaveLength(2);
    expect(q.results[0][0]).toMatchObject({ id: 'a', content: 'alpha', metadata: { n: 1 }, vector: [1, 0, 0], version: 1 });

    const got = expectOk('Item', await hs.GET('/v1/collections/{c}/items/{id}', { params: { path: { c: 'docs', id: 'b' } } }));
    expect(got).toMatchObject({ id: 'b', vector: [0, 1, 0], content: 'beta', metadata: {}, version: 1 });

    const status = expectOk('CollectionStatus', await hs.GET('/v1/collections/{c}', { params: c }));
    expect(status).toMatchObject({ count: 3, hvs: { count: 3 }, nvm: { count: 3 } });

    const deleted = await hs.DELETE('/v1/collections/{c}/items/{id}', { params: { path: { c: 'docs', id: 'c' } } });
    expect(expectOk('DeleteResult', deleted)).toMatchObject({ deleted: 1 });
    const again = await hs.DELETE('/v1/collections/{c}/items/{id}', { params: { path: { c: 'docs', id: 'c' } } });
    expect(again.response.status).toBe(404);
    expect(RESPONSE_SCHEMAS.Error.parse(again.error).error.code).toBe('not_found');

    expect(expectOk('CollectionList', await hs.GET('/v1/collections')).collections).toEqual([
      { name: 'docs', dim: 3, metric: 'l2' },
    ]);
    const dropped = await hs.DELETE('/v1/collections/{c}', { params: c });
    expect(dropped.response.status).toBe(204);
    expect(expectOk('CollectionList', await hs.GET('/v1/collections')).collections).toEqual([]);
    const gone = await hs.GET('/v1/collections/{c}', { params: c });
    expect(gone.response.status).toBe(404);
    expect(gone.error?.error.code).toBe('collection_not_found');
  });

  it('answers a bad body, a missing key and the probes with the documented shapes', async () => {
    const bad = await hs.POST('/v1/collections', { body: { name: '1bad', dim: 3 } });
    expect(bad.response.status).toBe(400);
    expect(RESPONSE_SCHEMAS.Error.parse(bad.error).error).toMatchObject({ code: 'invalid_argument' });

    const anonymous = await createClient(base).GET('/v1/collections');
    expect(anonymous.response.status).toBe(401);
    expect(RESPONSE_SCHEMAS.Error.parse(anonymous.error).error.code).toBe('unauthorized');

    expect(expectOk('Liveness', await hs.GET('/healthz'))).toEqual({ status: 'ok' });
    const ready = await hs.GET('/readyz');
    RESPONSE_SCHEMAS.HealthReport.parse(ready.data ?? ready.error);
    expect(expectOk('OpenApiDocument', await hs.GET('/openapi.json')).openapi).toBe('3.1.0');
    const metrics = await hs.GET('/metrics', { parseAs: 'text' });
    expect(metrics.data).toMatch(/# HELP/);
  });

  it('filters, counts, scrolls, gets many, patches and deletes by filter through typed calls', async () => {
    const c = { path: { c: 'meta' } };
    expect((await hs.POST('/v1/collections', { body: { name: 'meta', dim: 2, metric: 'ip' } })).response.status).toBe(201);
    const items = Array.from({ length: 12 }, (_, i) => ({
      id: `i${String(i).padStart(2, '0')}`,
      vector: [1, i / 10],
      content: `item ${i}`,
      metadata: { lang: i % 2 === 0 ? 'de' : 'en', year: 2010 + i, source: { kind: i < 6 ? 'web' : 'pdf' } },
    }));
    const { lsn } = expectOk('StoreResult', await hs.POST('/v1/collections/{c}/items', { params: c, body: { items } }));

    const q = expectOk(
      'QueryResult',
      await hs.POST('/v1/collections/{c}/query', {
        params: c,
        body: {
          queries: [{ vector: [0, 1] }, { vector: [0, 1], filter: { 'source.kind': 'web' } }],
          k: 3,
          filter: { lang: 'de' },
          include: ['metadata'],
          minLsn: lsn,
        },
      }),
    );
    expect(q.results[0].map((h) => h.id)).toEqual(['i10', 'i08', 'i06']);
    expect(q.results[1].map((h) => h.id)).toEqual(['i05', 'i04', 'i03']);
    const scored = expectOk(
      'QueryResult',
      await hs.POST('/v1/collections/{c}/query', { params: c, body: { queries: [{ vector: [0, 1] }], k: 10, minScore: 0.95 } }),
    );
    expect(scored.results[0].map((h) => h.id)).toEqual(['i11', 'i10']);

    expect(
      expectOk(
        'CountResult',
        await hs.POST('/v1/collections/{c}/count', { params: c, body: { filter: { year: { $gte: 2015 } } } }),
      ),
    ).toEqual({
      count: 7,
    });
    expect(expectOk('CountResult', await hs.POST('/v1/collections/{c}/count', { params: c, body: {} }))).toEqual({ count: 12 });
    const first = expectOk(
      'ScrollResult',
      await hs.POST('/v1/collections/{c}/items/scroll', {
        params: c,
        body: { filter: { lang: 'en' }, limit: 4, include: ['content'] },
      }),
    );
    expect(first.items.map((it) => it.id)).toEqual(['i01', 'i03', 'i05', 'i07']);
    expect(first.items[0]).toEqual({ id: 'i01', version: 1, source: 'nvm', content: 'item 1' });
    const second = expectOk(
      'ScrollResult',
      await hs.POST('/v1/collections/{c}/items/scroll', {
        params: c,
        body: { filter: { lang: 'en' }, limit: 4, cursor: first.nextCursor ?? undefined },
      }),
    );
    expect(second).toMatchObject({ items: [{ id: 'i09' }, { id: 'i11' }], nextCursor: null });

    const many = expectOk(
      'GetItemsResult',
      await hs.POST('/v1/collections/{c}/items/get', { params: c, body: { ids: ['i03', 'nope', 'i00'], include: ['vector'] } }),
    );
    expect(many.items).toEqual([
      { id: 'i03', version: 1, source: 'nvm', vector: [1, Math.fround(0.3)] },
      { id: 'i00', version: 1, source: 'nvm', vector: [1, 0] },
    ]);

    const patched = expectOk(
      'PatchResult',
      await hs.PATCH('/v1/collections/{c}/items/{id}', {
        params: { path: { c: 'meta', id: 'i03' } },
        body: { metadata: { lang: 'fr' } },
      }),
    );
    expect(patched).toMatchObject({ id: 'i03', version: 2 });
    const fr = expectOk(
      'QueryResult',
      await hs.POST('/v1/collections/{c}/query', {
        params: c,
        body: { queries: [{ vector: [1, 0] }], k: 5, filter: { lang: 'fr' }, minLsn: patched.lsn, include: ['content'] },
      }),
    );
    expect(fr.results[0]).toMatchObject([{ id: 'i03', content: 'item 3' }]);

    const plan = expectOk(
      'QueryPlan',
      await hs.POST('/v1/collections/{c}/explain', { params: c, body: { k: 3, filter: { lang: 'de' } } }),
    );
    expect(plan.path).toBe('hvs');
    const search = plan.steps.find((st) => st.step === 'hvs-search') as { filter?: { matching: number } } | undefined;
    expect(search?.filter?.matching).toBe(6);

    const deleted = expectOk(
      'DeleteResult',
      await hs.POST('/v1/collections/{c}/items/delete', { params: c, body: { filter: { year: { $lt: 2013 } } } }),
    );
    expect(deleted.deleted).toBe(3);
    expect(
      expectOk('DeleteResult', await hs.POST('/v1/collections/{c}/items/delete', { params: c, body: { ids: ['i11'] } })).deleted,
    ).toBe(1);
    expect(expectOk('CountResult', await hs.POST('/v1/collections/{c}/count', { params: c, body: {} }))).toEqual({ count: 8 });

    // Bad filters and patches are 400s naming the bad clause.
    const bad = await hs.POST('/v1/collections/{c}/count', {
      params: c,
      body: { filter: { $or: [{ lang: 'de' }, { year: { $between: [1, 2] } }] } },
    });
    expect(bad.response.status).toBe(400);
    expect(bad.error?.error.message).toMatch(/filter\.\$or\[1\]\.year\.\$between: unknown operator/);
    // Sent as text: serialising 5,000 levels would overflow the stack here before the server sees it.
    const deep = await fetch(`${base}/v1/collections/meta/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: `{"items":[{"id":"deep","vector":[1,1],"metadata":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}]}`,
    });
    expect(deep.status).toBe(400);
    expect(((await deep.json()) as { error: { message: string } }).error.message).toMatch(/nests at most 16 levels/);
    const nul = await hs.POST('/v1/collections/{c}/items', {
      params: c,
      body: { items: [{ id: 'n', vector: [1, 1], content: 'a\u0000b' }] },
    });
    expect(nul.response.status).toBe(400);
    const emptyPatch = await hs.PATCH('/v1/collections/{c}/items/{id}', { params: { path: { c: 'meta', id: 'i04' } }, body: {} });
    expect(emptyPatch.response.status).toBe(400);
    const both = await hs.POST('/v1/collections/{c}/items/delete', {
      params: c,
      body: { ids: ['i04'], filter: { lang: 'de' } } as never,
    });
    expect(both.response.status).toBe(400);
  });

  it('trains the IVF index as a job and queries it exact, by nprobe or by target recall, through typed calls', async () => {
    const c = { path: { c: 'ann' } };
    expect((await hs.POST('/v1/collections', { body: { name: 'ann', dim: 16, metric: 'cosine' } })).response.status).toBe(201);
    const draw = clusteredSource(rng(freshSeed()), 16, 12, 0.4);
    const vectors = draw(3000);
    expectOk(
      'StoreResult',
      await hs.POST('/v1/collections/{c}/items', {
        params: c,
        body: { items: vectors.map((v, i) => ({ id: `a${i}`, vector: Array.from(v) })) },
      }),
    );
    const flat = expectOk('CollectionStatus', await hs.GET('/v1/collections/{c}', { params: c }));
    expect(flat.hvs.index).toMatchObject({ state: 'flat', minRows: 50_000 });

    const accepted = expectOk('JobAccepted', await hs.POST('/v1/collections/{c}/jobs', { params: c, body: { type: 'index' } }));
    let job = expectOk('Job', await hs.GET('/v1/jobs/{id}', { params: { path: { id: accepted.jobId } } }));
    for (let i = 0; i < 600 && !['completed', 'failed', 'cancelled'].includes(job.state); i++) {
      await new Promise((r) => setTimeout(r, 50));
      job = expectOk('Job', await hs.GET('/v1/jobs/{id}', { params: { path: { id: accepted.jobId } } }));
    }
    expect(job.state, job.error).toBe('completed');
    const status = expectOk('CollectionStatus', await hs.GET('/v1/collections/{c}', { params: c }));
    expect(status.hvs.index).toMatchObject({ state: 'ivf', deltaRows: 0, ivf: { rows: 3000 } });
    const nprobe = status.hvs.index?.ivf?.nprobe;

    const step = (plan: { steps: { step: string }[] }): unknown => plan.steps.find((st) => st.step === 'hvs-search');
    const planned = expectOk('QueryPlan', await hs.POST('/v1/collections/{c}/explain', { params: c, body: { k: 10 } }));
    expect(step(planned)).toMatchObject({ index: { index: 'ivf', nprobe } });
    const exactPlan = expectOk('QueryPlan', await hs.POST('/v1/collections/{c}/explain', { params: c, body: { exact: true } }));
    expect(step(exactPlan)).toMatchObject({ index: { index: 'flat', reason: 'exact: true' } });
    const chosen = expectOk('QueryPlan', await hs.POST('/v1/collections/{c}/explain', { params: c, body: { nprobe: 3 } }));
    expect(step(chosen)).toMatchObject({ index: { index: 'ivf', nprobe: 3 } });

    const queries = draw(20).map((v) => ({ vector: Array.from(v) }));
    const ask = async (extra: Record<string, unknown>) =>
      expectOk('QueryResult', await hs.POST('/v1/collections/{c}/query', { params: c, body: { queries, k: 10, ...extra } }))
        .results;
    const exact = await ask({ exact: true });
    expect(recallAt(exact, await ask({}))).toBeGreaterThanOrEqual(0.95);
    expect(recallAt(exact, await ask({ targetRecall: 1 }))).toBe(1);
    expect((await ask({ nprobe: 1 })).every((l) => l.length === 10)).toBe(true);

    for (const body of [{ nprobe: 0 }, { exact: 'yes' }, { targetRecall: 1.5 }, { exact: true, nprobe: 2 }]) {
      const bad = await hs.POST('/v1/collections/{c}/query', {
        params: c,
        body: { queries, k: 10, ...body } as never,
      });
      expect(bad.response.status, JSON.stringify(body)).toBe(400);
      expect(bad.error?.error.code).toBe('invalid_argument');
    }
  }, 60_000);
});
