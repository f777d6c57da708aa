import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/core/errors.js';
import { Service } from '../../src/service.js';

/** The port a `hypersync serve` process reports in its "listening" log line (pino JSON on stdout). */
function listeningPort(stdout: Readable, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no listening line; output: ${out}`)), timeoutMs);
    stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.startsWith('{') || !line.endsWith('}')) continue; // a line still arriving
        const rec = JSON.parse(line) as { port?: number };
        if (typeof rec.port === 'number') {
          clearTimeout(timer);
          resolve(rec.port);
        }
      }
    });
  });
}

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'svc-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('configuration', () => {
  it('defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080,
      dataDir: './.hypersync',
      device: 'auto',
      cacheMb: 1024,
      apiKeys: [],
      logLevel: 'info',
      verifyIntervalMs: 3_600_000,
      compactIntervalMs: 86_400_000,
    });
    expect(loadConfig({ HYPERSYNC_COMPACT_INTERVAL_MS: '0' }).compactIntervalMs).toBe(0);
    expect(() => loadConfig({ HYPERSYNC_COMPACT_INTERVAL_MS: '500' })).toThrow(
      /HYPERSYNC_COMPACT_INTERVAL_MS: 0 \(off\) or at least 1000/,
    );
  });

  it('reports every bad value with its name', () => {
    let err: unknown;
    try {
      loadConfig({ HYPERSYNC_PORT: '99999', HYPERSYNC_DEVICE: 'tpu', HYPERSYNC_CACHE_MB: 'lots' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/HYPERSYNC_PORT/);
    expect(msg).toMatch(/HYPERSYNC_DEVICE/);
    expect(msg).toMatch(/HYPERSYNC_CACHE_MB/);
  });

  it('splits API keys', () => {
    expect(loadConfig({ HYPERSYNC_API_KEYS: 'a, b,,c ' }).apiKeys).toEqual(['a', 'b', 'c']);
  });
});

describe('service in process, on an ephemeral port', () => {
  it('answers /healthz and /readyz, 404 elsewhere, and closes twice safely', async () => {
    const svc = await Service.start(
      loadConfig({ HYPERSYNC_PORT: '0', HYPERSYNC_HOST: '127.0.0.1', HYPERSYNC_DATA_DIR: dataDir }),
      pino({ level: 'silent' }),
    );
    try {
      const base = `http://127.0.0.1:${svc.port}`;
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      const body = (await ready.json()) as { ready: boolean; hvs: { device: string; reason: string } };
      expect(body.ready).toBe(true);
      expect(['cpu', 'cuda']).toContain(body.hvs.device);
      expect(body.hvs.reason).toMatch(/HYPERSYNC_DEVICE/);
      const missing = await fetch(`${base}/nope`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ error: { code: 'not_found', message: 'no such route' } });
    } finally {
      await svc.close();
      await svc.close();
    }
  });
});

describe('the hypersync CLI as a real process', () => {
  it('serve starts, answers, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
      env: { ...process.env, HYPERSYNC_PORT: '0', HYPERSYNC_HOST: '127.0.0.1', HYPERSYNC_DATA_DIR: dataDir, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const port = await listeningPort(child.stdout, 30_000);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('device prints the choice and the reason', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'device'], {
      env: { ...process.env, HYPERSYNC_DEVICE: 'cpu' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ device: 'cpu', reason: 'HYPERSYNC_DEVICE=cpu' });
  });

  it('a bad configuration value stops start-up with a clear message', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
      env: { ...process.env, HYPERSYNC_PORT: 'eighty' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(err).toMatch(/invalid configuration/);
    expect(err).toMatch(/HYPERSYNC_PORT/);
  });

  it('npm start on the embedded default: stores and queries over HTTP, stops on SIGTERM, and finds the data after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'npm-start-'));
    const start = async () => {
      // npm hands SIGTERM to the server (the start script execs it) and then ends by the same
      // signal: the server's own log says whether it shut down cleanly.
      const child = spawn('npm', ['start', '--silent'], {
        env: { ...process.env, HYPERSYNC_PORT: '0', HYPERSYNC_HOST: '127.0.0.1', HYPERSYNC_DATA_DIR: dir, LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<boolean>((resolve) =>
        child.on('exit', () => resolve(out.includes('"msg":"hypersync stopped"'))),
      );
      const port = await listeningPort(child.stdout, 120_000);
      return { port, exited, stop: () => child.kill('SIGTERM') };
    };
    const json = { 'content-type': 'application/json' };
    try {
      const first = await start();
      const base = `http://127.0.0.1:${first.port}`;
      expect(
        (
          await fetch(`${base}/v1/collections`, {
            method: 'POST',
            headers: json,
            body: JSON.stringify({ name: 'notes', dim: 384 }),
          })
        ).status,
      ).toBe(201);
      const stored = await fetch(`${base}/v1/collections/notes/items`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({
          items: [
            { id: 'n1', text: 'the cat sat on the mat' },
            { id: 'n2', text: 'stock markets fell' },
          ],
        }),
      });
      expect(stored.status).toBe(200);
      const ask = (b: string) =>
        fetch(`${b}/v1/collections/notes/query`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ queries: [{ text: 'a cat on a mat' }], k: 1, include: ['content'] }),
        }).then((r) => r.json() as Promise<{ results: { id: string; content: string }[][] }>);
      expect((await ask(base)).results[0][0]).toMatchObject({ id: 'n1', content: 'the cat sat on the mat' });
      first.stop();
      expect(await first.exited).toBe(true);

      const second = await start();
      const again = `http://127.0.0.1:${second.port}`;
      expect((await ask(again)).results[0][0]).toMatchObject({ id: 'n1', content: 'the cat sat on the mat' });
      const item = (await (await fetch(`${again}/v1/collections/notes/items/n2`)).json()) as { content: string };
      expect(item.content).toBe('stock markets fell');
      second.stop();
      expect(await second.exited).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
