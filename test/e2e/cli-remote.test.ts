/**
 * The CLI's data commands while `hypersync serve` runs: found through the data directory's serve
 * file (the embedded default, where the server holds the only lock) or `HYPERSYNC_URL`, they talk
 * to it over HTTP and print what the in-process path prints.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postgresProblem, servicesRequired, testDatabaseUrl } from '../fixtures/services.js';
import { call, freePort, type ServeProcess, startServe } from '../reliability/serve-process.js';

let dir: string;
const servers: ServeProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-remote-'));
  await writeFile(join(dir, 'v.npy'), npy(2500, 8));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping the PostgreSQL cases: ${pgProblem}`);

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Runs `hypersync <args>` as a real process with `env` over a base without servers, keys or databases. */
function cli(env: Record<string, string>, ...args: string[]): Promise<Run> {
  const base: NodeJS.ProcessEnv = { ...process.env, HYPERSYNC_DEVICE: 'cpu', LOG_LEVEL: 'silent' };
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'HYPERSYNC_URL', 'HYPERSYNC_API_KEY', 'HYPERSYNC_API_KEYS']) delete base[k];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
}

/** The parsed stdout of a run that must succeed. */
function ok<T = unknown>(r: Run): T {
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as T;
}

async function serve(env: Record<string, string>): Promise<ServeProcess> {
  const s = await startServe(env);
  servers.push(s);
  return s;
}

const vector = (i: number, dim: number): number[] =>
  Array.from({ length: dim }, (_, j) => Math.fround(Math.sin(i * 1.3 + j) + 2 + ((i * 7 + j * 3) % 11) / 10));

function npy(rows: number, dim: number): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < rows; i++) data.set(vector(i, dim), i * dim);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer)]);
}

interface Hit {
  id: string;
  score: number;
  source: string;
}

/** Two hit lists alike: the same ids in the same order, scores equal to float32 rounding. */
function expectSameHits(remote: Hit[], local: Hit[]): void {
  expect(remote.map((h) => h.id)).toEqual(local.map((h) => h.id));
  remote.forEach((h, i) => expect(h.score).toBeCloseTo(local[i].score, 5));
}

const gone = (path: string): Promise<boolean> =>
  access(path).then(
    () => false,
    () => true,
  );

describe('hypersync CLI while serve holds the embedded data directory', () => {
  it('imports, queries, verifies and counts over HTTP, with progress, and prints what the local path prints', async () => {
    const data = join(dir, 'embedded');
    const env = { HYPERSYNC_DATA_DIR: data };
    const server = await serve(env);
    const serveFile = join(data, 'serve.json');
    // Written just after the server starts listening: /readyz may answer a moment before.
    for (let i = 0; i < 100 && (await gone(serveFile)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(JSON.parse(await readFile(serveFile, 'utf8'))).toMatchObject({
      pid: server.child.pid,
      url: server.url,
      nvm: 'pglite',
    });

    const imported = await cli(env, 'import', join(dir, 'v.npy'), '-c', 'vecs', '-m', 'l2', '-b', '500', '--progress');
    expect(ok(imported)).toMatchObject({ collection: 'vecs', read: 2500, stored: 2500, skipped: 0 });
    expect(imported.err).toContain(`talking to the server at ${server.url} (found in ${serveFile}, process ${server.child.pid})`);
    // Live lines (asked for with --progress, stderr being a pipe): done/total, rate and time left.
    expect(imported.err).toMatch(/import \|.*\| \d+\/2500 \| \d+ vectors\/s \| ETA \d+s/);
    expect(imported.err).toMatch(/^import: 2500 vectors in [\d.]+ s, \d+ vectors\/s \(stored 2500, skipped 0; over HTTP/m);
    // The server holds them: the CLI did not open the store.
    expect((await call(server.url, 'GET', '/v1/collections/vecs')).json).toMatchObject({ count: 2500 });

    const again = await cli(env, 'import', join(dir, 'v.npy'), '-c', 'vecs');
    expect(ok(again)).toMatchObject({ read: 2500, stored: 0, skipped: 2500 });
    expect(again.err).not.toMatch(/import \|/);
    expect(again.err).toMatch(/^import: 2500 vectors in .*\(stored 0, skipped 2500; over HTTP, batches of 5000/m);

    const q = ['query', 'vecs', '--vector', JSON.stringify(vector(42, 8)), '-k', '5', '--include', 'metadata'];
    const remote = {
      query: ok<Hit[]>(await cli(env, ...q)),
      verify: ok<Record<string, unknown>>(await cli(env, 'verify', 'vecs')),
      stats: ok<Record<string, unknown>[]>(await cli(env, 'stats')),
      list: ok(await cli(env, 'collections', 'list')),
      get: ok(await cli(env, 'get', 'vecs', 'v:7', 'nope', 'v:3')),
      count: ok(await cli(env, 'count', 'vecs')),
    };
    expect(remote.query[0].id).toBe('v:42');
    // An l2 distance to itself: zero up to float32 rounding of ‖x‖² + ‖y‖² − 2x·y.
    expect(remote.query[0].score).toBeLessThan(0.01);
    expect(remote.verify).toMatchObject({ consistent: true, hvs: { count: 2500 }, nvm: { count: 2500 } });
    expect(remote.count).toEqual({ collection: 'vecs', count: 2500 });

    // A clean stop removes the serve file; the same commands then run in process.
    expect(await server.stop()).toBe(0);
    expect(await gone(serveFile)).toBe(true);
    const localQuery = await cli(env, ...q);
    expect(localQuery.err).not.toContain('talking to');
    expectSameHits(remote.query, ok<Hit[]>(localQuery));
    const localVerify = ok<Record<string, unknown>>(await cli(env, 'verify', 'vecs'));
    for (const key of ['collection', 'consistent', 'hvs', 'nvm', 'inconsistencies'])
      expect(remote.verify[key]).toEqual(localVerify[key]);
    const [rs] = remote.stats;
    const [ls] = ok<Record<string, unknown>[]>(await cli(env, 'stats'));
    expect(Object.keys(rs).sort()).toEqual(Object.keys(ls).sort());
    for (const key of ['name', 'dim', 'metric', 'count', 'nvm', 'lsn', 'walPending']) expect(rs[key]).toEqual(ls[key]);
    expect(remote.list).toEqual(ok(await cli(env, 'collections', 'list')));
    expect(remote.get).toEqual(ok(await cli(env, 'get', 'vecs', 'v:7', 'nope', 'v:3')));
    expect(remote.count).toEqual(ok(await cli(env, 'count', 'vecs')));
  }, 600_000);

  it('ignores a stale serve file (its process gone) and opens the store itself', async () => {
    const data = join(dir, 'stale');
    const env = { HYPERSYNC_DATA_DIR: data };
    expect(ok(await cli(env, 'collections', 'create', 'docs', '--dim', '8'))).toEqual({ name: 'docs', dim: 8, metric: 'cosine' });
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.once('exit', r));
    const port = await freePort();
    await writeFile(join(data, 'serve.json'), JSON.stringify({ pid: dead.pid, url: `http://127.0.0.1:${port}`, nvm: 'pglite' }));
    const r = await cli(env, 'import', join(dir, 'v.npy'), '-c', 'docs', '-b', '1000');
    expect(ok(r)).toMatchObject({ read: 2500, stored: 2500 });
    expect(r.err).not.toContain('talking to');
    expect(r.err).toMatch(/^import: 2500 vectors in .*; batches of 1000\)$/m);
  }, 120_000);

  it('says in one line that a server it found does not answer, naming HYPERSYNC_URL or the serve file', async () => {
    const port = await freePort();
    const byUrl = await cli({ HYPERSYNC_URL: `http://127.0.0.1:${port}`, HYPERSYNC_DATA_DIR: join(dir, 'none') }, 'stats');
    expect(byUrl.code).not.toBe(0);
    expect(byUrl.out).toBe('');
    expect(byUrl.err.trim()).toMatch(
      new RegExp(
        `^hypersync: no answer from the hypersync server at http://127\\.0\\.0\\.1:${port} \\(HYPERSYNC_URL\\): .*ECONNREFUSED`,
      ),
    );
    expect(byUrl.err.trim().split('\n')).toHaveLength(1);

    // A live process (this test's) named in the serve file, nobody on its port.
    const data = join(dir, 'silent');
    await mkdir(data, { recursive: true });
    const file = join(data, 'serve.json');
    await writeFile(file, JSON.stringify({ pid: process.pid, url: `http://127.0.0.1:${port}`, nvm: 'pglite' }));
    const byFile = await cli({ HYPERSYNC_DATA_DIR: data }, 'query', 'docs', '--vector', '[1,2]');
    expect(byFile.code).not.toBe(0);
    expect(byFile.err.trim()).toMatch(new RegExp(`^hypersync: no answer .* \\(found in ${file}, process ${process.pid}\\)`));
    expect(byFile.err.trim().split('\n')).toHaveLength(1);
    // A command that runs in process only says why instead of failing on the lock.
    const rebuild = await cli({ HYPERSYNC_DATA_DIR: data }, 'rebuild', 'docs');
    expect(rebuild.code).toBe(2);
    expect(rebuild.err.trim()).toMatch(
      /^hypersync: `hypersync rebuild` runs in process only, and the server at .* serves this store/,
    );
  }, 120_000);
});

describe.skipIf(pgProblem !== null && !servicesRequired)('hypersync CLI with HYPERSYNC_URL (PostgreSQL, API keys)', () => {
  const name = `cli_remote_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  afterAll(async () => {
    // Through a fresh process: the test's servers are stopped by now.
    await cli(
      { DATABASE_URL: testDatabaseUrl, HYPERSYNC_DATA_DIR: join(dir, 'pg-cleanup') },
      'collections',
      'drop',
      name,
      '--yes',
    );
  });

  it('sends the key, answers as the in-process path on the same database, and repairs through the verify job', async () => {
    const server = await serve({
      DATABASE_URL: testDatabaseUrl,
      HYPERSYNC_API_KEYS: 'k1,k2',
      HYPERSYNC_DATA_DIR: join(dir, 'pg-serve'),
    });
    const remote = { HYPERSYNC_URL: server.url, HYPERSYNC_API_KEY: 'k2', HYPERSYNC_DATA_DIR: join(dir, 'pg-cli') };
    const local = { DATABASE_URL: testDatabaseUrl, HYPERSYNC_DATA_DIR: join(dir, 'pg-local') };

    const noKey = await cli({ HYPERSYNC_URL: server.url }, 'collections', 'list');
    expect(noKey.code).toBe(2);
    expect(noKey.err).toMatch(/^hypersync: missing bearer key.*\(set HYPERSYNC_API_KEY to a key of the server\)$/m);

    await writeFile(
      join(dir, 'm.jsonl'),
      Array.from({ length: 300 }, (_, i) =>
        JSON.stringify({
          id: `m${i}`,
          vector: vector(i, 6),
          content: `item ${i}`,
          metadata: { lang: i % 3 === 0 ? 'de' : 'en' },
        }),
      ).join('\n') + '\n',
    );
    expect(ok(await cli(remote, 'collections', 'create', name, '--dim', '6', '--metric', 'l2'))).toEqual({
      name,
      dim: 6,
      metric: 'l2',
    });
    const imported = await cli(remote, 'import', join(dir, 'm.jsonl'), '-c', name, '-b', '64', '--concurrency', '3');
    expect(ok(imported)).toMatchObject({ read: 300, stored: 300, skipped: 0 });
    expect(imported.err).toContain(`talking to the server at ${server.url} (HYPERSYNC_URL)`);

    const q = [
      'query',
      name,
      '--vector',
      JSON.stringify(vector(9, 6)),
      '-k',
      '4',
      '-f',
      '{"lang": "de"}',
      '--include',
      'content,metadata',
    ];
    const hits = ok<(Hit & { metadata: { lang: string } })[]>(await cli(remote, ...q));
    expect(hits).toHaveLength(4);
    expect(hits[0]).toMatchObject({ id: 'm9', content: 'item 9' });
    for (const h of hits) expect(h.metadata.lang).toBe('de');
    expectSameHits(hits, ok<Hit[]>(await cli(local, ...q)));
    const scroll = ['scroll', name, '-f', '{"lang": "de"}', '-l', '3', '--include', 'metadata'];
    expect(ok(await cli(remote, ...scroll))).toEqual(ok(await cli(local, ...scroll)));
    expect(ok(await cli(remote, 'count', name, '-f', '{"lang": "en"}'))).toEqual({ collection: name, count: 200 });

    const repaired = ok<{ upserted: number; deleted: number; after: { consistent: boolean; hvs: { count: number } } }>(
      await cli(remote, 'verify', name, '--repair'),
    );
    expect(repaired).toMatchObject({ upserted: 0, deleted: 0, after: { consistent: true, hvs: { count: 300 } } });
    expect(ok(await cli(remote, 'delete', name, 'm0', 'm1'))).toMatchObject({ deleted: 2 });
    expect(ok(await cli(local, 'count', name))).toEqual({ collection: name, count: 298 });
    expect(ok(await cli(remote, 'collections', 'drop', name, '--yes'))).toEqual({ dropped: name });
    const after = await cli(local, 'count', name);
    expect(after.code).toBe(2);
    expect(after.err).toMatch(/does not exist/);
  }, 600_000);
});
