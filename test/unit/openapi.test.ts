import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../src/http/openapi.js';
import { RESPONSE_SCHEMAS } from '../../src/http/response-schemas.js';
import { deleteItemsBody, getItemsBody, patchItemBody, scrollBody } from '../../src/http/schemas.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');

interface Operation {
  operationId?: string;
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
  responses: Record<string, { $ref?: string; content?: Record<string, { schema?: { $ref?: string; type?: string } }> }>;
}
interface Doc {
  info: { license?: { name: string; identifier?: string } };
  servers?: { url: string }[];
  components: { schemas: Record<string, unknown>; responses: Record<string, { content: Record<string, { schema: unknown }> }> };
  paths: Record<string, Record<string, Operation>>;
}

const doc = openApiDocument('1.2.3') as unknown as Doc;
const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, op]) => ({ where: `${method.toUpperCase()} ${path}`, path, op })),
);

/** The component a `$ref` names, or undefined when it names none. */
const component = (ref: string | undefined, kind: 'schemas' | 'responses'): unknown => {
  const prefix = `#/components/${kind}/`;
  return ref?.startsWith(prefix) ? (doc.components[kind] as Record<string, unknown>)[ref.slice(prefix.length)] : undefined;
};

describe('the OpenAPI document', () => {
  it('names every operation once, in camelCase', () => {
    const ids = operations.map(({ op }) => op.operationId);
    for (const { where, op } of operations) expect(op.operationId, where).toMatch(/^[a-z][A-Za-z]+$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(
      expect.arrayContaining([
        'createCollection',
        'listCollections',
        'getCollection',
        'dropCollection',
        'storeItems',
        'getItem',
        'deleteItem',
        'patchItem',
        'queryItems',
        'deleteItems',
        'scrollItems',
        'getItems',
        'countItems',
        'explainQuery',
      ]),
    );
  });

  it('gives every 2xx answer with a body a component schema, and every /v1 error answer the Error schema', () => {
    for (const { where, path, op } of operations) {
      const ok = Object.entries(op.responses).filter(([status]) => status.startsWith('2'));
      expect(ok.length, where).toBeGreaterThan(0);
      for (const [status, res] of ok) {
        if (status === '204') continue;
        const [media, { schema }] = Object.entries(res.content ?? {})[0];
        if (media === 'text/plain') expect(schema, where).toEqual({ type: 'string' });
        else expect(component(schema?.$ref, 'schemas'), `${where} ${status}`).toBeDefined();
      }
      if (op.requestBody)
        expect(component(op.requestBody.content['application/json'].schema.$ref, 'schemas'), where).toBeDefined();
      if (!path.startsWith('/v1/')) continue;
      for (const status of ['400', '401', '404', '500', '503']) {
        const res = component(op.responses[status]?.$ref, 'responses') as Doc['components']['responses'][string] | undefined;
        expect(res?.content['application/json'].schema, `${where} ${status}`).toEqual({ $ref: '#/components/schemas/Error' });
      }
    }
    expect(doc.components.schemas.Error).toMatchObject({ required: ['error'] });
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(Object.keys(RESPONSE_SCHEMAS)));
  });

  it('names its license and a server', () => {
    expect(doc.info.license).toEqual({ name: 'MIT', identifier: 'MIT' });
    expect(doc.servers?.length).toBeGreaterThan(0);
  });

  it('passes redocly lint with no errors', async () => {
    // scripts/openapi.ts lint exits non-zero on any error.
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'scripts/openapi.ts', 'lint'], {
      cwd: repo,
      maxBuffer: 16 << 20,
    });
    expect(stdout + stderr).toMatch(/valid/);
  }, 120_000);

  it('matches the committed client types (src/client/schema.ts)', async () => {
    await expect(
      run(process.execPath, ['--import', 'tsx', 'scripts/openapi.ts', 'client', '--check'], { cwd: repo }),
    ).resolves.toBeDefined();
  }, 120_000);
});

describe('the request schemas of the data API', () => {
  it('deletes by ids or by filter, not both and not neither', () => {
    expect(deleteItemsBody.safeParse({ ids: ['a'] }).success).toBe(true);
    expect(deleteItemsBody.safeParse({ filter: { tenant: 'acme' } }).success).toBe(true);
    expect(deleteItemsBody.safeParse({ ids: ['a'], filter: {} }).success).toBe(false);
    expect(deleteItemsBody.safeParse({}).success).toBe(false);
    expect(deleteItemsBody.safeParse({ ids: [] }).success).toBe(false);
  });

  it('scrolls 100 by default, at most 10000', () => {
    expect(scrollBody.parse({})).toEqual({ limit: 100 });
    expect(scrollBody.safeParse({ limit: 10_001 }).success).toBe(false);
    expect(scrollBody.safeParse({ limit: 0 }).success).toBe(false);
    expect(getItemsBody.safeParse({ ids: Array.from({ length: 10_001 }, (_, i) => `${i}`) }).success).toBe(false);
  });

  it('patches metadata, content or both, never nothing', () => {
    expect(patchItemBody.safeParse({ metadata: { a: 1 } }).success).toBe(true);
    expect(patchItemBody.safeParse({ content: null }).success).toBe(true);
    expect(patchItemBody.safeParse({}).success).toBe(false);
    expect(patchItemBody.safeParse({ vector: [1] }).success).toBe(false);
  });
});
