/**
 * Fuzzing every route of the real service (PostgreSQL, BullMQ on Redis, API keys on, no rate
 * limit) with fast-check: valid requests with one field mutated, wrong types, odd numbers, random
 * JSON and non-JSON bodies, odd content types, query strings, headers and path parameters full of
 * SQL metacharacters. Every answer is under 500 and free of stacks, paths and addresses; the
 * service stays up; the seeded collections are unchanged and no table appeared or went that a
 * created or dropped collection does not explain, so no input ever ran as SQL.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import fc from 'fast-check';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Service } from '../../src/service.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { AWKWARD_STRINGS, filterValue, metadataValue } from '../fixtures/filter-arbitraries.js';
import { dropPrefix } from '../fixtures/redis.js';
import { routesOf, type Route } from '../fixtures/route-table.js';
import { postgresProblem, redisProblem, servicesRequired, testRedisUrl } from '../fixtures/services.js';
import { tempDir } from '../fixtures/temp-dirs.js';
import { record, scale } from './harness.js';

const REQUESTS = scale(1_000, 10_000);
/** Requests in flight at once. */
const CONCURRENCY = 4;
/** The run's seed: fixed so a failure replays; `HYPERSYNC_FUZZ_SEED` draws another sequence. */
const SEED = Number(process.env.HYPERSYNC_FUZZ_SEED ?? 19_019);

const KEY = 'fuzz-key';
/** Seeded before the fuzz and compared after: only read-only requests may reach them. */
const PLAIN = 'seed_plain';
const META = 'seed_meta';
const SEEDED: readonly string[] = [PLAIN, META];
/** Where valid writes go. */
const SCRATCH = 'scratch';
/** What valid creates make and valid drops remove. */
const NEW = 'fz_new';

const down = (await postgresProblem()) ?? (await redisProblem());
if (down && !servicesRequired) console.warn(`skipping the HTTP fuzz: ${down}`);

// ---------------------------------------------------------------------------------------------
// Inputs

/** A JSON value written as is (`1e999`, a 5,000-deep nesting) where `JSON.stringify` cannot. */
class Raw {
  constructor(readonly text: string) {}
}

/** JSON text of `value`, with every {@link Raw} inside spliced in verbatim. */
function toJson(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (!(v instanceof Raw)) return v;
    raws.push(v.text);
    return `@@raw${raws.length - 1}@@`;
  });
  return text.replace(/"@@raw(\d+)@@"/g, (_m, i: string) => raws[Number(i)]);
}

/** Strings SQL, paths and JSON handle worst, and the targeted ones of issue 19 (NUL, lone surrogates). */
const ODD_STRINGS = [
  ...AWKWARD_STRINGS,
  "'; DROP TABLE hs_collections; --",
  "' OR '1'='1",
  '"; DROP TABLE hs_blocks; --',
  "x'); DELETE FROM hs_blocks; --",
  '$1',
  '$$',
  '$tag$ x $tag$',
  '\\',
  "\\'",
  '%',
  '_',
  '*',
  ';',
  '--',
  '/*',
  "E'\\x00'",
  "'::text",
  'hs_vec_1',
  'a\u0000b',
  '\u0000',
  's\udfff',
  '\ud800',
  '\ud83d',
  '\ufeff',
  '\u202e',
  '..',
  '.',
  '../..',
  '..%2f',
  '%00',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-1',
  '1e999',
  '0x10',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  ' ',
  '\t\n',
  '\r\n',
] as const;

const oddString: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...ODD_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 4000 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ODD_STRINGS), fc.string({ maxLength: 4 })).map(([a, b]) => a + b) },
);

/** Numbers out of every range, and non-finite ones as JSON can only spell them raw. */
const oddNumber: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(-1, 0, -0, 0.5, 1.5, 2 ** 31, 2 ** 53 + 2, 4097, 1025, 100_001, 1e308, -1e308, 5e-324, Number.MAX_VALUE),
  fc.constantFrom('1e999', '-1e999', '1E400', '-0', '0.0000', '123456789012345678901234567890').map((t) => new Raw(t)),
  fc.double(),
);

/** Numbers written as strings, as form fields and careless clients send them. */
const numberString = fc.constantFrom('NaN', 'Infinity', '-Infinity', '-1', '1e999', '0x1f', '1_000', '', ' 1 ', '9'.repeat(400));

/** Nesting deeper than any limit: the stack-overflow cases. */
const deepJson = fc
  .tuple(fc.constantFrom(40, 5_000, 20_000), fc.boolean())
  .map(([depth, obj]) => new Raw(obj ? '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) : '['.repeat(depth) + ']'.repeat(depth)));

/** Filters the grammar refuses: operators it lacks, SQL in field names, wrong shapes. */
const oddFilter: fc.Arbitrary<unknown> = fc.oneof(
  fc.tuple(oddString, oddString).map(([k, v]) => ({ [k]: v })),
  fc
    .tuple(oddString, fc.constantFrom('$gt', '$in', '$regex', '$where', '$eq', '$contains', '$exists', '$and'))
    .map(([v, op]) => ({
      a: { [op]: v },
    })),
  fc.constantFrom(
    { $where: '1=1' },
    { $and: [] },
    { $or: {} },
    { $not: [] },
    { 'a.': 1 },
    { '.a': 1 },
    { 'a..b': 1 },
    { a: { $in: 'x' } },
    { a: { $gt: null } },
    { a: { $gt: {} } },
    { a: { $exists: 'yes' } },
    { a: { $eq: 1, $ne: 1, $gt: 1 } },
    { $and: [{ $or: [{ $not: { $not: { $not: { a: 1 } } } }] }] },
  ),
  deepJson,
);

/** What a field may be replaced with. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: oddString },
  { weight: 3, arbitrary: oddNumber },
  { weight: 2, arbitrary: numberString },
  { weight: 2, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], [[]], { '': '' }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: deepJson },
  { weight: 1, arbitrary: fc.constantFrom(3, 5_000).map((n) => Array.from({ length: n }, (_, i) => i / n)) },
  { weight: 2, arbitrary: filterValue },
  { weight: 2, arbitrary: oddFilter },
  { weight: 1, arbitrary: metadataValue },
  { weight: 1, arbitrary: fc.array(oddString, { minLength: 1, maxLength: 4 }) },
);

type Step = string | number;

/** The path of every value inside `v`, itself (the empty path) first. */
function pathsOf(v: unknown, at: Step[] = []): Step[][] {
  const out: Step[][] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...pathsOf(x, [...at, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...at, k]));
  return out;
}

/** An own property even for `__proto__`, which plain assignment would turn into a prototype. */
function put(target: Record<string | number, unknown>, key: Step, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

type Mutation =
  | { op: 'replace'; value: unknown }
  | { op: 'delete' }
  | { op: 'add'; key: string; value: unknown }
  | { op: 'wrap' }
  | { op: 'stringify' }
  | { op: 'repeat'; times: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: oddValue.map((value) => ({ op: 'replace' as const, value })) },
  { weight: 2, arbitrary: fc.constant({ op: 'delete' as const }) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.oneof(fc.constantFrom('__proto__', 'constructor', 'extra', 'id', 'filter', '$where'), oddString), oddValue)
      .map(([key, value]) => ({ op: 'add' as const, key, value })),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'wrap' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'stringify' as const }) },
  { weight: 1, arbitrary: fc.constantFrom(2, 2_000).map((times) => ({ op: 'repeat' as const, times })) },
);

/** `template` with one value changed by `m`; `pick` in [0, 1) chooses which. */
function mutate(template: unknown, pick: number, m: Mutation): unknown {
  const root = structuredClone(template);
  const paths = pathsOf(root);
  const path = paths[Math.floor(pick * paths.length)];
  const change = (v: unknown): unknown => {
    switch (m.op) {
      case 'replace':
        return m.value;
      case 'wrap':
        return [v];
      case 'stringify':
        return typeof v === 'string' ? v : JSON.stringify(v);
      case 'repeat':
        return Array.from({ length: m.times }, () => v);
      default:
        return v;
    }
  };
  if (m.op === 'add') {
    const target = path.reduce<unknown>((v, s) => (v as Record<Step, unknown>)[s], root);
    if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
      put(target as Record<string, unknown>, m.key, m.value);
      return root;
    }
    return { [m.key]: m.value, ...(root as object) };
  }
  if (path.length === 0) return m.op === 'delete' ? undefined : change(root);
  const parent = path.slice(0, -1).reduce<unknown>((v, s) => (v as Record<Step, unknown>)[s], root) as Record<Step, unknown>;
  const last = path[path.length - 1];
  if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else put(parent, last, change(parent[last]));
  return root;
}

/** A valid request of a route: its path parameters and body. */
interface Template {
  params: Record<string, string>;
  body?: unknown;
}

/**
 * Valid requests per route (`METHOD /path`); a route missing here is fuzzed from `{}` and made-up
 * parameters. Writes name {@link SCRATCH} or {@link NEW}, reads the seeded collections.
 */
const TEMPLATES: Record<string, Template[]> = {
  'POST /v1/collections': [{ params: {}, body: { name: NEW, dim: 3, metric: 'l2' } }],
  'GET /v1/collections/:c': [{ params: { c: PLAIN } }],
  'DELETE /v1/collections/:c': [{ params: { c: NEW } }],
  'GET /v1/collections/:c/consistency': [{ params: { c: META } }],
  'POST /v1/collections/:c/items': [
    {
      params: { c: SCRATCH },
      body: { items: [{ id: 'x1', vector: [0.1, 0.2, 0.3], content: 'hello', metadata: { a: 'b', n: 1 } }], persist: true },
    },
    { params: { c: SCRATCH }, body: { items: [{ id: 'x2', vector: 'AACAPwAAAAAAAIA/' }] } },
  ],
  'GET /v1/collections/:c/items/:id': [
    { params: { c: PLAIN, id: 'a' } },
    { params: { c: PLAIN, id: "'); DROP TABLE hs_blocks; --" } },
  ],
  'DELETE /v1/collections/:c/items/:id': [{ params: { c: SCRATCH, id: 'x1' } }],
  'PATCH /v1/collections/:c/items/:id': [{ params: { c: SCRATCH, id: 'x1' }, body: { metadata: { a: 'c' }, content: 'x' } }],
  'POST /v1/collections/:c/items/delete': [
    { params: { c: SCRATCH }, body: { ids: ['x2'] } },
    { params: { c: SCRATCH }, body: { filter: { a: 'zz' } } },
  ],
  'POST /v1/collections/:c/items/scroll': [
    { params: { c: META }, body: { filter: { a: 'a' }, limit: 10, include: ['metadata', 'content'] } },
  ],
  'POST /v1/collections/:c/items/get': [{ params: { c: PLAIN }, body: { ids: ['a', "it's"], include: ['vector'] } }],
  'POST /v1/collections/:c/count': [{ params: { c: META }, body: { filter: { n: { $gte: 0 } } } }],
  'POST /v1/collections/:c/explain': [{ params: { c: META }, body: { k: 5, filter: { s: 'a' }, exact: true } }],
  'POST /v1/collections/:c/query': [
    { params: { c: META }, body: { queries: [{ text: 'hello' }], k: 3, include: ['metadata'], filter: { s: 'a' } } },
    { params: { c: PLAIN }, body: { queries: [{ vector: [1, 0, 0], filter: { a: 1 } }], k: 2, minScore: -1, nprobe: 4 } },
  ],
  'POST /v1/collections/:c/jobs': [
    { params: { c: PLAIN }, body: { type: 'verify', repair: false, limit: 10 } },
    { params: { c: META }, body: { type: 'reindex', m: 16, key: 'k1', attempts: 2 } },
    { params: { c: META }, body: { type: 'embed', items: [{ id: 'e', text: 'hi', metadata: { a: 1 } }] } },
  ],
  'POST /v1/jobs': [{ params: {}, body: { type: 'verify' } }],
  'GET /v1/jobs/:id': [{ params: { id: 'verify:k1' } }],
  'DELETE /v1/jobs/:id': [{ params: { id: 'nope' } }],
  'POST /v1/encode': [{ params: {}, body: { texts: ['hello', 'wörld'], encoder: 'hashing' } }],
};

/** Requests that only read (or queue a job that no worker here runs): free to reach the seeded collections. */
function readOnly(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return true;
  if (path.startsWith('/v1/jobs') || path.endsWith('/jobs')) return true;
  return method === 'POST' && /\/(query|explain|count|items\/scroll|items\/get)$|^\/v1\/encode$/.test(path);
}

/** Percent-encodes `s`, lone surrogates too (as the bytes a careless encoder writes, not valid UTF-8). */
function encodeComponent(s: string): string {
  let out = '';
  for (const ch of s) {
    const cu = ch.charCodeAt(0);
    if (ch.length === 1 && cu >= 0xd800 && cu <= 0xdfff) {
      out += [0xe0 | (cu >> 12), 0x80 | ((cu >> 6) & 0x3f), 0x80 | (cu & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    } else out += encodeURIComponent(ch);
  }
  return out;
}

/** Path segments sent as they are: bad escapes, traversal, encoded NUL and invalid UTF-8. */
const RAW_SEGMENTS = [
  '%00',
  'a%00b',
  '..%2f..%2fetc%2fpasswd',
  '%2e%2e',
  '..',
  '.',
  '%',
  '%zz',
  '%ED%BF%BF',
  '%FF',
  '%C0%AE',
  'a%2Fb',
  '%25',
  '%20',
  "'",
  '$1',
  "';--",
  '\\',
  '%5C',
  '%27%3B%20DROP%20TABLE%20hs_blocks%3B--',
] as const;

const segment = (valid: string): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant(encodeComponent(valid)) },
    { weight: 3, arbitrary: oddString.map(encodeComponent) },
    { weight: 2, arbitrary: fc.constantFrom(...RAW_SEGMENTS) },
    { weight: 1, arbitrary: fc.constantFrom('', 'A'.repeat(64), 'x'.repeat(600), SCRATCH.toUpperCase()) },
  );

/** Header text Node accepts (Latin-1 without controls). */
const headerText = fc.string({
  unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff })).map((c) => String.fromCharCode(c)),
  maxLength: 40,
});

const authorization: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 24, arbitrary: fc.constant(`Bearer ${KEY}`) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      undefined,
      'Bearer',
      'Bearer ',
      `Basic ${Buffer.from(`user:${KEY}`).toString('base64')}`,
      'Bearer wrong',
      `bearer    ${KEY}   `,
      `Bearer ${KEY}x`,
      `Bearer ${KEY.slice(0, -1)}`,
      `Bearer ${KEY}, Bearer ${KEY}`,
      `Token ${KEY}`,
      `Bearer ${KEY}\u00ff`,
      `Bearer ${'k'.repeat(6000)}`,
      "Bearer ' OR '1'='1",
    ),
  },
  { weight: 1, arbitrary: headerText },
);

const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 10, arbitrary: fc.constant('application/json') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      undefined,
      'text/plain',
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      'application/json; charset=utf-8; x=y',
      'APPLICATION/JSON',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/vnd.api+json',
      '*/*',
      'application/json, text/plain',
      'application/octet-stream',
    ),
  },
  { weight: 1, arbitrary: headerText },
);

/** Headers besides the key and the content type: mostly none, so that most bodies get parsed. */
const extraHeaders: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({}) },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        accept: fc.oneof(fc.constantFrom('application/json', 'text/html', '*/*', ''), headerText),
        'accept-encoding': fc.oneof(fc.constantFrom('gzip', 'br', 'identity;q=0', '*'), headerText),
        'content-encoding': fc.oneof(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'bogus'), headerText),
        'x-forwarded-for': fc.oneof(fc.constantFrom('1.2.3.4', '::1', "'; DROP TABLE hs_blocks; --"), headerText),
        'x-request-id': fc.oneof(headerText, fc.constant('r'.repeat(6000))),
        cookie: headerText,
        range: fc.constantFrom('bytes=0-1', 'bytes=-1', 'x'),
      },
      { requiredKeys: [] },
    ),
  },
);

const QUERY_KEYS = [
  'a',
  'a[]',
  '__proto__',
  '__proto__[polluted]',
  'constructor[prototype][polluted]',
  'limit',
  'k',
  'filter',
  'filter[a]',
  'cursor',
  'include',
  'id',
] as const;

const queryString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  {
    weight: 3,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.oneof(fc.constantFrom(...QUERY_KEYS), oddString),
          fc.oneof(numberString, oddString, fc.constant('y'.repeat(3000))),
        ),
        { minLength: 1, maxLength: 6 },
      )
      .map((pairs) => `?${pairs.map(([k, v]) => `${encodeComponent(k)}=${encodeComponent(v)}`).join('&')}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('?', '?&&&', '?=', '?%', '?%zz', '?a=%E0%A4%A', '?%00=%00', '?a=1&a=2&a=3', '?a[]=1&a[]=2'),
  },
);

type BodyPlan =
  | { kind: 'template' }
  | { kind: 'mutated'; pick: number; mutation: Mutation }
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'none' };

const bodyPlan: fc.Arbitrary<BodyPlan> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'template' as const }) },
  {
    weight: 10,
    arbitrary: fc
      .tuple(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), mutation)
      .map(([pick, m]) => ({ kind: 'mutated' as const, pick, mutation: m })),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => ({ kind: 'json' as const, value })) },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          '{',
          '{"a":',
          '{"a":1}{"b":2}',
          "{'a':1}",
          '[1,]',
          '{"a":1,}',
          '\u0000',
          'NaN',
          '1e999',
          '"\\ud800"',
          '{"__proto__":{"x":1}}',
        ),
        fc.string({ unit: 'binary', maxLength: 40 }),
      )
      .map((text) => ({ kind: 'text' as const, text })),
  },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 200 }).map((bytes) => ({ kind: 'bytes' as const, bytes })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
);

/** Bytes of request line and headers a fuzzed request keeps under (Node's limit is 16 KiB). */
const HEADER_BUDGET = 14_000;

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'] as const;

/** One request as sent. */
interface FuzzRequest {
  method: string;
  route: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

function requestArbitrary(routes: Route[]): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...routes).chain((route) => {
    const key = `${route.method} ${route.path}`;
    const names = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]);
    const templates = TEMPLATES[key] ?? [
      { params: Object.fromEntries(names.map((n) => [n, n === 'c' ? SCRATCH : 'x'])), body: {} },
    ];
    return fc
      .record({
        template: fc.constantFrom(...templates),
        method: fc.oneof(
          { weight: 15, arbitrary: fc.constant(route.method) },
          { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
        ),
        mutateParams: fc.boolean(),
        body: bodyPlan,
        query: queryString,
        authorization,
        contentType,
        extra: extraHeaders,
      })
      .chain((r) =>
        fc
          .tuple(
            ...names.map((n) =>
              r.mutateParams ? segment(r.template.params[n] ?? 'x') : fc.constant(encodeComponent(r.template.params[n] ?? 'x')),
            ),
          )
          .map((segs) => build(route, r.method, names, segs, r.template, r)),
      );
  });
}

/** The request a plan describes, with writes kept off the seeded collections. */
function build(
  route: Route,
  method: string,
  names: string[],
  segs: string[],
  template: Template,
  r: {
    body: BodyPlan;
    query: string;
    authorization: string | undefined;
    contentType: string | undefined;
    extra: Record<string, string>;
  },
): FuzzRequest {
  const values = new Map(names.map((n, i) => [n, segs[i]]));
  if (!readOnly(method, route.path) && values.has('c')) {
    const c = safeDecode(values.get('c')!);
    if (SEEDED.includes(c)) values.set('c', SCRATCH);
    // Keep the scratch collection: drops aim at the ones the creates make.
    if (method === 'DELETE' && route.path === '/v1/collections/:c' && c === SCRATCH) values.set('c', NEW);
  }
  const path = route.path.replace(/:(\w+)/g, (_m, n: string) => values.get(n)!);
  let body: Buffer | undefined;
  const b = r.body;
  if (b.kind === 'template' && template.body !== undefined) body = Buffer.from(toJson(template.body));
  else if (b.kind === 'mutated') {
    const v = mutate(template.body ?? {}, b.pick, b.mutation);
    body = v === undefined ? undefined : Buffer.from(toJson(v));
  } else if (b.kind === 'json') body = Buffer.from(JSON.stringify(b.value));
  else if (b.kind === 'text') body = Buffer.from(b.text);
  else if (b.kind === 'bytes') body = Buffer.from(b.bytes);
  if (method === 'GET' || method === 'HEAD') body = undefined;
  const headers: Record<string, string> = { ...r.extra };
  if (r.authorization !== undefined) headers.authorization = r.authorization;
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  // Past Node's header limit (16 KiB with the request line) the server answers a bare 431 before
  // the app sees anything: the long parts give way until the request fits.
  let query = r.query;
  const size = (): number => path.length + query.length + Object.values(headers).reduce((n, v) => n + v.length + 32, 0);
  if (size() > HEADER_BUDGET) query = '';
  if (size() > HEADER_BUDGET) delete headers['x-request-id'];
  if (size() > HEADER_BUDGET && headers.authorization !== undefined) headers.authorization = `Bearer ${KEY}`;
  return { method, route: `${route.method} ${route.path}`, path: path + query, headers, body };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// The service, its seed and its state

interface Answer {
  status: number;
  text: string;
}

function send(base: URL, agent: Agent, req: FuzzRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: base.hostname,
        port: base.port,
        method: req.method,
        path: req.path,
        agent,
        headers: { ...req.headers, ...(req.body ? { 'content-length': String(req.body.length) } : {}) },
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(new Error('no answer within 60 s')));
    r.on('error', reject);
    r.end(req.body);
  });
}

/** What an answer must not carry: stack frames, source or data paths, the services' addresses. */
function leaks(text: string, secrets: readonly string[]): string | undefined {
  if (/\n\s+at .+:\d+:\d+/.test(text)) return 'a stack trace';
  if (/\.(?:ts|js|mjs|cjs):\d+/.test(text)) return 'a source location';
  if (/node_modules/.test(text)) return 'a node_modules path';
  return secrets.find((s) => text.includes(s));
}

/** Whatever a seeded collection holds, as one digest; and how each tier counts it. */
async function collectionState(svc: Service, name: string): Promise<{ digest: string; stats: unknown; consistent: boolean }> {
  const hash = createHash('sha256');
  let cursor: string | undefined;
  do {
    const page = await svc.hs.scroll(name, {
      limit: 1000,
      include: ['content', 'metadata', 'vector'],
      ...(cursor ? { cursor } : {}),
    });
    for (const it of page.items) hash.update(JSON.stringify({ ...it, vector: it.vector ? Array.from(it.vector) : null }));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  const report = await svc.hs.verifyConsistency(name);
  // The lsn is the store's, moved on by the writes to other collections; the result cache's
  // counters move with every query, which reads but changes nothing.
  const { lsn: _lsn, resultCache: _results, ...stats } = await svc.hs.stats(name);
  return { digest: hash.digest('hex'), stats, consistent: report.consistent };
}

interface Tables {
  /** Every table outside the per-collection vector tables, with its schema. */
  base: string[];
  /** The per-collection vector tables. */
  vectors: string[];
  /** The collections' catalogue: name, id, dim, metric. */
  collections: { name: string; id: number; dim: number; metric: string }[];
}

async function tables(url: string): Promise<Tables> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ t: string }>(
      `SELECT schemaname || '.' || tablename AS t FROM pg_tables
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
    );
    const all = rows.map((r) => r.t);
    const { rows: collections } = await c.query<{ name: string; id: number; dim: number; metric: string }>(
      'SELECT name, id, dim, metric FROM hs_collections ORDER BY name',
    );
    return {
      base: all.filter((t) => !/^public\.hs_vec_\d+$/.test(t)),
      vectors: all.filter((t) => /^public\.hs_vec_\d+$/.test(t)),
      collections,
    };
  } finally {
    await c.end();
  }
}

// ---------------------------------------------------------------------------------------------

describe.skipIf(down !== null && !servicesRequired)('HTTP fuzz', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let svc: Service;
  let dbUrl: string;
  let secrets: string[];

  beforeAll(async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    dbUrl = db.url;
    const dataDir = await tempDir('fuzz-', cleanups);
    const prefix = `fuzz-${randomUUID().slice(0, 8)}`;
    cleanups.push(() => dropPrefix(testRedisUrl, prefix));
    svc = await Service.start(
      loadConfig({
        DATABASE_URL: db.url,
        REDIS_URL: testRedisUrl,
        HYPERSYNC_QUEUE_PREFIX: prefix,
        HYPERSYNC_PORT: '0',
        HYPERSYNC_HOST: '127.0.0.1',
        HYPERSYNC_DATA_DIR: dataDir,
        HYPERSYNC_DEVICE: 'cpu',
        HYPERSYNC_API_KEYS: KEY,
        HYPERSYNC_VERIFY_INTERVAL_MS: '0',
        HYPERSYNC_COMPACT_INTERVAL_MS: '0',
      }),
      pino({ level: 'silent' }),
    );
    cleanups.push(() => svc.close());
    const dbHost = new URL(db.url);
    const redisHost = new URL(testRedisUrl);
    secrets = [dataDir, process.cwd(), dbHost.host, redisHost.host, dbHost.pathname.slice(1), prefix];

    await svc.hs.createCollection(PLAIN, { dim: 3, metric: 'l2' });
    const ids = ['a', 'b', ...AWKWARD_STRINGS.filter((s) => s.length > 0 && s !== 'a' && s !== 'b')];
    await svc.hs.store(
      PLAIN,
      ids.map((id, i) => ({ id, vector: new Float32Array([i, 1 - i / 10, i % 3]), content: `item ${id}` })),
    );
    await svc.hs.createCollection(META, { encoder: 'hashing' });
    const metas = fc.sample(metadataValue, { seed: 7, numRuns: 60 });
    await svc.hs.store(
      META,
      metas.map((metadata, i) => ({ id: `m${i}`, text: `text number ${i} ${JSON.stringify(metadata)}`, metadata })),
    );
    await svc.hs.createCollection(SCRATCH, { dim: 3 });
  }, 120_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it(
    `${REQUESTS} fuzzed requests over every route: no 5xx, no leak, no crash, the seeded data untouched`,
    async () => {
      const routes = routesOf(svc.server);
      expect(routes.length).toBeGreaterThanOrEqual(20); // the walk found the nested routers
      for (const key of Object.keys(TEMPLATES))
        expect(
          routes.map((r) => `${r.method} ${r.path}`),
          key,
        ).toContain(key);

      const before = await Promise.all(SEEDED.map((c) => collectionState(svc, c)));
      const tablesBefore = await tables(dbUrl);

      const requests = fc.sample(requestArbitrary(routes), { seed: SEED, numRuns: REQUESTS });
      const base = new URL(`http://127.0.0.1:${svc.port}`);
      const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
      const problems: string[] = [];
      const statuses = new Map<number, number>();
      let writes = 0;
      let next = 0;
      const describeReq = (i: number, q: FuzzRequest): string =>
        `#${i} (seed ${SEED}) ${q.method} ${q.path.slice(0, 300)} [${q.route}] headers ${JSON.stringify(q.headers).slice(0, 300)} ` +
        `body ${q.body ? JSON.stringify(q.body.toString('utf8').slice(0, 400)) : 'none'}`;
      const worker = async (): Promise<void> => {
        while (next < requests.length) {
          const i = next++;
          const q = requests[i];
          let a: Answer;
          try {
            a = await send(base, agent, q);
          } catch (err) {
            problems.push(`${describeReq(i, q)}: ${(err as Error).message}`);
            continue;
          }
          statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
          if (a.status < 300 && !readOnly(q.method, q.route.split(' ')[1])) writes++;
          const wrong = check(q, a);
          if (wrong) problems.push(`${describeReq(i, q)}: ${wrong} — answered ${a.status} ${a.text.slice(0, 300)}`);
        }
      };
      const check = (q: FuzzRequest, a: Answer): string | undefined => {
        if (a.status >= 500) return 'a 5xx';
        if (a.status === 429) return 'rate limited with the limit off';
        const leak = leaks(a.text, secrets);
        if (leak) return `the answer carries ${leak}`;
        if (a.status < 400 || q.method === 'HEAD') return undefined;
        try {
          const e = (JSON.parse(a.text) as { error?: { code?: unknown; message?: unknown } }).error;
          if (typeof e?.code !== 'string' || typeof e.message !== 'string' || e.message.length === 0)
            return 'an error without code and message';
        } catch {
          return 'an error answer that is not JSON';
        }
        return undefined;
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      agent.destroy();
      console.log(
        `fuzz: ${REQUESTS} requests (seed ${SEED}), ${writes} writes accepted; statuses`,
        Object.fromEntries([...statuses].sort(([x], [y]) => x - y)),
      );
      expect(problems.slice(0, 20), `${problems.length} problems; replay with HYPERSYNC_FUZZ_SEED=${SEED}`).toEqual([]);

      // Alive, and serving.
      expect((await fetch(`${base.origin}/healthz`)).status).toBe(200);
      expect((await fetch(`${base.origin}/readyz`)).status).toBe(200);

      // The seeded collections: the same items, byte for byte, in both tiers.
      const after = await Promise.all(SEEDED.map((c) => collectionState(svc, c)));
      expect(after).toEqual(before);
      expect(after.every((s) => s.consistent)).toBe(true);

      // No SQL ran from input: the same tables, the seeded catalogue rows as they were, and one
      // vector table per collection (created and dropped by the fuzz's valid requests only).
      const tablesAfter = await tables(dbUrl);
      expect(tablesAfter.base).toEqual(tablesBefore.base);
      for (const c of tablesBefore.collections.filter((x) => SEEDED.includes(x.name)))
        expect(tablesAfter.collections).toContainEqual(c);
      expect(tablesAfter.vectors.sort()).toEqual(tablesAfter.collections.map((c) => `public.hs_vec_${c.id}`).sort());
      expect(
        tablesAfter.collections.every((c) => [...SEEDED, SCRATCH, NEW].includes(c.name) || /^[A-Za-z_]\w*$/.test(c.name)),
      ).toBe(true);

      record('bad inputs tried', REQUESTS);
    },
    scale(120_000, 900_000),
  );
});
