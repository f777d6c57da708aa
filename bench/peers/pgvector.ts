/**
 * pgvector in the local PostgreSQL (DATABASE_URL_TEST, a scratch database dropped afterwards) in
 * the peers benchmark: one table (id int4, embedding vector(dim)) loaded by binary COPY; first the
 * exact scan (no index), then `CREATE INDEX … USING hnsw (embedding vector_cosine_ops) WITH (m = 16,
 * ef_construction = 64)` with hnsw.ef_search swept. Each setting twice: B = 1 and B = 64 on one
 * connection (64 queries pipelined), then B = 64 as 64 queries issued together over 2 connections.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { type AnnData, type AnnRow, K, log, measure, mib, timed } from './common.js';
import { withScratchDb } from '../lib/scratch-db.js';
import { procPeakMiB } from './server.js';

export const PGVECTOR_EFS = [40, 100, 200, 400, 800];
/** Above this many rows the HNSW build is skipped unless BENCH_PGVECTOR=1 (the exact scan always runs). */
const HNSW_MAX_N = 200_000;
const COPY_ROWS = 10_000;

/** Binary COPY payload of rows (int4 id, vector). */
function encodeRows(vectors: Float32Array, dim: number, first: number, count: number): Buffer {
  const signature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
  const rowBytes = 2 + 4 + 4 + 4 + 4 + dim * 4;
  const buf = Buffer.allocUnsafe(signature.length + 8 + count * rowBytes + 2);
  let o = signature.copy(buf, 0);
  o = buf.writeInt32BE(0, o);
  o = buf.writeInt32BE(0, o);
  for (let i = 0; i < count; i++) {
    o = buf.writeInt16BE(2, o);
    o = buf.writeInt32BE(4, o);
    o = buf.writeInt32BE(first + i, o);
    // pgvector's binary form: int16 dimensions, int16 unused, big-endian float4 × dimensions.
    o = buf.writeInt32BE(4 + dim * 4, o);
    o = buf.writeInt16BE(dim, o);
    o = buf.writeInt16BE(0, o);
    const v = vectors.subarray((first + i) * dim, (first + i + 1) * dim);
    Buffer.from(v.buffer, v.byteOffset, v.byteLength).copy(buf, o);
    buf.subarray(o, o + dim * 4).swap32();
    o += dim * 4;
  }
  buf.writeInt16BE(-1, o);
  return buf;
}

const vectorText = (q: Float32Array): string => `[${Array.from(q).join(',')}]`;

export async function runPgvector(data: AnnData): Promise<AnnRow[]> {
  return withScratchDb(async (url) => {
    const clients = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const [db] = clients;
      await db.query('CREATE EXTENSION IF NOT EXISTS vector');
      const version = (await db.query<{ v: string }>("SELECT extversion AS v FROM pg_extension WHERE extname = 'vector'")).rows[0]
        .v;
      const system = `pgvector ${version}`;
      await db.query(`CREATE TABLE items (id int4 NOT NULL, embedding vector(${data.dim}) NOT NULL)`);
      const [, loadS] = await timed(async () => {
        for (let off = 0; off < data.n; off += COPY_ROWS) {
          const count = Math.min(COPY_ROWS, data.n - off);
          const payload = encodeRows(data.base, data.dim, off, count);
          await pipeline(Readable.from([payload]), db.query(copyFrom('COPY items (id, embedding) FROM STDIN BINARY')));
          if ((off + count) % 100_000 === 0 || off + count === data.n) log(`pgvector: ${off + count}/${data.n} copied`);
        }
      });
      await db.query('VACUUM ANALYZE items');
      const search = async (c: pg.Client, q: Float32Array): Promise<number[]> => {
        const r = await c.query<{ id: number }>({
          name: 'knn',
          text: `SELECT id FROM items ORDER BY embedding <=> $1::vector LIMIT ${K}`,
          values: [vectorText(q)],
        });
        return r.rows.map((x) => x.id);
      };
      /** B = 1 and B = 64 on one connection, then B = 64 spread over both. */
      const bothConnections = async (setting: string, first: Partial<AnnRow>): Promise<AnnRow[]> => {
        const row = (conns: number) => ({
          data: data.name,
          system,
          series: `pgvector ${setting.split(' ')[0]}, ${conns} conn${conns > 1 ? 's' : ''}`,
        });
        const one = await measure(data, {
          one: (q) => search(db, q),
          batch: (qs, nq) =>
            Promise.all(Array.from({ length: nq }, (_, i) => search(db, qs.subarray(i * data.dim, (i + 1) * data.dim)))),
        });
        const two = await measure(
          data,
          {
            one: (q) => search(db, q),
            batch: (qs, nq) =>
              Promise.all(
                Array.from({ length: nq }, (_, i) => search(clients[i % 2], qs.subarray(i * data.dim, (i + 1) * data.dim))),
              ),
          },
          { skipSingle: true },
        );
        return [
          { ...row(1), setting: `${setting}, 1 conn`, ...one, ...first },
          { ...row(2), setting: `${setting}, 2 conns (B=64 only)`, ...two },
        ];
      };
      const rows: AnnRow[] = [];
      const tableMiB = mib(Number((await db.query<{ b: string }>("SELECT pg_table_size('items') AS b")).rows[0].b));
      log('pgvector: exact scan (no index)');
      const pid = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const exact = await bothConnections('exact scan', {
        buildS: loadS,
        buildLabel: `${system}: COPY (exact scan)`,
        memMiB: tableMiB,
        memNote: 'table size',
        note: `binary COPY ${loadS.toFixed(1)} s; sequential scan + top-N sort, PostgreSQL's default parallel workers`,
      });
      const scanPeak = procPeakMiB(pid);
      if (scanPeak !== undefined)
        Object.assign(exact[0], { peakMiB: scanPeak, peakNote: 'the querying backend, without its parallel workers' });
      rows.push(...exact);
      if (data.n > HNSW_MAX_N && process.env.BENCH_PGVECTOR !== '1') {
        rows.push({
          data: data.name,
          system,
          setting: 'HNSW',
          note: `skipped above ${HNSW_MAX_N} rows: the HNSW build takes about 35 min at 1M here; set BENCH_PGVECTOR=1`,
        });
        return rows;
      }
      await db.query("SET maintenance_work_mem = '2GB'");
      await db.query('SET max_parallel_maintenance_workers = 1');
      log('pgvector: building HNSW (m=16, ef_construction=64)');
      const [, indexS] = await timed(() =>
        db.query('CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)'),
      );
      await db.query('VACUUM ANALYZE items');
      const peak = procPeakMiB(pid);
      const size = await db.query<{ bytes: string }>("SELECT pg_relation_size('items_hnsw') AS bytes");
      const indexMiB = mib(Number(size.rows[0].bytes));
      for (const ef of PGVECTOR_EFS) {
        log(`pgvector: ef_search=${ef}`);
        await Promise.all(clients.map((c) => c.query(`SET hnsw.ef_search = ${ef}`)));
        const first = rows.length === 2;
        rows.push(
          ...(await bothConnections(
            `HNSW ef_search=${ef}`,
            first
              ? {
                  buildS: loadS + indexS,
                  buildLabel: `${system}: COPY + HNSW build`,
                  memMiB: indexMiB,
                  memNote: 'index relation size',
                  ...(peak === undefined ? {} : { peakMiB: peak, peakNote: 'the building backend' }),
                  note: `COPY ${loadS.toFixed(1)} s + index ${indexS.toFixed(1)} s (m=16, ef_construction=64, maintenance_work_mem 2GB, 1 parallel worker)`,
                }
              : {},
          )),
        );
      }
      return rows.map((r) => (r.setting.startsWith('HNSW') ? { ...r, setting: `m=16 efC=64 ${r.setting.slice(5)}` } : r));
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
}
