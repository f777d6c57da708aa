/**
 * Security headers on every answer, and the per-key (or per-address) rate limit: a real service
 * on an ephemeral port, the embedded store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Service } from '../../src/service.js';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

interface Layer {
  name: string;
  rawPath?: string;
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

/** Every route of an Express app: method and full path, nested routers included. */
function routeTable(stack: Layer[], prefix = ''): { method: string; path: string }[] {
  return stack.flatMap((l) => {
    if (l.route) return Object.keys(l.route.methods).map((m) => ({ method: m.toUpperCase(), path: prefix + l.route!.path }));
    if (l.handle.stack) return routeTable(l.handle.stack, prefix + (l.rawPath ?? ''));
    return [];
  });
}

let lastService: Service | undefined;

async function start(env: Record<string, string>): Promise<string> {
  const dataDir = await mkdtemp(join(tmpdir(), 'http-guard-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const svc = await Service.start(
    loadConfig({
      HYPERSYNC_PORT: '0',
      HYPERSYNC_HOST: '127.0.0.1',
      HYPERSYNC_DATA_DIR: dataDir,
      HYPERSYNC_DEVICE: 'cpu',
      ...env,
    }),
    pino({ level: 'silent' }),
  );
  cleanups.push(() => svc.close());
  lastService = svc;
  return `http://127.0.0.1:${svc.port}`;
}

describe('HTTP guard', () => {
  it('sends security headers on API answers, errors and probes alike', async () => {
    const base = await start({});
    for (const path of ['/healthz', '/v1/collections', '/v1/collections/nope', '/nowhere']) {
      const res = await fetch(`${base}${path}`);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('content-security-policy'), path).toContain("default-src 'self'");
      expect(res.headers.get('x-frame-options'), path).toBe('SAMEORIGIN');
      expect(res.headers.get('x-powered-by'), path).toBeNull();
    }
  });

  it('without HYPERSYNC_RATE_LIMIT nothing is limited', async () => {
    const base = await start({});
    const statuses = await Promise.all(Array.from({ length: 60 }, () => fetch(`${base}/v1/collections`).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
  });

  it('limits each key, and requests without a valid key by address, with 429 and Retry-After', async () => {
    const base = await start({ HYPERSYNC_RATE_LIMIT: '5', HYPERSYNC_API_KEYS: 'k-one,k-two' });
    const get = (key?: string) => fetch(`${base}/v1/collections`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

    // Guessing keys: every wrong key counts against the one client address. The windows are fixed
    // seconds: a burst may straddle a boundary or two (5 more each), never more on this machine.
    const guesses = await Promise.all(Array.from({ length: 30 }, (_, i) => get(`guess-${i}`)));
    const codes = guesses.map((r) => r.status);
    expect(codes.every((s) => s === 401 || s === 429)).toBe(true);
    expect(codes.filter((s) => s === 401).length).toBeLessThanOrEqual(15);
    expect(codes.filter((s) => s === 429).length).toBeGreaterThanOrEqual(15);
    const limited = guesses.find((r) => r.status === 429);
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await limited?.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: 'rate_limited' });
    expect(body.error.message).toContain('at most 5 requests per second');

    // A valid key has its own budget, untouched by the guesses; past it, it is limited too.
    const mine = await Promise.all(Array.from({ length: 16 }, () => get('k-one')));
    expect(mine.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    expect(mine.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(5);
    expect(mine.filter((r) => r.status === 200).length).toBeLessThanOrEqual(10);
    const other = await get('k-two');
    expect(other.status).toBe(200);
    expect(other.headers.get('ratelimit-policy')).toContain('5');

    // Probes are never limited.
    const probes = await Promise.all(Array.from({ length: 20 }, () => fetch(`${base}/healthz`).then((r) => r.status)));
    expect(probes.every((s) => s === 200)).toBe(true);

    // The next second, the budget is back.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await get('k-one')).status).toBe(200);
  });

  it('every /v1 route in the route table needs a key: a new route cannot be forgotten', async () => {
    const base = await start({ HYPERSYNC_API_KEYS: 'secret' });
    const app = lastService!.server.listeners('request')[0] as unknown as { router: { stack: Layer[] } };
    const routes = routeTable(app.router.stack);
    const v1 = routes.filter((r) => r.path.startsWith('/v1/'));
    expect(v1.length).toBeGreaterThanOrEqual(20); // the walk found the nested routers
    expect(
      routes
        .filter((r) => !r.path.startsWith('/v1/'))
        .map((r) => r.path)
        .sort(),
    ).toEqual(['/healthz', '/metrics', '/openapi.json', '/readyz']);
    for (const { method, path } of v1) {
      const url = base + path.replace(/:c\b/, 'docs').replace(/:(\w+)/g, 'x');
      for (const headers of [{}, { authorization: 'Bearer wrong' }] as Record<string, string>[]) {
        const res = await fetch(url, {
          method,
          headers: { 'content-type': 'application/json', ...headers },
          ...(method === 'GET' || method === 'HEAD' ? {} : { body: '{}' }),
        });
        expect(res.status, `${method} ${path}`).toBe(401);
      }
    }
  });

  it('with API keys the open probes count collections instead of naming them, unless HYPERSYNC_PROBE_DETAIL=full', async () => {
    const names = async (env: Record<string, string>, key?: string) => {
      const base = await start(env);
      const auth: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
      const created = await fetch(`${base}/v1/collections`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ name: 'secret_plans', dim: 2 }),
      });
      expect(created.status).toBe(201);
      const ready = (await (await fetch(`${base}/readyz`)).json()) as { hvs: Record<string, unknown> };
      const metrics = await (await fetch(`${base}/metrics`)).text();
      return { ready, metrics };
    };
    const keyed = await names({ HYPERSYNC_API_KEYS: 'k' }, 'k');
    expect(keyed.ready.hvs.collections).toBeUndefined();
    expect(keyed.ready.hvs.collectionStates).toEqual({ loading: 0, ready: 1, failed: 0 });
    expect(JSON.stringify(keyed.ready)).not.toContain('secret_plans');
    expect(keyed.metrics).not.toContain('secret_plans');
    expect(keyed.metrics).toMatch(/^hypersync_hvs_vectors 0$/m);

    const full = await names({ HYPERSYNC_API_KEYS: 'k', HYPERSYNC_PROBE_DETAIL: 'full' }, 'k');
    expect(full.ready.hvs.collections).toEqual({ secret_plans: 'ready' });
    expect(full.metrics).toMatch(/hypersync_hvs_vectors\{collection="secret_plans"\} 0/);

    const open = await names({});
    expect(open.ready.hvs.collections).toEqual({ secret_plans: 'ready' });
    expect(() => loadConfig({ HYPERSYNC_PROBE_DETAIL: 'some' })).toThrow(/HYPERSYNC_PROBE_DETAIL/);
  });

  it('refuses a rate limit that is not a positive integer', () => {
    expect(() => loadConfig({ HYPERSYNC_RATE_LIMIT: '0' })).toThrow(/HYPERSYNC_RATE_LIMIT/);
    expect(() => loadConfig({ HYPERSYNC_RATE_LIMIT: 'fast' })).toThrow(/HYPERSYNC_RATE_LIMIT/);
  });
});
