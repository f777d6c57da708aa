/**
 * PostgreSQL and Redis instances of the fault tests' own, on free ports, so they can be stopped
 * and started again without touching the shared services other tests use. PostgreSQL is a
 * fresh cluster (`initdb`, run as the `postgres` user as PostgreSQL requires) with pgvector from
 * the system's installation; Redis keeps an append-only file so queued jobs survive a restart.
 */
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './serve-process.js';

const run = promisify(execFile);

export interface PrivateService {
  /** Connection URL. */
  readonly url: string;
  start(): Promise<void>;
  /** Stops it: `immediate` is a crash (no shutdown checkpoint) for PostgreSQL. */
  stop(): Promise<void>;
  /** Stops it if running and removes its files. */
  remove(): Promise<void>;
}

/** Where the PostgreSQL binaries are (pg_config knows), or the reason they cannot be used here. */
async function pgBin(): Promise<string> {
  const { stdout } = await run('pg_config', ['--bindir']);
  return stdout.trim();
}

/** Whether the fault tests can run their own PostgreSQL here; `null` when they can, else why not. */
export async function privatePostgresProblem(): Promise<string | null> {
  try {
    await run(join(await pgBin(), 'initdb'), ['--version']);
  } catch (err) {
    return `initdb not usable: ${(err as Error).message}`;
  }
  if (userInfo().uid === 0) {
    try {
      await run('id', ['postgres']);
    } catch {
      return 'running as root without a postgres user to run initdb as';
    }
  }
  return null;
}

/** Runs a PostgreSQL binary, as the postgres user when this process is root. */
async function asPostgres(bin: string, args: string[]): Promise<void> {
  const path = join(await pgBin(), bin);
  if (userInfo().uid === 0) await run('runuser', ['-u', 'postgres', '--', path, ...args]);
  else await run(path, args);
}

/** A new PostgreSQL cluster on a free port, started. */
export async function startPrivatePostgres(): Promise<PrivateService> {
  const dir = await mkdtemp(join(tmpdir(), 'hs-pg-'));
  if (userInfo().uid === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = join(dir, 'data');
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=50`;
  let running = false;
  const svc: PrivateService = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      await asPostgres('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
      running = true;
    },
    async stop() {
      await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      running = false;
    },
    async remove() {
      if (running) await svc.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await svc.start();
  return svc;
}

/** A Redis server on a free port with an append-only file, started. */
export async function startPrivateRedis(): Promise<PrivateService> {
  const dir = await mkdtemp(join(tmpdir(), 'hs-redis-'));
  const port = await freePort();
  let running = false;
  const cli = (...args: string[]): Promise<unknown> => run('redis-cli', ['-p', String(port), ...args]);
  const svc: PrivateService = {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      await run('redis-server', [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--daemonize',
        'yes',
        '--pidfile',
        join(dir, 'redis.pid'),
        '--logfile',
        join(dir, 'redis.log'),
      ]);
      for (let i = 0; i < 100; i++) {
        if (
          await cli('ping').then(
            () => true,
            () => false,
          )
        )
          break;
        await new Promise((r) => setTimeout(r, 50));
      }
      running = true;
    },
    async stop() {
      await cli('shutdown', 'nosave').catch(() => undefined);
      running = false;
    },
    async remove() {
      if (running) await svc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await svc.start();
  return svc;
}
