/**
 * What a client sees when PostgreSQL goes away: 503s and /readyz say the database is unavailable
 * without its address. The fault is real: the service reaches PostgreSQL through a TCP proxy of
 * the test's own, which is then shut, so connections are reset and new ones refused.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Service } from '../../src/service.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping the database-down answers: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** A TCP proxy on 127.0.0.1 to `target`; `shut()` resets its connections and stops listening. */
async function proxy(target: URL): Promise<{ port: number; shut: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    shut: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.resetAndDestroy();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(pgProblem !== null && !servicesRequired)('answers while PostgreSQL is down', () => {
  it('503s and /readyz name the problem, not the database address', async () => {
    const db = await createScratchDatabase();
    cleanups.push(db.drop);
    const p = await proxy(new URL(db.url));
    const url = new URL(db.url);
    url.hostname = '127.0.0.1';
    url.port = String(p.port);
    const dataDir = await mkdtemp(join(tmpdir(), 'http-internals-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const svc = await Service.start(
      loadConfig({
        DATABASE_URL: url.toString(),
        HYPERSYNC_PORT: '0',
        HYPERSYNC_HOST: '127.0.0.1',
        HYPERSYNC_DATA_DIR: dataDir,
        HYPERSYNC_DEVICE: 'cpu',
      }),
      pino({ level: 'silent' }),
    );
    cleanups.push(() => svc.close());
    const base = `http://127.0.0.1:${svc.port}`;
    const post = (path: string, body: unknown) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post('/v1/collections', { name: 'before', dim: 2 })).status).toBe(201);

    await p.shut();
    const created = await post('/v1/collections', { name: 'after', dim: 2 });
    const createdText = await created.text();
    expect(created.status, createdText).toBe(503);
    const ready = await fetch(`${base}/readyz`);
    const readyText = await ready.text();
    expect(ready.status).toBe(503);
    expect(JSON.parse(readyText)).toMatchObject({ ready: false, nvm: { reachable: false } });
    for (const text of [createdText, readyText]) {
      expect(text).toMatch(/unavailable/i);
      expect(text).not.toContain('127.0.0.1');
      expect(text).not.toContain(String(p.port));
      expect(text).not.toMatch(/ at .*\.(ts|js):\d+/); // no stack
    }
  });
});
