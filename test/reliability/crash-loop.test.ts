/**
 * The crash loop: `hypersync serve` (embedded PGlite, and PostgreSQL) under a stream of writes
 * from several HTTP clients — new items and overwrites, durable (`persist: true`) and WAL-only
 * (`persist: false`) — is killed with SIGKILL at a random moment, restarted on the same data, and
 * checked (after a sync job, as the data API reads the NVM): every acknowledged write is there with
 * its exact vector, each write that was in flight
 * is there whole or not at all, nothing else appeared, and the verify job finds the tiers
 * consistent. Then the restarted service takes the next round of writes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createScratchDatabase } from '../fixtures/databases.js';
import { rng } from '../fixtures/random.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { tempDir } from '../fixtures/temp-dirs.js';
import { record, scale } from './harness.js';
import { call, runJob, type ServeProcess, startServe } from './serve-process.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping the PostgreSQL crash loop: ${pgProblem}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const ROUNDS = scale(3, 20);
const WRITERS = 4;
const BATCH = 10;
const DIM = 8;
const C = 'crash';

/** The vector of `id` at generation `gen`: recomputed by the checker, exact in float32. */
function vectorOf(id: number, gen: number): Float32Array {
  const v = new Float32Array(DIM);
  for (let j = 0; j < DIM; j++) v[j] = Math.fround(Math.sin(id * 7.31 + j * 1.7 + gen * 0.37) * 100 + j / 3);
  return v;
}

const b64 = (v: Float32Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

/** What the writers know: each id's last acknowledged generation, and the batches in flight. */
interface Ledger {
  acked: Map<number, number>;
  inFlight: Map<number, { ids: number[]; gens: number[] }>;
  nextId: number;
  nextBatch: number;
}

/** One writer's loop until `stop()`: batches of new ids, and every fourth an overwrite of acked ones. */
async function writer(url: string, ledger: Ledger, random: () => number, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    const batch = ledger.nextBatch++;
    const ackedIds = [...ledger.acked.keys()];
    const overwrite = batch % 4 === 3 && ackedIds.length >= BATCH;
    const ids: number[] = [];
    if (overwrite) {
      const inFlightIds = new Set([...ledger.inFlight.values()].flatMap((b) => b.ids));
      for (let tries = 0; ids.length < BATCH && tries < BATCH * 10; tries++) {
        const id = ackedIds[Math.floor(random() * ackedIds.length)];
        if (!ids.includes(id) && !inFlightIds.has(id)) ids.push(id);
      }
    } else {
      for (let i = 0; i < BATCH; i++) ids.push(ledger.nextId++);
    }
    if (ids.length === 0) continue;
    const gens = ids.map((id) => (ledger.acked.get(id) ?? -1) + 1);
    ledger.inFlight.set(batch, { ids, gens });
    const body = {
      items: ids.map((id, i) => ({ id: `i${id}`, vector: b64(vectorOf(id, gens[i])), metadata: { gen: gens[i] } })),
      persist: batch % 3 !== 0,
    };
    let status: number;
    try {
      status = (await call(url, 'POST', `/v1/collections/${C}/items`, body)).status;
    } catch {
      return; // the process was killed under this request: it stays in flight
    }
    if (status !== 200) throw new Error(`write answered ${status}`);
    ids.forEach((id, i) => ledger.acked.set(id, gens[i]));
    ledger.inFlight.delete(batch);
  }
}

/** Reads every known id back and checks it against the ledger; returns [checked, lost]. */
async function check(url: string, ledger: Ledger, round: number): Promise<[number, number]> {
  // The data API reads the NVM: a sync first persists what the WAL brought back (`persist: false`
  // writes acknowledged before the kill).
  const sync = await runJob(url, `/v1/collections/${C}/jobs`, { type: 'sync' });
  expect(sync.state, sync.error).toBe('completed');
  const known = new Set<number>([...ledger.acked.keys(), ...[...ledger.inFlight.values()].flatMap((b) => b.ids)]);
  const got = new Map<number, { vector: number[]; version: number }>();
  const ids = [...known];
  for (let off = 0; off < ids.length; off += 5000) {
    const page = ids.slice(off, off + 5000).map((id) => `i${id}`);
    const r = await call(url, 'POST', `/v1/collections/${C}/items/get`, { ids: page, include: ['vector'] });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    for (const it of r.json.items as { id: string; vector: number[]; version: number }[]) got.set(Number(it.id.slice(1)), it);
  }
  const genOf = (id: number): number | undefined => {
    const item = got.get(id);
    if (!item) return undefined;
    // Which generation's vector is stored (exactly)?
    for (let g = 0; g <= (ledger.acked.get(id) ?? -1) + 1; g++) {
      const want = vectorOf(id, g);
      if (item.vector.length === DIM && item.vector.every((x, j) => x === want[j])) return g;
    }
    return -2; // present, but with a vector no write ever sent
  };
  let lost = 0;
  // Ids of a batch in flight settle as a whole below; the rest must be exactly as acknowledged.
  const inFlightIds = new Set([...ledger.inFlight.values()].flatMap((b) => b.ids));
  for (const [id, gen] of ledger.acked) {
    if (inFlightIds.has(id) || genOf(id) === gen) continue;
    if (lost++ < 5)
      console.error(
        `round ${round}: i${id} acknowledged at generation ${gen}, found ${String(genOf(id))} (version ${String(got.get(id)?.version)})`,
      );
  }
  for (const [batch, { ids: bIds, gens }] of ledger.inFlight) {
    const committed = bIds.map((id, i) => genOf(id) === gens[i]);
    const before = bIds.map((id, i) => genOf(id) === (gens[i] === 0 ? undefined : gens[i] - 1));
    const whole = committed.every(Boolean);
    expect(whole || before.every(Boolean), `round ${round}: batch ${batch} in flight is half-visible`).toBe(true);
    if (whole) bIds.forEach((id, i) => ledger.acked.set(id, gens[i]));
  }
  ledger.inFlight.clear();
  const count = await call(url, 'POST', `/v1/collections/${C}/count`, {});
  expect(count.json.count, `round ${round}: items nobody acknowledged appeared`).toBe(ledger.acked.size);
  const verify = await runJob(url, `/v1/collections/${C}/jobs`, { type: 'verify' });
  expect(verify.state, verify.error).toBe('completed');
  expect((verify.result as { consistent: boolean }).consistent, `round ${round}: ${JSON.stringify(verify.result)}`).toBe(true);
  return [ledger.acked.size, lost];
}

interface Mode {
  name: string;
  skip: boolean;
  env: () => Promise<Record<string, string>>;
}
const modes: Mode[] = [
  { name: 'embedded (PGlite)', skip: false, env: () => Promise.resolve({}) },
  {
    name: 'PostgreSQL',
    skip: pgProblem !== null && !servicesRequired,
    env: async () => {
      const db = await createScratchDatabase();
      cleanups.push(db.drop);
      return { DATABASE_URL: db.url };
    },
  },
];

describe.each(modes)('crash loop on $name', (mode) => {
  it.skipIf(mode.skip)(
    `${ROUNDS} SIGKILLs under writes lose no acknowledged write`,
    async () => {
      const seed = Number(process.env.HYPERSYNC_SEED ?? Date.now() % 1_000_000);
      const random = rng(seed);
      const dataDir = await tempDir('hs-crash-loop-', cleanups);
      const env = { ...(await mode.env()), HYPERSYNC_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
      let svc: ServeProcess = await startServe(env);
      cleanups.push(() => svc.stop('SIGKILL').then(() => undefined));
      expect((await call(svc.url, 'POST', '/v1/collections', { name: C, dim: DIM, metric: 'l2' })).status).toBe(201);
      const ledger: Ledger = { acked: new Map(), inFlight: new Map(), nextId: 0, nextBatch: 0 };
      let checked = 0;
      let lost = 0;
      for (let round = 1; round <= ROUNDS; round++) {
        let stop = false;
        const writers = Array.from({ length: WRITERS }, () => writer(svc.url, ledger, random, () => stop));
        await new Promise((r) => setTimeout(r, 300 + random() * 1500));
        expect(await svc.stop('SIGKILL'), `seed ${seed} round ${round}`).toBe('SIGKILL');
        stop = true;
        await Promise.all(writers);
        svc = await startServe(env);
        const [n, missing] = await check(svc.url, ledger, round);
        checked += n;
        lost += missing;
        expect(missing, `seed ${seed} round ${round}: acknowledged writes lost`).toBe(0);
      }
      await svc.stop('SIGTERM');
      record('crash rounds survived', ROUNDS, mode.name);
      record('acknowledged writes checked', checked, `crash loop, ${mode.name}`);
      record('acknowledged writes lost', lost, `crash loop, ${mode.name}`);
    },
    scale(300_000, 1_200_000),
  );
});
