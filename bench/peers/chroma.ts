/**
 * Chroma in the peers benchmark: its single-node server (`chroma run`, the Rust server inside the
 * chromadb npm package's native bindings) in its own process with a scratch directory, driven by
 * the chromadb JS client. One collection per `ef_search` (set at creation: `modify` does not change
 * the search of this server) with `hnsw: {space: 'cosine', max_neighbors: 16, ef_construction: 64}`,
 * loaded by `add` in batches of up to 5,000, dropped after its queries. B = 1 is one query per request, B = 64 one request of 64 query embeddings.
 *
 * The server is chromadb-js-bindings 1.0.5, pinned by `overrides`: later builds need glibc 2.38 or
 * 2.39 and Debian bookworm has 2.36.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type AnnData, type AnnRow, K, log, measure, timed } from './common.js';
import { freePort, startServer } from './server.js';

export const CHROMA_EFS = [10, 40, 100, 200, 400];

export async function runChroma(data: AnnData): Promise<AnnRow[]> {
  const { ChromaClient } = await import('chromadb');
  // The package's exports hide package.json and the CLI: find them from its main file.
  const root = resolve(dirname(createRequire(import.meta.url).resolve('chromadb')), '..', '..');
  const cli = join(root, 'dist', 'cli.mjs');
  const bindingsJson = join(root, '..', 'chromadb-js-bindings-linux-x64-gnu', 'package.json');
  const bindings = existsSync(bindingsJson)
    ? (JSON.parse(readFileSync(bindingsJson, 'utf8')) as { version: string }).version
    : '?';
  const dir = await mkdtemp(join(tmpdir(), 'bench-peers-chroma-'));
  const port = await freePort();
  const server = await startServer(
    'chroma run',
    process.execPath,
    [cli, 'run', '--path', dir, '--port', String(port)],
    { ...process.env, ANONYMIZED_TELEMETRY: 'False' },
    `http://localhost:${port}/api/v2/heartbeat`,
  );
  try {
    const client = new ChromaClient({ host: 'localhost', port });
    const version = await client.version();
    const system = `Chroma ${version}`;
    const maxBatch = await client.getMaxBatchSize();
    const chunk = Math.max(1, Math.min(maxBatch, 5000));
    const dim = data.dim;
    const toRows = (qs: Float32Array, nq: number): number[][] =>
      Array.from({ length: nq }, (_, i) => Array.from(qs.subarray(i * dim, (i + 1) * dim)));
    const rows: AnnRow[] = [];
    for (const ef of CHROMA_EFS) {
      // modify({configuration: {hnsw: {ef_search}}}) is accepted but does not change the search of
      // this server (recall stayed the same at every ef): each ef_search gets its own collection.
      const collection = await client.createCollection({
        name: `bench_ef${ef}`,
        embeddingFunction: null,
        configuration: { hnsw: { space: 'cosine', max_neighbors: 16, ef_construction: 64, ef_search: ef } },
      });
      const [, loadS] = await timed(async () => {
        for (let off = 0; off < data.n; off += chunk) {
          const end = Math.min(data.n, off + chunk);
          await collection.add({
            ids: Array.from({ length: end - off }, (_, i) => String(off + i)),
            embeddings: toRows(data.base.subarray(off * dim, end * dim), end - off),
          });
          if (end % 50_000 === 0 || end === data.n) log(`chroma (ef_search=${ef}): ${end}/${data.n} added`);
        }
      });
      const query = async (qs: Float32Array, nq: number): Promise<number[][]> => {
        const r = await collection.query({ queryEmbeddings: toRows(qs, nq), nResults: K, include: [] });
        return r.ids.map((ids) => ids.map(Number));
      };
      log(`chroma: ef_search=${ef}`);
      const m = await measure(data, { one: async (q) => (await query(q, 1))[0], batch: query });
      rows.push({
        data: data.name,
        system,
        setting: `M=16 efC=64 ef_search=${ef}`,
        ...m,
        ...(rows.length === 0
          ? {
              buildS: loadS,
              note:
                `chroma run (chromadb-js-bindings ${bindings}) in its own process; add in batches of ${chunk}; ` +
                'B=64 one request; one collection per ef_search (modify() did not change the search)',
            }
          : {}),
      });
      await client.deleteCollection({ name: collection.name });
    }
    const peak = server.peakMiB();
    if (peak !== undefined) Object.assign(rows[0], { peakMiB: peak, peakNote: 'the Chroma server process' });
    return rows;
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
