import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/core/limits.js';
import { createScratchDatabase } from '../fixtures/databases.js';
import { postgresProblem } from '../fixtures/services.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');

interface PackageJson {
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  bin: Record<string, string>;
}

// The package as a user gets it: `npm pack` (its `prepare` builds dist/ incrementally), the tarball
// unpacked into a scratch project's node_modules, every declared dependency linked from this
// repository's node_modules (nothing is downloaded; an undeclared one would not resolve), and so is
// every peer dependency, as the user's own (@langchain/core for hypersync/langchain).
describe('the packed hypersync package', () => {
  let dir: string;
  let files: string[];
  let pkgDir: string;
  let pkg: PackageJson;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'package-'));
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: repo, maxBuffer: 16 << 20 });
    const [packed] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    files = packed.files.map((f) => f.path);
    const scratch = join(dir, 'scratch');
    pkgDir = join(scratch, 'node_modules', 'hypersync');
    await mkdir(pkgDir, { recursive: true });
    await run('tar', ['-xzf', join(dir, packed.filename), '-C', pkgDir, '--strip-components=1']);
    pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')) as PackageJson;
    for (const name of [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)]) {
      const link = join(scratch, 'node_modules', name);
      await mkdir(dirname(link), { recursive: true });
      await symlink(join(repo, 'node_modules', name), link, 'dir');
    }
    await writeFile(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  }, 180_000);

  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('ships the build, the declarations and the migrations, not the sources or the tests', () => {
    expect(files).toContain('dist/src/index.js');
    expect(files).toContain('dist/src/index.d.ts');
    expect(files).toContain('dist/src/cli/main.js');
    expect(files).toEqual(
      expect.arrayContaining([
        'dist/src/client/index.js',
        'dist/src/client/index.d.ts',
        'dist/src/client/schema.d.ts',
        'dist/src/langchain/index.js',
        'dist/src/langchain/index.d.ts',
      ]),
    );
    expect(files).toContain('db/migrations/001_init.sql');
    expect(files.filter((f) => /^(src|test|bench|kernels|workers)\/|^dist\/(test|bench)\/|\.tsbuildinfo$/.test(f))).toEqual([]);
  });

  // PostgreSQL when it is there (a fresh PGlite's initdb alone takes many seconds on two busy
  // cores); either way the package's own db/migrations create the tables.
  it("imports from 'hypersync' and stores and queries through both tiers", async () => {
    const scratchDb = (await postgresProblem()) === null ? await createScratchDatabase() : undefined;
    try {
      const script = join(dir, 'scratch', 'use.mjs');
      await writeFile(
        script,
        `import { HashingEncoder, HyperSync, LIMITS } from 'hypersync';
const [dataDir, databaseUrl] = process.argv.slice(2);
const hs = await HyperSync.open({ dataDir, databaseUrl, device: 'cpu', encoder: new HashingEncoder({ dim: 384 }) });
try {
  await hs.createCollection('docs', { dim: 384, metric: 'cosine' });
  await hs.store('docs', [{ id: 'a', text: 'the packed package works' }]);
  const [hits] = await hs.query('docs', ['the packed package works'], 1);
  console.log(JSON.stringify({ id: hits[0].id, itemsPerCall: LIMITS.itemsPerCall }));
} finally {
  await hs.close();
}
`,
      );
      const args = [script, join(dir, 'data'), ...(scratchDb === undefined ? [] : [scratchDb.url])];
      const { stdout } = await run(process.execPath, args, { cwd: join(dir, 'scratch') });
      expect(JSON.parse(stdout.trim())).toEqual({ id: 'a', itemsPerCall: LIMITS.itemsPerCall });
    } finally {
      await scratchDb?.drop();
    }
  }, 120_000);

  it('resolves the types of its exports', async () => {
    const file = join(dir, 'scratch', 'typed.ts');
    await writeFile(
      file,
      `import { HyperSync, type StoreItem } from 'hypersync';
import { createClient, type Schema } from 'hypersync/client';
import { HyperSyncVectorStore, type HyperSyncFilter } from 'hypersync/langchain';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
export const open: typeof HyperSync.open = HyperSync.open;
export async function search(embeddings: EmbeddingsInterface): Promise<string[]> {
  const filter: HyperSyncFilter = { lang: { $in: ['en', 'de'] } };
  const store = await HyperSyncVectorStore.fromExistingIndex(embeddings, { url: 'http://localhost:8080', collection: 'docs' });
  return (await store.asRetriever({ k: 2, filter }).invoke('hello')).map((d) => d.pageContent);
}
export const item: StoreItem = { id: 'a' };
export async function hits(): Promise<Schema<'Hit'>[]> {
  const { data } = await createClient('http://localhost:8080', { apiKey: 'k' }).POST('/v1/collections/{c}/query', {
    params: { path: { c: 'docs' } },
    body: { queries: [{ text: 'hello' }], k: 3, include: ['content'] },
  });
  return data?.results[0] ?? [];
}
`,
    );
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = [
      '--noEmit',
      '--strict',
      '--skipLibCheck',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--types',
      'node',
      '--typeRoots',
      join(repo, 'node_modules', '@types'),
      file,
    ];
    await expect(run(process.execPath, [tsc, ...args], { cwd: join(dir, 'scratch') })).resolves.toBeDefined();
  });

  it("imports 'hypersync/client' without the server", async () => {
    const script = join(dir, 'scratch', 'client.mjs');
    await writeFile(
      script,
      `import { createClient } from 'hypersync/client';
const hs = createClient('http://127.0.0.1:1', { apiKey: 'k', fetch: async (req) => Response.json({ collections: [], auth: req.headers.get('authorization'), url: req.url }) });
const { data } = await hs.GET('/v1/collections');
console.log(JSON.stringify(data));
`,
    );
    const { stdout } = await run(process.execPath, [script], { cwd: join(dir, 'scratch') });
    expect(JSON.parse(stdout.trim())).toEqual({ collections: [], auth: 'Bearer k', url: 'http://127.0.0.1:1/v1/collections' });
  });

  it("imports 'hypersync/langchain' with the user's @langchain/core, without the server", async () => {
    const script = join(dir, 'scratch', 'langchain.mjs');
    await writeFile(
      script,
      `import { HyperSyncApiError, HyperSyncVectorStore } from 'hypersync/langchain';
import { VectorStore } from '@langchain/core/vectorstores';
const bodies = [];
const fetch = async (req) => {
  bodies.push(await req.json());
  return new URL(req.url).pathname.endsWith('/query')
    ? Response.json({ results: [[{ id: 'a', score: 0.5, version: 1, source: 'hvs', content: 'alpha', metadata: { lang: 'en' } }]] })
    : Response.json({ error: { code: 'invalid_argument', message: 'filter.x.$bad: unknown operator' } }, { status: 400 });
};
const embeddings = { embedQuery: async () => [1, 0], embedDocuments: async (t) => t.map(() => [1, 0]) };
const store = new HyperSyncVectorStore(embeddings, { url: 'http://127.0.0.1:1', collection: 'docs', fetch });
const [[doc, score]] = await store.similaritySearchWithScore('hello', 1, { lang: 'en' });
const error = await store.delete({ filter: { x: { $bad: 1 } } }).catch((e) => e);
console.log(JSON.stringify({
  isVectorStore: store instanceof VectorStore,
  doc: { id: doc.id, pageContent: doc.pageContent, metadata: doc.metadata },
  score,
  filter: bodies[0].filter,
  error: { isApiError: error instanceof HyperSyncApiError, status: error.status, code: error.code },
}));
`,
    );
    const { stdout } = await run(process.execPath, [script], { cwd: join(dir, 'scratch') });
    expect(JSON.parse(stdout.trim())).toEqual({
      isVectorStore: true,
      doc: { id: 'a', pageContent: 'alpha', metadata: { lang: 'en' } },
      score: 0.5,
      filter: { lang: 'en' },
      error: { isApiError: true, status: 400, code: 'invalid_argument' },
    });
  });

  it('runs its bin', async () => {
    const bin = join(pkgDir, pkg.bin.hypersync);
    expect((await readFile(bin, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    const { stdout } = await run(process.execPath, [bin, '--help'], { cwd: join(dir, 'scratch') });
    expect(stdout).toMatch(/Usage: hypersync/);
    expect(stdout).toMatch(/serve/);
  });
});
