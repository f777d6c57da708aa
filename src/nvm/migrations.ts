import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { MigrationMismatchError } from '../core/errors.js';
import type { SqlDriver } from './sql-driver.js';

/** One migration file: `NNN_name.sql`. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: number;
}

// Any constant: every process opening the store takes this lock before migrating.
const MIGRATION_LOCK = 7_316_247_801;

/** `db/migrations` of the package, found from this file whether it runs from src/ or dist/. */
export function migrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'db', 'migrations');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('db/migrations not found next to the hypersync package');
}

/** Reads the migration files in version order. */
export async function loadMigrations(dir = migrationsDir()): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_[a-z0-9_]+\.sql$/.test(f)).sort();
  const out: Migration[] = [];
  for (const file of files) {
    const sql = await readFile(join(dir, file), 'utf8');
    const version = Number(file.slice(0, file.indexOf('_')));
    if (out.some((m) => m.version === version)) throw new Error(`two migrations with version ${version}`);
    out.push({ version, name: file.replace(/\.sql$/, ''), sql, checksum: crc32(sql) });
  }
  return out;
}

/**
 * Applies the migrations not yet applied, in one transaction under an advisory lock, so that
 * two processes opening the same database at once neither race nor apply anything twice.
 * Returns the versions applied by this call.
 */
export async function migrate(db: SqlDriver, migrations: readonly Migration[]): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query(`CREATE TABLE IF NOT EXISTS hs_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      checksum   bigint NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await tx.query<{ version: number; checksum: string }>('SELECT version, checksum FROM hs_migrations');
    const applied = new Map(rows.map((r) => [Number(r.version), Number(r.checksum)]));
    const done: number[] = [];
    for (const m of migrations) {
      const sum = applied.get(m.version);
      if (sum !== undefined) {
        if (sum !== m.checksum) throw new MigrationMismatchError(m.version, m.name);
        continue;
      }
      await tx.exec(m.sql);
      await tx.query('INSERT INTO hs_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
      done.push(m.version);
    }
    return done;
  });
}
