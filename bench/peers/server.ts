/**
 * A server process for the peers benchmark (hypersync's own service, Chroma): started on a free
 * port, waited for until it answers, its peak memory read from /proc, stopped at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { log } from './common.js';

/** A port nobody listens on now (bound once by the OS, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Peak resident memory of a local process in MiB (`VmHWM`), or undefined where /proc cannot say. */
export function procPeakMiB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface Server {
  pid: number;
  /** Peak RSS so far in MiB. */
  peakMiB(): number | undefined;
  stop(): Promise<void>;
}

/**
 * Spawns `command args` and polls `readyUrl` until it answers 2xx (or the process exits, or
 * `timeoutS` passes). The server's output is kept and shown if it fails to start.
 */
export async function startServer(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  readyUrl: string,
  timeoutS = 120,
): Promise<Server> {
  const child: ChildProcess = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer) => {
    output = (output + b.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code;
      resolve();
    }),
  );
  const stop = async (): Promise<void> => {
    if (exited !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exit;
    clearTimeout(timer);
  };
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    if (exited !== undefined)
      throw new Error(`${name} exited (${exited}) before it was ready: ${output.trim().split('\n').slice(-5).join(' | ')}`);
    try {
      const res = await fetch(readyUrl);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} not ready after ${timeoutS} s: ${output.trim().split('\n').slice(-5).join(' | ')}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`${name}: ready (pid ${child.pid})`);
  const pid = child.pid ?? -1;
  return { pid, peakMiB: () => procPeakMiB(pid), stop };
}
