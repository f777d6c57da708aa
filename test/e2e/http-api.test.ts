import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Service } from '../../src/service.js';

let dataDir: string;
let svc: Service;
let base: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'http-api-'));
  svc = await Service.start(
    loadConfig({ HYPERSYNC_PORT: '0', HYPERSYNC_HOST: '127.0.0.1', HYPERSYNC_DATA_DIR: dataDir, HYPERSYNC_DEVICE: 'cpu' }),
    pino({ level: 'silent' }),
  );
  base = `http://127.0.0.1:${svc.port}`;
});
afterAll(async () => {
  await svc.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** The parts of answers these tests read. */
interface ApiBody {
  error?: { code: string; message: string };
  ids?: string[];
  lsn?: number;
  collections?: unknown[];
  results?: Record<string, unknown>[][];
  [k: string]: unknown;
}

async function call(method: string, path: string, body?: unknown, raw?: string): Promise<{ status: number; json: ApiBody }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as ApiBody };
}

const b64 = (v: number[]): string => Buffer.from(new Float32Array(v).buffer).toString('base64');

describe('v1 collections, items and queries over HTTP', () => {
  it('creates, fills, reads, queries, checks and drops a collection', async () => {
    expect((await call('POST', '/v1/collections', { name: 'docs', dim: 3, metric: 'l2' })).status).toBe(201);
    expect((await call('GET', '/v1/collections')).json.collections).toEqual([{ name: 'docs', dim: 3, metric: 'l2' }]);
    const stored = await call('POST', '/v1/collections/docs/items', {
      items: [
        { id: 'a', vector: [1, 0, 0], content: 'alpha', metadata: { n: 1 } },
        { id: 'b', vector: b64([0, 1, 0]), content: 'beta' },
        { id: 'c', vector: [0.1, 0.2, 0.3] },
      ],
    });
    expect(stored.status).toBe(200);
    expect(stored.json.ids).toEqual(['a', 'b', 'c']);
    expect(stored.json.lsn).toBeGreaterThan(0);
    const got = await call('GET', '/v1/collections/docs/items/b');
    expect(got.json).toMatchObject({ id: 'b', vector: [0, 1, 0], content: 'beta', version: 1 });
    const q = await call('POST', '/v1/collections/docs/query', {
      queries: [{ vector: [0.9, 0, 0] }, { vector: b64([0, 1, 0.1]) }],
      k: 2,
      include: ['content', 'metadata'],
      minLsn: stored.json.lsn,
    });
    expect(q.status).toBe(200);
    expect(q.json.results?.[0][0]).toMatchObject({ id: 'a', content: 'alpha', metadata: { n: 1 }, source: 'hvs+nvm' });
    expect(q.json.results?.[1][0]).toMatchObject({ id: 'b' });
    expect(q.json.results?.[0]).toHaveLength(2);
    const st = await call('GET', '/v1/collections/docs');
    expect(st.json).toMatchObject({ count: 3, hvs: { count: 3, ready: true }, nvm: { count: 3 } });
    expect((await call('GET', '/v1/collections/docs/consistency')).json).toMatchObject({ consistent: true });
    expect((await call('DELETE', '/v1/collections/docs/items/c')).json).toMatchObject({ deleted: 1 });
    expect((await call('GET', '/v1/collections/docs/items/c')).status).toBe(404);
    expect((await call('DELETE', '/v1/collections/docs/items/c')).status).toBe(404);
    expect((await call('DELETE', '/v1/collections/docs')).status).toBe(204);
    expect((await call('GET', '/v1/collections/docs')).status).toBe(404);
  });

  it('names the problem and the field: non-finite numbers, strings in vectors, zero vectors, a missing content-type', async () => {
    await call('POST', '/v1/collections', { name: 'msgs', dim: 3, metric: 'cosine' });
    const json = { 'content-type': 'application/json' };
    const cases: [string, string, string, Record<string, string>, number, RegExp][] = [
      [
        '1e999 in a vector',
        'items',
        '{"items":[{"vector":[1,1e999,3]}]}',
        json,
        400,
        /body\.items\.0\.vector: element 1 is Infinity/,
      ],
      [
        'a string in a vector',
        'items',
        '{"items":[{"vector":[1,"2",3]}]}',
        json,
        400,
        /body\.items\.0\.vector: element 1 is a string, not a number/,
      ],
      [
        'null in a vector',
        'items',
        '{"items":[{"vector":[1,2,null]}]}',
        json,
        400,
        /body\.items\.0\.vector: element 2 is null, not a number/,
      ],
      [
        'an object for a vector',
        'items',
        '{"items":[{"vector":{"x":1}}]}',
        json,
        400,
        /body\.items\.0\.vector: a vector is an array of numbers or a base64 string/,
      ],
      [
        '-1e999 in a query',
        'query',
        '{"queries":[{"vector":[-1e999,1,1]}],"k":1}',
        json,
        400,
        /body\.queries\.0\.vector: element 0 is -Infinity/,
      ],
      [
        'the zero vector at item 2',
        'items',
        '{"items":[{"vector":[1,2,3]},{"vector":[1,2,3]},{"vector":[0,0,0]}]}',
        json,
        400,
        /^items\[2\]\.vector is the zero vector/,
      ],
      [
        'no content-type',
        'items',
        '{"items":[{"vector":[1,2,3]}]}',
        {},
        415,
        /content-type: application\/json \(the request has content-type 'text\/plain/,
      ],
      [
        'a form body',
        'items',
        'a=1',
        { 'content-type': 'application/x-www-form-urlencoded' },
        415,
        /application\/x-www-form-urlencoded/,
      ],
    ];
    for (const [what, route, body, headers, status, message] of cases) {
      const res = await fetch(`${base}/v1/collections/msgs/${route}`, { method: 'POST', headers, body });
      const out = (await res.json()) as ApiBody;
      expect(res.status, what).toBe(status);
      expect(out.error?.message, what).toMatch(message);
    }
    expect((await call('GET', '/v1/collections/msgs')).json).toMatchObject({ count: 0 });
  });

  it('answers every bad input with the right 4xx and a message, and changes nothing', async () => {
    await call('POST', '/v1/collections', { name: 'm', dim: 3, metric: 'cosine' });
    await call('POST', '/v1/collections/m/items', { items: [{ id: 'keep', vector: [1, 2, 3] }] });
    const cases: [string, string, unknown, number, string?][] = [
      ['wrong dimension', '/v1/collections/m/items', { items: [{ vector: [1, 2] }] }, 400],
      ['non-numbers', '/v1/collections/m/items', { items: [{ vector: [1, 'x', 3] }] }, 400],
      ['null vector', '/v1/collections/m/items', { items: [{ vector: null }] }, 400],
      ['null item', '/v1/collections/m/items', { items: [null] }, 400],
      ['non-finite', '/v1/collections/m/items', undefined, 400, '{"items":[{"vector":[1e999,1,1]}]}'],
      ['zero vector for cosine', '/v1/collections/m/items', { items: [{ vector: [0, 0, 0] }] }, 400],
      ['bad base64 length', '/v1/collections/m/items', { items: [{ vector: 'AAAA' + 'AA' }] }, 400],
      ['empty batch', '/v1/collections/m/items', { items: [] }, 400],
      [
        'oversized batch',
        '/v1/collections/m/items',
        { items: Array.from({ length: 100_001 }, () => ({ vector: [1, 1, 1] })) },
        400,
      ],
      ['unknown field', '/v1/collections/m/items', { items: [{ vector: [1, 1, 1] }], bogus: 1 }, 400],
      ['k of 0', '/v1/collections/m/query', { queries: [{ vector: [1, 1, 1] }], k: 0 }, 400],
      ['k of 10^9', '/v1/collections/m/query', { queries: [{ vector: [1, 1, 1] }], k: 1e9 }, 400],
      ['query without vector or text', '/v1/collections/m/query', { queries: [{}], k: 1 }, 400],
      ['query with wrong dimension', '/v1/collections/m/query', { queries: [{ vector: [1] }], k: 1 }, 400],
      ['unknown collection', '/v1/collections/nope/items', { items: [{ vector: [1, 1, 1] }] }, 404],
      ['unknown collection query', '/v1/collections/nope/query', { queries: [{ vector: [1, 1, 1] }], k: 1 }, 404],
      ['duplicate collection', '/v1/collections', { name: 'm', dim: 3 }, 409],
      ['bad collection name', '/v1/collections', { name: '1-bad name', dim: 3 }, 400],
      ['dimension too large', '/v1/collections', { name: 'big', dim: 5000 }, 400],
      ['malformed JSON', '/v1/collections/m/items', undefined, 400, '{"items": [{"vector": [1, 2'],
    ];
    for (const [what, path, body, status, raw] of cases) {
      const r = await call('POST', path, body, raw);
      expect(r.status, what).toBe(status);
      expect(r.json.error?.message.length, what).toBeGreaterThan(0);
    }
    // A body over the 64 MiB limit.
    const huge = await fetch(`${base}/v1/collections/m/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"items":[{"content":"${'x'.repeat(65 * 2 ** 20)}","vector":[1,1,1]}]}`,
    });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
    const st = await call('GET', '/v1/collections/m');
    expect(st.json).toMatchObject({ count: 1, hvs: { count: 1 } });
    expect((await call('GET', '/v1/collections/m/items/keep')).status).toBe(200);
  });
});

describe('metrics and the OpenAPI document', () => {
  it('serves Prometheus metrics with request latency by route and HVS, cache and WAL gauges', async () => {
    await call('POST', '/v1/collections', { name: 'metered', dim: 2, metric: 'ip' });
    await call('POST', '/v1/collections/metered/items', { items: [{ id: 'a', vector: [1, 2] }] });
    // The same query twice: the second is answered by the result cache.
    for (let i = 0; i < 2; i++) {
      await call('POST', '/v1/collections/metered/query', { queries: [{ vector: [1, 0] }], k: 1, include: ['content'] });
    }
    const { json: stats } = await call('GET', '/v1/collections/metered');
    expect(stats.resultCache).toMatchObject({ hits: 1, misses: 1, hitRatio: 0.5, entries: 1 });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(
      /hypersync_http_request_duration_seconds_count\{method="POST",route="\/v1\/collections\/:c\/query",status="200"\} [1-9]/,
    );
    expect(text).toMatch(/hypersync_hvs_vectors\{collection="metered"\} 1/);
    expect(text).toMatch(/hypersync_hvs_bytes\{collection="metered"\} [1-9]/);
    expect(text).toMatch(/hypersync_cache_hit_ratio \d/);
    expect(text).toMatch(/^hypersync_result_cache_hits_total [1-9]/m);
    expect(text).toMatch(/^hypersync_result_cache_misses_total [1-9]/m);
    expect(text).toMatch(/^hypersync_result_cache_bytes [1-9]/m);
    expect(text).toMatch(/hypersync_wal_pending_records 0/);
  });

  it('labels a route by its template, the same for 2xx and errors, without a trailing slash', async () => {
    await call('POST', '/v1/collections', { name: 'labels', dim: 2, metric: 'l2' });
    await call('POST', '/v1/collections/labels/items', { items: [{ id: 'a', vector: [1, 2] }] });
    expect((await call('GET', '/v1/collections/labels/items/a')).status).toBe(200);
    expect((await call('GET', '/v1/collections/labels/items/missing')).status).toBe(404);
    expect((await call('GET', '/v1/collections')).status).toBe(200);
    expect((await call('GET', '/v1/jobs/nope')).status).toBeGreaterThanOrEqual(400);
    expect((await call('GET', '/v1/collections/labels/items/a?include=vector')).status).toBeLessThan(500);
    const text = await (await fetch(`${base}/metrics`)).text();
    const routes = new Set(
      [...text.matchAll(/hypersync_http_request_duration_seconds_count\{[^}]*route="([^"]*)"/g)].map((m) => m[1]),
    );
    const item = '/v1/collections/:c/items/:id';
    expect(text).toMatch(new RegExp(`route="${item}",status="200"`));
    expect(text).toMatch(new RegExp(`route="${item}",status="404"`));
    expect(routes).toContain('/v1/collections');
    expect(routes).toContain('/v1/jobs/:id');
    for (const r of routes) {
      expect(
        r === 'unmatched' ||
          r.startsWith('/v1/') ||
          ['/metrics', '/healthz', '/readyz', '/openapi.json', '/v1/collections'].includes(r),
        r,
      ).toBe(true);
      expect(r.length > 1 && r.endsWith('/'), r).toBe(false);
    }
  });

  it('serves an OpenAPI 3.1 document whose request schemas come from the validators', async () => {
    type Schema = { properties?: Record<string, unknown>; required?: string[]; $ref?: string };
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: { 'application/json': { schema: Schema } } } }>>;
      components: { schemas: Record<string, Schema> };
    };
    expect(doc.openapi).toBe('3.1.0');
    // Request bodies are named schemas under components: follow the reference.
    const bodyOf = (path: string): Schema | undefined => {
      const s = doc.paths[path].post.requestBody?.content['application/json'].schema;
      return s?.$ref ? doc.components.schemas[s.$ref.replace('#/components/schemas/', '')] : s;
    };
    expect(bodyOf('/v1/collections/{c}/items')?.required).toContain('items');
    expect(Object.keys(bodyOf('/v1/collections/{c}/query')?.properties ?? {})).toEqual(
      expect.arrayContaining(['queries', 'k', 'include', 'minLsn', 'filter', 'minScore']),
    );
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/collections', '/v1/collections/{c}', '/v1/encode', '/metrics']),
    );
  });
});
