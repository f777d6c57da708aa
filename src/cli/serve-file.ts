import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive } from '../core/process-alive.js';

/** The file `hypersync serve` keeps in its data directory while it listens. */
export const SERVE_FILE = 'serve.json';

/** What the serve file says: who listens where (nothing secret: no keys, no database address). */
export interface ServeFileInfo {
  /** The serving process. */
  pid: number;
  /** Where it answers, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Its durable tier: with `pglite` it holds the data directory's embedded database. */
  nvm: 'postgres' | 'pglite';
  /** When it started listening (ISO 8601). */
  startedAt: string;
}

/** A serve file found and its path, for messages. */
export interface FoundServeFile extends ServeFileInfo {
  path: string;
}

/**
 * The URL a client on this machine reaches a server listening on `host:port` at: a wildcard
 * address (`0.0.0.0`, `::`) is reached through loopback.
 */
export function localUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

/** Writes the serve file atomically (a temporary file renamed over it); answers its path. */
export async function writeServeFile(dataDir: string, info: ServeFileInfo): Promise<string> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, SERVE_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o644 });
  await rename(tmp, path);
  return path;
}

/** Removes the serve file if it is this process's (a newer server may have replaced it). */
export async function removeServeFile(dataDir: string, pid = process.pid): Promise<void> {
  const found = await parse(join(dataDir, SERVE_FILE));
  if (found?.pid === pid) await rm(found.path, { force: true });
}

/**
 * The serve file of `dataDir` when its process is alive; a missing, unreadable or stale one (its
 * process gone: a server that was killed) answers undefined.
 */
export async function readServeFile(dataDir: string): Promise<FoundServeFile | undefined> {
  const found = await parse(join(dataDir, SERVE_FILE));
  return found && processAlive(found.pid) ? found : undefined;
}

async function parse(path: string): Promise<FoundServeFile | undefined> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { pid, url, nvm, startedAt } = raw as Record<string, unknown>;
  if (!Number.isInteger(pid) || (pid as number) <= 0 || typeof url !== 'string') return undefined;
  if (nvm !== 'postgres' && nvm !== 'pglite') return undefined;
  return { pid: pid as number, url, nvm, startedAt: typeof startedAt === 'string' ? startedAt : '', path };
}
