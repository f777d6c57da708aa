/**
 * `hypersync serve` as a real child process for the reliability suite: started on a free port,
 * waited for until `/readyz` answers 200, killed at will.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

export interface ServeProcess extends CliProcess {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
}

/** A port nobody listens on now (bound once by the OS, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** A CLI process (`hypersync <command>`) with `env` over the test's environment. */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<NodeJS.Signals | number | null>;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<NodeJS.Signals | number | null>;
}

/** Spawns `hypersync <command>` (from the sources, through tsx) with `env` over a clean base. */
export function spawnCli(command: string, env: Record<string, string | undefined>): CliProcess {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    HYPERSYNC_HOST: '127.0.0.1',
    HYPERSYNC_DEVICE: 'cpu',
    HYPERSYNC_VERIFY_INTERVAL_MS: '0',
    HYPERSYNC_COMPACT_INTERVAL_MS: '0',
    LOG_LEVEL: 'warn',
  };
  // The process under test takes only what the caller gives it (no stray REDIS_URL or keys).
  for (const key of ['DATABASE_URL', 'REDIS_URL', 'HYPERSYNC_API_KEYS', 'HYPERSYNC_RATE_LIMIT']) delete childEnv[key];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, command], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-6000);
  };
  child.stderr?.on('data', keep);
  child.stdout?.on('data', keep);
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  return {
    child,
    exited,
    output: () => tail,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (!gone) child.kill(signal);
      return exited;
    },
  };
}

/** Starts the service with `env`; resolves once `/readyz` says ready. */
export async function startServe(env: Record<string, string | undefined>, readyTimeoutMs = 120_000): Promise<ServeProcess> {
  const port = await freePort();
  const proc = spawnCli('serve', { HYPERSYNC_PORT: String(port), ...env });
  let gone = false;
  void proc.exited.then(() => (gone = true));
  const lastLines = (): string => proc.output().split('\n').slice(-8).join('\n');
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (gone) throw new Error(`serve exited before it was ready: ${lastLines()}`);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await proc.stop('SIGKILL');
      throw new Error(`serve not ready after ${readyTimeoutMs} ms: ${lastLines()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...proc, port, url: `http://127.0.0.1:${port}` };
}

/** A JSON call to the service; resolves to status and parsed body (never throws on 4xx/5xx). */
export async function call(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { text };
  }
  return { status: res.status, json };
}

/** Queues a job and polls it until it finishes; resolves to its final info. */
export async function runJob(
  url: string,
  path: string,
  body: Record<string, unknown>,
  timeoutMs = 120_000,
): Promise<{ state: string; result?: unknown; error?: string }> {
  const queued = await call(url, 'POST', path, body);
  if (queued.status !== 202) throw new Error(`job not queued: ${queued.status} ${JSON.stringify(queued.json)}`);
  const id = String(queued.json.jobId);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await call(url, 'GET', `/v1/jobs/${encodeURIComponent(id)}`);
    const state = String(got.json.state);
    if (['completed', 'failed', 'cancelled'].includes(state))
      return got.json as { state: string; result?: unknown; error?: string };
    if (Date.now() > deadline) throw new Error(`job ${id} still ${state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
