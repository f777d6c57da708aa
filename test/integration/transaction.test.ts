import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClosedError, CollectionNotFoundError, DimensionMismatchError } from '../../src/core/errors.js';
import type { HyperSync } from '../../src/integration/hyper-sync.js';
import { Transaction, type TransactionHost } from '../../src/integration/transaction.js';
import { openHyperSyncOn } from '../fixtures/hypersync.js';
import { hyperSyncBackends } from '../fixtures/nvm-backends.js';
import { postgresProblem, servicesRequired } from '../fixtures/services.js';
import { bits } from '../fixtures/vectors.js';

const pgProblem = await postgresProblem();
if (pgProblem && !servicesRequired) console.warn(`skipping PostgreSQL transaction tests: ${pgProblem}`);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const v = (...xs: number[]): Float32Array => Float32Array.from(xs);

describe.each(hyperSyncBackends(pgProblem, cleanups))('HyperSync.transaction on $name', (backend) => {
  let hs: HyperSync;
  let run = 0;
  // One instance per backend (opening is slow); each test has collections of its own.
  const c = (name: string): string => `${name}_${run}`;
  const pair = async (): Promise<[string, string]> => {
    run++;
    for (const name of [c('a'), c('b')]) await hs.createCollection(name, { dim: 2, metric: 'l2' });
    return [c('a'), c('b')];
  };
  beforeAll(async () => {
    if (backend.skip) return;
    hs = await openHyperSyncOn(backend, { pollIntervalMs: 200 }, cleanups, 'hs-tx-');
    cleanups.push(() => hs.close());
  }, 180_000);

  it.skipIf(backend.skip)('commits stores and deletes over several collections together, in both tiers', async () => {
    const [a, b] = await pair();
    await hs.store(a, [{ id: 'old', vector: v(0, 1) }]);
    const before = await hs.nvm.lastLsn();
    const { result, lsn } = await hs.transaction(async (tx) => {
      const ids = await tx.store(a, [{ id: 'x', vector: v(1, 2), content: 'cx' }, { vector: v(3, 4) }]);
      await tx.store(b, [{ id: 'y', vector: v(5, 6) }]);
      tx.delete(a, ['old']);
      return ids;
    });
    expect(result[0]).toBe('x');
    expect(result).toHaveLength(2);
    expect(lsn).toBe(await hs.nvm.lastLsn());
    // The commit's change rows, and nothing else, lie between the lsn before and the one returned.
    const rows = await hs.nvm.changesAfter(before);
    expect(rows.every((r) => r.lsn <= lsn)).toBe(true);
    expect(rows.map((r) => `${r.collection}/${r.blockId}/${r.op}`).sort()).toEqual(
      [`${a}/x/upsert`, `${a}/${result[1]}/upsert`, `${b}/y/upsert`, `${a}/old/delete`].sort(),
    );
    expect(await hs.get(a, 'x')).toMatchObject({ content: 'cx' });
    expect(bits((await hs.get(b, 'y'))!.vector)).toEqual(bits(v(5, 6)));
    expect(await hs.get(a, 'old')).toBeUndefined();
    expect((await hs.query(a, [v(1, 2)], 1))[0][0].id).toBe('x');
    expect((await hs.nvm.getBlocks(a, ['x', 'old'])).size).toBe(1);
    expect((await hs.verifyConsistency(a)).consistent).toBe(true);
  });

  it.skipIf(backend.skip)('rolls back: when the callback throws, neither tier changes and the error comes through', async () => {
    const [a] = await pair();
    await hs.store(a, [{ id: 'keep', vector: v(1, 1) }]);
    const before = await hs.nvm.lastLsn();
    const boom = new Error('boom');
    await expect(
      hs.transaction(async (tx) => {
        await tx.store(a, [{ id: 'x', vector: v(1, 2) }]);
        tx.delete(a, ['keep']);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await hs.nvm.lastLsn()).toBe(before);
    expect(await hs.get(a, 'x')).toBeUndefined();
    expect(await hs.get(a, 'keep')).toBeDefined();
  });

  it.skipIf(backend.skip)('bad input throws inside the callback, typed, before anything is written', async () => {
    const [a] = await pair();
    const before = await hs.nvm.lastLsn();
    let seen: unknown;
    await expect(
      hs.transaction(async (tx) => {
        await tx.store(a, [{ id: 'ok', vector: v(1, 1) }]);
        seen = await tx.store(a, [{ id: 'bad', vector: v(1, 2, 3) }]).catch((e: unknown) => e);
        throw seen;
      }),
    ).rejects.toBeInstanceOf(DimensionMismatchError);
    expect(seen).toBeInstanceOf(DimensionMismatchError);
    await expect(hs.transaction(async (tx) => tx.store('no_such', [{ vector: v(1, 1) }]))).rejects.toBeInstanceOf(
      CollectionNotFoundError,
    );
    expect(await hs.nvm.lastLsn()).toBe(before);
  });

  it.skipIf(backend.skip)('is atomic: a commit the NVM refuses leaves the earlier writes of it out of both tiers', async () => {
    const [a, b] = await pair();
    await expect(
      hs.transaction(async (tx) => {
        await tx.store(a, [{ id: 'x', vector: v(1, 2) }]);
        await tx.store(b, [{ id: 'y', vector: v(3, 4) }]);
        // Another process drops b before the commit: its write fails in the NVM transaction.
        await hs.nvm.dropCollection(b);
      }),
    ).rejects.toBeInstanceOf(CollectionNotFoundError);
    expect(await hs.get(a, 'x')).toBeUndefined();
    expect((await hs.nvm.getBlocks(a, ['x'])).size).toBe(0);
  });

  it.skipIf(backend.skip)('reads inside the callback do not see its own writes; after the commit they do', async () => {
    const [a] = await pair();
    const { result } = await hs.transaction(async (tx) => {
      await tx.store(a, [{ id: 'x', vector: v(1, 2) }]);
      return hs.get(a, 'x');
    });
    expect(result).toBeUndefined();
    expect(await hs.get(a, 'x')).toBeDefined();
  });

  it.skipIf(backend.skip)(
    'refuses use after the commit or the rollback with a ClosedError; an empty one commits nothing',
    async () => {
      const [a] = await pair();
      let kept: Transaction | undefined;
      const empty = await hs.transaction((tx) => {
        kept = tx;
        return Promise.resolve(42);
      });
      expect(empty).toEqual({ result: 42, lsn: 0 });
      await expect(kept!.store(a, [{ vector: v(1, 1) }])).rejects.toBeInstanceOf(ClosedError);
      expect(() => kept!.delete(a, ['x'])).toThrow(ClosedError);
      await hs
        .transaction((tx) => {
          kept = tx;
          return Promise.reject(new Error('no'));
        })
        .catch(() => undefined);
      await expect(kept!.store(a, [{ vector: v(1, 1) }])).rejects.toBeInstanceOf(ClosedError);
    },
  );

  it.skipIf(backend.skip)(
    'a WAL-only write of an id the transaction rewrites is persisted first, so the commit wins',
    async () => {
      const [a] = await pair();
      await hs.store(a, [{ id: 'x', vector: v(9, 9) }], { persist: false });
      await hs.transaction(async (tx) => {
        await tx.store(a, [{ id: 'x', vector: v(1, 2) }]);
      });
      const [nvmBlock] = (await hs.nvm.getBlocks(a, ['x'])).values();
      expect(bits(nvmBlock.vectors[0])).toEqual(bits(v(1, 2)));
      expect(nvmBlock.version).toBe(2);
      expect(bits((await hs.get(a, 'x'))!.vector)).toEqual(bits(v(1, 2)));
    },
  );
});

describe('Transaction', () => {
  // A host whose checks resolve only when told: the only way to have a store still being checked
  // when the transaction ends.
  it('refuses a store whose checks finish after the transaction ended, and keeps the order of its writes', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const host = {
      async prepareStore(collection: string) {
        if (collection === 'slow') await gate;
        return { ids: [collection], op: { type: 'upsert', state: collection, blocks: [] } };
      },
      prepareDelete: (collection: string, ids: readonly string[]) => ({ type: 'delete', state: collection, ids: [...ids] }),
    } as unknown as TransactionHost;
    const tx = new Transaction(host);
    expect(await tx.store('first', [])).toEqual(['first']);
    tx.delete('second', ['d']);
    const late = tx.store('slow', []);
    const ops = tx.seal();
    release();
    await expect(late).rejects.toBeInstanceOf(ClosedError);
    expect(ops.map((o) => o.type)).toEqual(['upsert', 'delete']);
  });
});
