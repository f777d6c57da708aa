import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresProblem, redisProblem, servicesRequired, testDatabaseUrl } from '../fixtures/services.js';

// The later tiers (NVM on PostgreSQL + pgvector, jobs on Redis) test against these services.
// With HYPERSYNC_REQUIRE_SERVICES=1 (CI) a missing service fails here; elsewhere it is skipped
// with its reason printed.
const pgProblem = await postgresProblem();
const redis = await redisProblem();
if (!servicesRequired) {
  for (const p of [pgProblem, redis]) if (p) console.warn(`skipping service test: ${p}`);
}

describe('services the later tiers need', () => {
  it.skipIf(!servicesRequired && pgProblem !== null)('PostgreSQL is up and has the pgvector extension', async () => {
    expect(pgProblem).toBeNull();
    const client = new pg.Client({ connectionString: testDatabaseUrl });
    await client.connect();
    try {
      await client.query('CREATE EXTENSION IF NOT EXISTS vector');
      const { rows } = await client.query<{ d: number }>(`SELECT '[1,2,3]'::vector <-> '[3,2,1]'::vector AS d`);
      expect(rows[0].d).toBeCloseTo(Math.sqrt(8), 10);
    } finally {
      await client.end();
    }
  });

  it.skipIf(!servicesRequired && redis !== null)('Redis answers PING', () => {
    expect(redis).toBeNull();
  });
});
