/**
 * `/metrics` checked by Prometheus's own linter, `promtool check metrics` (Debian's `prometheus`
 * package; `.ci/run` installs it), after traffic of every kind: 2xx, 4xx, queries, writes and a job.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Service } from '../../src/service.js';
import { servicesRequired } from '../fixtures/services.js';

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const promtoolProblem = promtool.error ? `promtool not found (${promtool.error.message})` : null;
if (promtoolProblem && servicesRequired) throw new Error(`CI needs promtool (apt-get install prometheus): ${promtoolProblem}`);
if (promtoolProblem) console.warn(`skipping the promtool check: ${promtoolProblem}`);

describe.skipIf(promtoolProblem !== null)('/metrics under promtool check metrics', () => {
  let dataDir: string;
  let svc: Service;
  const url = (path: string): string => `http://127.0.0.1:${svc.port}${path}`;
  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(url(path), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'hs-promtool-'));
    svc = await Service.start(
      loadConfig({
        HYPERSYNC_PORT: '0',
        HYPERSYNC_HOST: '127.0.0.1',
        HYPERSYNC_DATA_DIR: dataDir,
        HYPERSYNC_DEVICE: 'cpu',
        HYPERSYNC_VERIFY_INTERVAL_MS: '0',
        HYPERSYNC_COMPACT_INTERVAL_MS: '0',
      }),
      pino({ level: 'silent' }),
    );
  }, 60_000);
  afterAll(async () => {
    await svc.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('is clean after 2xx and 4xx answers, writes, queries and a job', async () => {
    expect((await post('/v1/collections', { name: 'm', dim: 4, metric: 'l2' })).status).toBe(201);
    expect((await post('/v1/collections/m/items', { items: [{ id: 'a', vector: [1, 2, 3, 4] }] })).status).toBe(200);
    expect((await post('/v1/collections/m/query', { queries: [{ vector: [1, 2, 3, 4] }], k: 1 })).status).toBe(200);
    expect((await post('/v1/collections/m/query', { queries: [{ vector: [1, 2] }], k: 1 })).status).toBe(400);
    expect((await fetch(url('/v1/collections/nope/items/x'))).status).toBe(404);
    expect((await post('/v1/collections/m/jobs', { type: 'verify' })).status).toBe(202);
    const text = await (await fetch(url('/metrics'))).text();
    expect(text).toMatch(/hypersync_http_request_duration_seconds_count/);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  });
});
