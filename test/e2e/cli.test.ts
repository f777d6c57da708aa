import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTestModel } from '../../models/generate-test-model.js';
import { OnnxEncoder } from '../../src/encoder/onnx-encoder.js';
import { freePort } from '../fixtures/redis.js';
import { sleep } from '../fixtures/wait.js';
import { LIMITS } from '../../src/core/limits.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI as a real process on the embedded default in `dir/data`. */
function cli(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return cliWith({}, ...args);
}

/** {@link cli} with more environment (an empty value unsets a variable for the config). */
function cliWith(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    env: { ...process.env, HYPERSYNC_DATA_DIR: join(dir, 'data'), HYPERSYNC_DEVICE: 'cpu', LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
}

const vector = (i: number, dim: number): number[] =>
  Array.from({ length: dim }, (_, j) => Math.fround(Math.sin(i * 1.3 + j) + 2));

function npy(rows: number, dim: number): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < rows; i++) data.set(vector(i, dim), i * dim);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer)]);
}

function fvecs(rows: number, dim: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < rows; i++) {
    const b = Buffer.alloc(4 + 4 * dim);
    b.writeInt32LE(dim, 0);
    Buffer.from(new Float32Array(vector(i, dim)).buffer).copy(b, 4);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

describe('hypersync CLI: import, query, verify, stats', () => {
  it('imports .npy, .fvecs and .jsonl files, resumes by id, and answers queries', async () => {
    await writeFile(join(dir, 'a.npy'), npy(700, 6));
    await writeFile(join(dir, 'b.fvecs'), fvecs(300, 6));
    await writeFile(
      join(dir, 'c.jsonl'),
      Array.from({ length: 50 }, (_, i) =>
        JSON.stringify({ id: `j${i}`, vector: vector(1000 + i, 6), content: `line ${i}` }),
      ).join('\n') + '\n',
    );
    const first = await cli('import', join(dir, 'a.npy'), '-c', 'vecs', '-m', 'l2', '-b', '256');
    expect(first.code, first.err).toBe(0);
    expect(JSON.parse(first.out)).toMatchObject({ read: 700, stored: 700, skipped: 0 });
    expect(first.err).toMatch(/vectors\/s/);
    const again = await cli('import', join(dir, 'a.npy'), '-c', 'vecs', '-b', '256');
    expect(JSON.parse(again.out)).toMatchObject({ read: 700, stored: 0, skipped: 700 });
    expect(JSON.parse((await cli('import', join(dir, 'b.fvecs'), '-c', 'vecs')).out)).toMatchObject({ stored: 300 });
    expect(JSON.parse((await cli('import', join(dir, 'c.jsonl'), '-c', 'vecs')).out)).toMatchObject({ stored: 50 });

    const q = await cli('query', 'vecs', '--vector', JSON.stringify(vector(1007, 6)), '-k', '1', '--include', 'content');
    expect(q.code, q.err).toBe(0);
    expect((JSON.parse(q.out) as unknown[])[0]).toMatchObject({ id: 'j7', content: 'line 7' });

    const v = await cli('verify', 'vecs');
    expect(v.code, v.err).toBe(0);
    expect(JSON.parse(v.out)).toMatchObject({ consistent: true, hvs: { count: 1050 }, nvm: { count: 1050 } });
    const st = await cli('stats');
    expect(JSON.parse(st.out)).toEqual([expect.objectContaining({ name: 'vecs', count: 1050, dim: 6, metric: 'l2' })]);
  }, 120_000);

  it('rebuilds a collection in process without REDIS_URL, with a progress bar', async () => {
    await writeFile(join(dir, 'r.npy'), npy(400, 5));
    const imported = await cli('import', join(dir, 'r.npy'), '-c', 'rebuilt');
    expect(imported.code, imported.err).toBe(0);
    const r = await cliWith({ REDIS_URL: '' }, 'rebuild', 'rebuilt');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ from: 'nvm', rows: 400 });
    expect(r.err).toMatch(/rebuild \|/);
    const v = await cli('verify', 'rebuilt');
    expect(JSON.parse(v.out)).toMatchObject({ consistent: true, hvs: { count: 400 } });
    const missing = await cliWith({ REDIS_URL: '' }, 'rebuild', 'no_such');
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/no_such.*does not exist/);
  }, 120_000);

  it('trains the IVF index in process with a progress bar; a later process loads it and queries by it, exact or by nprobe', async () => {
    await writeFile(join(dir, 'ivf.npy'), npy(2000, 8));
    expect((await cli('import', join(dir, 'ivf.npy'), '-c', 'ivf', '-m', 'l2')).code).toBe(0);
    const r = await cliWith({ REDIS_URL: '' }, 'index', 'ivf', '--nlist', '16');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/index \|/);
    expect(JSON.parse(r.out)).toMatchObject({ collection: 'ivf', index: { state: 'ivf', ivf: { nlist: 16, rows: 2000 } } });
    const st = await cli('stats', 'ivf');
    expect((JSON.parse(st.out) as { hvs: { index: { state: string } } }[])[0].hvs.index.state).toBe('ivf');
    // The rows are near-periodic (sin of 1.3·i), so row 37 has near-twins (617, …): it is among the
    // 10 best however the query runs, and first when exact.
    for (const flags of [[], ['--exact'], ['--nprobe', '2'], ['--target-recall', '0.9']]) {
      const q = await cli('query', 'ivf', '--vector', JSON.stringify(vector(37, 8)), '-k', '10', ...flags);
      expect(q.code, `${flags.join(' ')}: ${q.err}`).toBe(0);
      const ids = (JSON.parse(q.out) as { id: string }[]).map((h) => h.id);
      expect(ids, flags.join(' ')).toHaveLength(10);
      expect(ids, flags.join(' ')).toContain('ivf:37');
      if (flags[0] === '--exact') expect(ids[0]).toBe('ivf:37');
    }
    const bad = await cli('query', 'ivf', '--vector', JSON.stringify(vector(37, 8)), '--nprobe', '0');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--nprobe.*positive integer/);
    const both = await cli('query', 'ivf', '--vector', JSON.stringify(vector(37, 8)), '--exact', '--nprobe', '2');
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/exact: true cannot be combined/);
    const badNlist = await cliWith({ REDIS_URL: '' }, 'index', 'ivf', '--target-recall', '1');
    expect(badNlist.code).toBe(1);
    expect(badNlist.err).toMatch(/--target-recall/);
  }, 120_000);

  it('compacts in process, prunes the change log only when asked, and reopens from the snapshots', async () => {
    const one = await cliWith({ REDIS_URL: '' }, 'compact', 'vecs', '--prune-change-log');
    expect(one.code, one.err).toBe(0);
    expect(JSON.parse(one.out)).toMatchObject({
      collections: { vecs: {} },
      changeLog: { pruned: false, reason: 'one collection' },
    });
    const unasked = await cliWith({ REDIS_URL: '' }, 'compact');
    expect(JSON.parse(unasked.out)).toMatchObject({ changeLog: { pruned: false } });

    const all = await cliWith({ REDIS_URL: '' }, 'compact', '--prune-change-log');
    expect(all.code, all.err).toBe(0);
    const report = JSON.parse(all.out) as {
      changeLogPosition: number;
      collections: Record<string, { snapshotLsn: number }>;
      changeLog: { prunedThrough: number; deleted: number };
    };
    expect(report.changeLogPosition).toBeGreaterThan(0);
    expect(report.changeLog.prunedThrough).toBe(report.changeLogPosition);
    expect(Math.min(...Object.values(report.collections).map((c) => c.snapshotLsn))).toBe(report.changeLogPosition);
    // The next process loads those snapshots and needs nothing before the horizon.
    const v = await cli('verify', 'vecs');
    expect(v.code, v.err).toBe(0);
    expect(JSON.parse(v.out)).toMatchObject({ consistent: true, hvs: { count: 1050 } });
    const q = await cli('query', 'vecs', '--vector', JSON.stringify(vector(1007, 6)), '-k', '1');
    expect((JSON.parse(q.out) as { id: string }[])[0].id).toBe('j7');
  }, 120_000);

  it('worker refuses to start without REDIS_URL or DATABASE_URL: a message and exit code 1', async () => {
    const noRedis = await cliWith({ REDIS_URL: '', DATABASE_URL: '' }, 'worker');
    expect(noRedis.code).toBe(1);
    expect(noRedis.err).toMatch(/^hypersync: .*REDIS_URL/m);
    const noDb = await cliWith({ REDIS_URL: 'redis://127.0.0.1:1', DATABASE_URL: '' }, 'worker');
    expect(noDb.code).toBe(1);
    expect(noDb.err).toMatch(/^hypersync: .*DATABASE_URL/m);
  }, 60_000);

  it('answers bad input with a message and exit code 2', async () => {
    await writeFile(join(dir, 'bad.csv'), 'x');
    const r = await cli('import', join(dir, 'bad.csv'), '-c', 'other');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown format/);
    // A missing file or a directory: one line naming it, exit code 2, no stack.
    for (const [path, why] of [
      [join(dir, 'missing.npy'), 'no such file'],
      [join(dir, 'missing.jsonl'), 'no such file'],
      [dir, 'a directory'],
    ]) {
      const m = await cli('import', path, '-c', 'other');
      expect(m.code, path).toBe(2);
      expect(m.err.trim()).toBe(
        `hypersync: ${path}: ${why}${why === 'a directory' ? '; give a .jsonl, .npy or .fvecs file' : ''}`,
      );
    }
    const q = await cli('query', 'vecs', '--vector', '[1,2]', '-k', '1');
    expect(q.code).toBe(2);
    expect(q.err).toMatch(/dimension/i);
    // The CLI reads the same LIMITS table as the library and HTTP.
    const big = await cli('query', 'vecs', '--vector', '[1,2]', '-k', String(LIMITS.k + 1));
    expect(big.code).not.toBe(0);
    expect(big.err).toContain(`at most ${LIMITS.k}`);
  }, 60_000);
});

describe('hypersync CLI: backup and restore', () => {
  it('backs up a collection and --all, restores into an empty store with equal digests, and refuses what it must', async () => {
    await writeFile(join(dir, 'bk.npy'), npy(500, 6));
    expect((await cli('import', join(dir, 'bk.npy'), '-c', 'bk', '-m', 'ip')).code).toBe(0);
    const source = JSON.parse((await cli('verify', 'bk')).out) as { nvm: { count: number; digest: string } };
    const one = await cli('backup', 'bk', join(dir, 'bk.hsb'));
    expect(one.code, one.err).toBe(0);
    expect(JSON.parse(one.out)).toMatchObject({
      collections: [{ name: 'bk', blocks: 500, digest: source.nvm.digest }],
      blocks: 500,
    });
    expect(one.err).toMatch(/backup \|/);
    const all = await cli('backup', '--all', join(dir, 'all.hsb.gz'));
    expect(all.code, all.err).toBe(0);
    expect((JSON.parse(all.out) as { collections: { name: string }[] }).collections.map((c) => c.name)).toContain('bk');

    // Into an empty store: another data directory.
    const other = { HYPERSYNC_DATA_DIR: join(dir, 'restored') };
    const r = await cliWith(other, 'restore', join(dir, 'all.hsb.gz'), '--collection', 'bk');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ collections: [{ name: 'bk', blocks: 500, digest: source.nvm.digest }] });
    expect(r.err).toMatch(/restore \|/);
    const v = await cliWith(other, 'verify', 'bk');
    expect(v.code, v.err).toBe(0);
    expect(JSON.parse(v.out)).toMatchObject({ consistent: true, nvm: source.nvm, hvs: source.nvm });
    const listed = JSON.parse((await cliWith(other, 'collections', 'list')).out) as { name: string; metric: string }[];
    expect(listed).toEqual([expect.objectContaining({ name: 'bk', dim: 6, metric: 'ip' })]);

    // Refusals: one line, exit code 2.
    const again = await cliWith(other, 'restore', join(dir, 'bk.hsb'));
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/^hypersync: collection "bk" already exists$/m);
    const exists = await cli('backup', 'bk', join(dir, 'bk.hsb'));
    expect(exists.code).toBe(2);
    expect(exists.err).toMatch(/^hypersync: backup bk\.hsb exists already$/m);
    await writeFile(join(dir, 'cut.hsb'), (await readFile(join(dir, 'bk.hsb'))).subarray(0, 2000));
    const cut = await cliWith({ HYPERSYNC_DATA_DIR: join(dir, 'restored-cut') }, 'restore', join(dir, 'cut.hsb'));
    expect(cut.code).toBe(2);
    expect(cut.err).toMatch(/^hypersync: cut\.hsb is truncated at byte \d+$/m);
    const missing = await cli('restore', join(dir, 'nope.hsb'));
    expect(missing.code).toBe(2);
    expect(missing.err.trim()).toBe(`hypersync: ${join(dir, 'nope.hsb')}: no such file`);
    const usage = await cli('backup', 'bk');
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/give a collection and a file/);
  }, 300_000);
});

describe('hypersync CLI: quantize', () => {
  it('writes an int8 copy of the model with a report, refuses to overwrite it, and serves /v1/encode with it', async () => {
    const modelDir = join(dir, 'model');
    await generateTestModel(modelDir, 'tiny');
    const first = await cli('quantize', modelDir);
    expect(first.code, first.err).toBe(0);
    const report = JSON.parse(first.out) as Record<string, unknown> & { check: { cosine: { min: number } } };
    expect(report).toMatchObject({ quantized: 12, modelFile: 'model_qint8.onnx', perChannel: true });
    expect(report.check.cosine.min).toBeGreaterThan(0.99);
    expect(first.err).toContain(`HYPERSYNC_MODEL_FILE=model_qint8.onnx`);

    const again = await cli('quantize', modelDir);
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/model_qint8.onnx already exists \(pass force/);
    const forced = await cli('quantize', modelDir, '--force', '--no-check', '--per-tensor', '--reduce-range');
    expect(forced.code, forced.err).toBe(0);
    expect(JSON.parse(forced.out)).toMatchObject({ perChannel: false, reduceRange: true });
    expect(JSON.parse(forced.out)).not.toHaveProperty('check');
    const missing = await cli('quantize', join(dir, 'no-such-model'));
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/model directory .*no-such-model does not exist/);

    // The service picks the int8 file with HYPERSYNC_MODEL_FILE; /v1/encode names the version it ran.
    const port = await freePort();
    const serve = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
      env: {
        ...process.env,
        HYPERSYNC_DATA_DIR: join(dir, 'data-quantized'),
        HYPERSYNC_DEVICE: 'cpu',
        LOG_LEVEL: 'silent',
        DATABASE_URL: '',
        REDIS_URL: '',
        HYPERSYNC_PORT: String(port),
        HYPERSYNC_HOST: '127.0.0.1',
        HYPERSYNC_MODEL_DIR: modelDir,
        HYPERSYNC_MODEL_FILE: 'model_qint8.onnx',
      },
      stdio: 'ignore',
    });
    try {
      let res: Response | undefined;
      for (let i = 0; i < 200 && !res?.ok; i++) {
        await sleep(100);
        res = await fetch(`http://127.0.0.1:${port}/v1/encode`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ texts: ['hello world'] }),
        }).catch(() => undefined);
      }
      expect(res?.status).toBe(200);
      const body = (await res!.json()) as { encoder: { name: string; version: string }; vectors: number[][] };
      expect(body.vectors[0]).toHaveLength(32);
      const float = await OnnxEncoder.open({ modelDir, device: 'cpu' });
      const int8 = await OnnxEncoder.open({ modelDir, modelFile: 'model_qint8.onnx', device: 'cpu' });
      try {
        expect(body.encoder.version).toBe(int8.version);
        expect(body.encoder.version).not.toBe(float.version);
      } finally {
        await float.close();
        await int8.close();
      }
    } finally {
      serve.kill('SIGTERM');
      await new Promise((r) => serve.once('exit', r));
    }
  });
});

describe('hypersync collections: create, list, drop', () => {
  it('creates, lists and drops collections, and answers bad input with a message and an exit code', async () => {
    // A store of its own: the other tests count the collections of theirs.
    const env = { HYPERSYNC_DATA_DIR: join(dir, 'collections-data') };
    const created = await cliWith(env, 'collections', 'create', 'docs', '--dim', '3', '--metric', 'l2');
    expect(created.code, created.err).toBe(0);
    expect(JSON.parse(created.out)).toEqual({ name: 'docs', dim: 3, metric: 'l2' });
    expect((await cliWith(env, 'collections', 'create', 'notes', '-d', '8')).code).toBe(0);
    const list = await cliWith(env, 'collections', 'list');
    expect(list.code, list.err).toBe(0);
    expect(JSON.parse(list.out)).toEqual([
      { name: 'docs', dim: 3, metric: 'l2' },
      { name: 'notes', dim: 8, metric: 'cosine' },
    ]);

    const bad: [string[], number, RegExp][] = [
      [['create', 'docs', '--dim', '3'], 2, /^hypersync: collection "docs" already exists$/m],
      [['create', '1bad', '--dim', '3'], 2, /^hypersync: invalid collection name "1bad"/m],
      [['create', 'x'], 2, /^hypersync: give --dim, or --encoder/m],
      [['create', 'x', '--encoder', 'no_such'], 2, /^hypersync: unknown encoder "no_such"/m],
      [['create', 'x', '--dim', '0'], 1, /--dim <n>' argument '0' is invalid\. an integer from 1 to 4096/],
      [['create', 'x', '--dim', '3', '--metric', 'dot'], 1, /Allowed choices are cosine, ip, l2/],
      [['drop', 'no_such', '--yes'], 2, /^hypersync: collection "no_such" does not exist$/m],
      // stdin is not a terminal here: no question, a refusal.
      [['drop', 'docs'], 2, /^hypersync: dropping collection docs deletes its items: pass --yes$/m],
    ];
    for (const [args, code, message] of bad) {
      const r = await cliWith(env, 'collections', ...args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(code);
      expect(r.err).toMatch(message);
      expect(r.err).not.toMatch(/\n\s+at /);
    }

    const dropped = await cliWith(env, 'collections', 'drop', 'docs', '--yes');
    expect(dropped.code, dropped.err).toBe(0);
    expect(JSON.parse(dropped.out)).toEqual({ dropped: 'docs' });
    expect(JSON.parse((await cliWith(env, 'collections', 'list')).out)).toEqual([{ name: 'notes', dim: 8, metric: 'cosine' }]);
  }, 180_000);

  it('counts, scrolls and queries with a metadata filter', async () => {
    const env = { HYPERSYNC_DATA_DIR: join(dir, 'filter-data') };
    await writeFile(
      join(dir, 'f.jsonl'),
      Array.from({ length: 30 }, (_, i) =>
        JSON.stringify({
          id: `m${String(i).padStart(2, '0')}`,
          vector: vector(i, 4),
          metadata: { lang: i % 3 === 0 ? 'de' : 'en', n: i },
        }),
      ).join('\n') + '\n',
    );
    expect((await cliWith(env, 'collections', 'create', 'docs', '--dim', '4')).code).toBe(0);
    const imported = await cliWith(env, 'import', join(dir, 'f.jsonl'), '-c', 'docs');
    expect(imported.code, imported.err).toBe(0);
    const count = await cliWith(env, 'count', 'docs', '--filter', '{"lang": "de"}');
    expect(count.code, count.err).toBe(0);
    expect(JSON.parse(count.out)).toEqual({ collection: 'docs', count: 10 });
    const page = await cliWith(env, 'scroll', 'docs', '--filter', '{"n": {"$lt": 9}}', '--limit', '2', '--include', 'metadata');
    expect(page.code, page.err).toBe(0);
    expect(JSON.parse(page.out)).toEqual({
      items: [
        { id: 'm00', version: 1, source: 'nvm', metadata: { lang: 'de', n: 0 } },
        { id: 'm01', version: 1, source: 'nvm', metadata: { lang: 'en', n: 1 } },
      ],
      nextCursor: 'm01',
    });
    const all = await cliWith(env, 'scroll', 'docs', '--filter', '{"lang": "de", "n": {"$gte": 10}}', '--all', '-l', '2');
    expect(
      all.out
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string }).id),
    ).toEqual(['m12', 'm15', 'm18', 'm21', 'm24', 'm27']);
    const q = await cliWith(
      env,
      'query',
      'docs',
      '--vector',
      JSON.stringify(vector(4, 4)),
      '-k',
      '3',
      '--include',
      'metadata',
      '-f',
      '{"lang": "de"}',
    );
    expect(q.code, q.err).toBe(0);
    const hits = JSON.parse(q.out) as { metadata: { lang: string } }[];
    expect(hits).toHaveLength(3);
    for (const h of hits) expect(h.metadata.lang).toBe('de');
    const got = await cliWith(env, 'get', 'docs', 'm01', 'nope', 'm00', '--include', 'metadata');
    expect(JSON.parse(got.out)).toEqual([
      { id: 'm01', version: 1, source: 'nvm', metadata: { lang: 'en', n: 1 } },
      { id: 'm00', version: 1, source: 'nvm', metadata: { lang: 'de', n: 0 } },
    ]);
    const patched = await cliWith(env, 'patch', 'docs', 'm01', '--metadata', '{"lang": "de", "n": 1}', '--content', 'now german');
    expect(patched.code, patched.err).toBe(0);
    expect(JSON.parse(patched.out)).toMatchObject({ id: 'm01', version: 2 });
    const removed = await cliWith(env, 'delete', 'docs', '--filter', '{"lang": "de"}');
    expect(JSON.parse(removed.out)).toMatchObject({ deleted: 11 });
    expect(JSON.parse((await cliWith(env, 'delete', 'docs', 'm02', 'm04')).out)).toMatchObject({ deleted: 2 });
    expect(JSON.parse((await cliWith(env, 'count', 'docs')).out)).toEqual({ collection: 'docs', count: 17 });
    const far = await cliWith(
      env,
      'query',
      'docs',
      '--vector',
      JSON.stringify(vector(5, 4)),
      '-k',
      '30',
      '--min-score',
      '0.999999',
    );
    expect((JSON.parse(far.out) as { id: string }[]).map((h) => h.id)).toEqual(['m05']);
    const bad = await cliWith(env, 'count', 'docs', '--filter', '{"lang": {"$like": "d%"}}');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^hypersync: filter\.lang\.\$like: unknown operator/m);
    const notJson = await cliWith(env, 'count', 'docs', '--filter', 'lang=de');
    expect(notJson.code).toBe(1);
    expect(notJson.err).toMatch(/a JSON object/);
  }, 180_000);
});
