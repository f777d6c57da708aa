/**
 * pgvector's HNSW in the local PostgreSQL (DATABASE_URL_TEST, a scratch database dropped
 * afterwards) in the ANN benchmark: one table (id int4, embedding vector(dim)) loaded by binary
 * COPY, `CREATE INDEX … USING hnsw (embedding vector_cosine_ops) WITH (m = 16,
 * ef_construction = 64)`, hnsw.ef_search swept. B = 1 on one connection; B = 64 as 64 queries
 * issued together over 2 connections.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { type AnnData, type AnnRow, K, log, measure, mib, timed } from './ann-common.js';
import { withScratchDb } from './scratch-db.js';

export const PGVECTOR_EFS = [40, 100, 200, 400];
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
      await db.query(`CREATE TABLE items (id int4 NOT NULL, embedding vector(${data.dim}) NOT NULL)`);
      const [, loadS] = await timed(async () => {
        for (let off = 0; off < data.n; off += COPY_ROWS) {
          const count = Math.min(COPY_ROWS, data.n - off);
          const payload = encodeRows(data.base, data.dim, off, count);
          await pipeline(Readable.from([payload]), db.query(copyFrom('COPY items (id, embedding) FROM STDIN BINARY')));
          if ((off + count) % 100_000 === 0 || off + count === data.n) log(`pgvector: ${off + count}/${data.n} copied`);
        }
      });
      await db.query("SET maintenance_work_mem = '2GB'");
      await db.query('SET max_parallel_maintenance_workers = 1');
      log('pgvector: building HNSW (m=16, ef_construction=64)');
      const [, indexS] = await timed(() =>
        db.query('CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)'),
      );
      await db.query('VACUUM ANALYZE items');
      const size = await db.query<{ bytes: string }>("SELECT pg_relation_size('items_hnsw') AS bytes");
      const indexMiB = mib(Number(size.rows[0].bytes));
      const search = async (c: pg.Client, q: Float32Array): Promise<number[]> => {
        const r = await c.query<{ id: number }>({
          name: 'knn',
          text: `SELECT id FROM items ORDER BY embedding <=> $1::vector LIMIT ${K}`,
          values: [vectorText(q)],
        });
        return r.rows.map((x) => x.id);
      };
      const rows: AnnRow[] = [];
      for (const ef of PGVECTOR_EFS) {
        log(`pgvector: ef_search=${ef}`);
        await Promise.all(clients.map((c) => c.query(`SET hnsw.ef_search = ${ef}`)));
        const m = await measure(data, {
          one: (q) => search(db, q),
          batch: (qs, nq) =>
            Promise.all(
              Array.from({ length: nq }, (_, i) => search(clients[i % 2], qs.subarray(i * data.dim, (i + 1) * data.dim))),
            ),
        });
        rows.push({
          data: data.name,
          system: 'pgvector HNSW',
          setting: `m=16 efC=64 ef_search=${ef}`,
          ...m,
          ...(rows.length === 0
            ? {
                buildS: loadS + indexS,
                memMiB: indexMiB,
                memNote: 'index relation size',
                note: `COPY ${loadS.toFixed(1)} s + index ${indexS.toFixed(1)} s (maintenance_work_mem 2GB, 1 parallel worker); B=64 over 2 connections`,
              }
            : {}),
        });
      }
      return rows;
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
}
