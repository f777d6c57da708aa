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
});
