/**
 * hypersync over HTTP in the peers benchmark: the real service (`hypersync serve`) in its own
 * process on the local PostgreSQL (a scratch database), loaded through `POST …/items` in batches
 * of 5,000 with base64 vectors, its IVF index trained by an `index` job, then queried through
 * `POST …/query` with the vectors as JSON arrays and as base64 float32s: exact (`exact: true`) and
 * the IVF default. B = 1 is one request per query; B = 64 one request of 64 queries.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { withScratchDb } from '../lib/scratch-db.js';
import { type AnnData, type AnnRow, K, log, measure, mib, timed } from './common.js';
import { freePort, startServer } from './server.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const LOAD_BATCH = 5000;

const b64 = (v: Float32Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

async function call<T>(method: string, url: string, body?: unknown): Promise<T> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${new URL(url).pathname}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

export async function runHttp(data: AnnData): Promise<AnnRow[]> {
  return withScratchDb(async (dbUrl) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'bench-peers-http-'));
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: dbUrl,
      HYPERSYNC_DATA_DIR: dataDir,
      HYPERSYNC_HOST: '127.0.0.1',
      HYPERSYNC_PORT: String(port),
      // Trained below by an index job, timed, not in the background while loading.
      HYPERSYNC_IVF_MIN_ROWS: '0',
      LOG_LEVEL: 'warn',
    };
    delete env.REDIS_URL;
    delete env.HYPERSYNC_API_KEYS;
    const api = `http://127.0.0.1:${port}/v1`;
    const server = await startServer(
      'hypersync serve',
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve'],
      env,
      `http://127.0.0.1:${port}/readyz`,
    );
    try {
      await call('POST', `${api}/collections`, { name: 'bench', dim: data.dim, metric: 'cosine' });
      const [, loadS] = await timed(async () => {
        for (let off = 0; off < data.n; off += LOAD_BATCH) {
          const end = Math.min(data.n, off + LOAD_BATCH);
          const items = [];
          for (let i = off; i < end; i++)
            items.push({ id: String(i), vector: b64(data.base.subarray(i * data.dim, (i + 1) * data.dim)) });
          await call('POST', `${api}/collections/bench/items`, { items });
          if (end % 50_000 === 0 || end === data.n) log(`hypersync HTTP: ${end}/${data.n} stored`);
        }
      });
      log('hypersync HTTP: index job');
      const [, trainS] = await timed(async () => {
        const { jobId } = await call<{ jobId: string }>('POST', `${api}/collections/bench/jobs`, { type: 'index' });
        for (;;) {
          const job = await call<{ state: string; error?: string }>('GET', `${api}/jobs/${jobId}`);
          if (job.state === 'completed') return;
          if (job.state === 'failed' || job.state === 'cancelled') throw new Error(`index job ${job.state}: ${job.error ?? ''}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      });
      const status = await call<{ hvs: { bytes?: number; index?: { ivf?: { nlist: number; nprobe: number } } } }>(
        'GET',
        `${api}/collections/bench`,
      );
      const ivf = status.hvs.index?.ivf;
      const query = `${api}/collections/bench/query`;
      const search = async (body: string): Promise<number[][]> => {
        const out = await call<{ results: { id: string }[][] }>('POST', query, body);
        return out.results.map((hits) => hits.map((h) => Number(h.id)));
      };
      const rows: AnnRow[] = [];
      const forms = [
        { form: 'JSON', vector: (q: Float32Array): unknown => Array.from(q) },
        { form: 'base64', vector: b64 },
      ];
      const modes = [
        { mode: 'exact', opts: { exact: true }, setting: 'exact' },
        { mode: 'IVF', opts: {}, setting: `IVF default${ivf?.nprobe ? ` nprobe=${ivf.nprobe}/${ivf.nlist}` : ''}` },
      ];
      for (const { mode, opts, setting } of modes) {
        for (const { form, vector } of forms) {
          log(`hypersync HTTP: ${setting}, ${form}`);
          const body = (qs: Float32Array, nq: number): string =>
            JSON.stringify({
              queries: Array.from({ length: nq }, (_, i) => ({ vector: vector(qs.subarray(i * data.dim, (i + 1) * data.dim)) })),
              k: K,
              ...opts,
            });
          const m = await measure(data, {
            one: async (q) => (await search(body(q, 1)))[0],
            batch: (qs, nq) => search(body(qs, nq)),
          });
          rows.push({
            data: data.name,
            system: 'hypersync HTTP',
            series: `hypersync ${mode}, HTTP ${form}`,
            setting: `${setting}, ${form} vectors`,
            ...m,
            ...(rows.length === 0
              ? {
                  buildS: loadS + trainS,
                  buildLabel: 'hypersync HTTP: load + index job',
                  ...(status.hvs.bytes ? { memMiB: mib(status.hvs.bytes), memNote: 'HVS bytes' } : {}),
                  note: `service on PostgreSQL: HTTP load ${loadS.toFixed(1)} s (${Math.round(data.n / loadS)}/s, batches of ${LOAD_BATCH}, base64) + index job ${trainS.toFixed(1)} s`,
                }
              : {}),
          });
        }
      }
      const peak = server.peakMiB();
      if (peak !== undefined) Object.assign(rows[0], { peakMiB: peak, peakNote: 'the service process' });
      return rows;
    } finally {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
}
