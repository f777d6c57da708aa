import { randomUUID } from 'node:crypto';
import pg from 'pg';

const adminUrl = process.env.DATABASE_URL_TEST ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Runs `fn` against a fresh database on the test PostgreSQL, dropped afterwards. */
export async function withScratchDb<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `hs_bench_${randomUUID().replace(/-/g, '')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}
