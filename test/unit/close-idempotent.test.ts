import { pino } from 'pino';
import { afterAll, describe, it } from 'vitest';
import { OnnxSearchKernel } from '../../kernels/onnx-kernel.js';
import { WorkerSearchKernel } from '../../kernels/worker-kernel.js';
import { resolveDevice } from '../../kernels/device.js';
import { generateTestModel } from '../../models/generate-test-model.js';
import { loadConfig } from '../../src/config.js';
import { ClosedError, UnavailableError } from '../../src/core/errors.js';
import { HashingEncoder } from '../../src/encoder/hashing-encoder.js';
import { OnnxEncoder } from '../../src/encoder/onnx-encoder.js';
import { Hvs } from '../../src/hvs/hvs.js';
import { WriteAheadLog } from '../../src/integration/write-ahead-log.js';
import { InlineJobQueue } from '../../src/jobs/inline-job-queue.js';
import type { JobContext } from '../../src/jobs/processor.js';
import { LocalFleet } from '../../src/jobs/node-ops.js';
import { PgliteDriver } from '../../src/nvm/pglite-driver.js';
import { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';
import { Service } from '../../src/service.js';
import { expectClosesTwice, type Closable } from '../fixtures/close-twice.js';
import { openHyperSync } from '../fixtures/hypersync.js';
import { tempDir } from '../fixtures/temp-dirs.js';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const dir = (): Promise<string> => tempDir('close-', cleanups);
const v = (...xs: number[]): Float32Array => Float32Array.from(xs);
const cpu = () => resolveDevice('cpu');

/** Every resource with a close() that needs no service: how to open it, used, for real. */
const cases: [string, () => Promise<Closable>][] = [
  [
    'Hvs',
    async () => {
      const hvs = await Hvs.open({ dataDir: await dir(), device: 'cpu', kernelThread: 'main' });
      return {
        close: () => hvs.close(),
        use: () => hvs.createCollection('c', { dim: 2, metric: 'l2' }),
        closedWith: ClosedError,
      };
    },
  ],
  [
    'HvsCollection',
    async () => {
      const hvs = await Hvs.open({ dataDir: await dir(), device: 'cpu', kernelThread: 'main' });
      cleanups.push(() => hvs.close());
      const c = hvs.createCollection('c', { dim: 2, metric: 'l2' });
      await c.upsert(['a'], [v(1, 2)]);
      return { close: () => c.close(), use: () => c.upsert(['b'], [v(1, 1)]), closedWith: ClosedError };
    },
  ],
  [
    'WriteAheadLog',
    async () => {
      const { wal } = await WriteAheadLog.open({ dir: await dir() });
      await wal.append({ type: 'delete', collection: 'c', ids: ['a'] });
      return {
        close: () => wal.close(),
        use: () => wal.append({ type: 'delete', collection: 'c', ids: ['b'] }),
        closedWith: ClosedError,
      };
    },
  ],
  [
    'HashingEncoder',
    () => {
      const e = new HashingEncoder({ dim: 8 });
      return Promise.resolve({ close: () => e.close(), use: () => e.encode(['x']), closedWith: ClosedError });
    },
  ],
  ...[0, 1].map((workers): [string, () => Promise<Closable>] => [
    `OnnxEncoder (${workers === 0 ? 'main thread' : 'worker pool'})`,
    async () => {
      const modelDir = await dir();
      await generateTestModel(modelDir, 'tiny');
      const e = await OnnxEncoder.open({ modelDir, device: 'cpu', workers, workerIntraOpThreads: 1 });
      await e.encode(['warm the session or the pool']);
      return { close: () => e.close(), use: () => e.encode(['x']), closedWith: ClosedError };
    },
  ]),
  [
    'OnnxSearchKernel',
    async () => {
      const k = new OnnxSearchKernel(await cpu(), { intraOpThreads: 1 });
      await k.createIndex(v(1, 2, 3, 4), 2, 2, 'l2');
      return { close: () => k.close(), use: () => k.createIndex(v(1, 2), 1, 2, 'l2'), closedWith: ClosedError };
    },
  ],
  [
    'WorkerSearchKernel',
    async () => {
      const k = new WorkerSearchKernel(await cpu(), { threads: 1, intraOpThreads: 1 });
      await k.createIndex(v(1, 2, 3, 4), 2, 2, 'l2');
      return { close: () => k.close(), use: () => k.createIndex(v(1, 2), 1, 2, 'l2'), closedWith: ClosedError };
    },
  ],
  [
    'InlineJobQueue',
    () => {
      const q = new InlineJobQueue({
        processors: {} as ConstructorParameters<typeof InlineJobQueue>[0]['processors'],
        context: { log: pino({ level: 'silent' }) } as unknown as JobContext,
        concurrency: { sync: 1, rebuild: 1, verify: 1, reindex: 1, embed: 1, compact: 1 },
      });
      // Its guard answers 503 as UnavailableError, the queue being a service's front door.
      return Promise.resolve({ close: () => q.close(), use: () => q.add('sync', {}), closedWith: UnavailableError });
    },
  ],
  [
    'PgliteDriver',
    async () => {
      const d = await PgliteDriver.open(await dir());
      await d.query('select 1');
      return { close: () => d.close(), use: () => d.query('select 1'), closedWith: ClosedError };
    },
  ],
  [
    'SqlNvmStore (PGlite)',
    async () => {
      const s = await SqlNvmStore.open({ dataDir: await dir() });
      return { close: () => s.close(), use: () => s.lastLsn(), closedWith: ClosedError };
    },
  ],
  [
    'HyperSync (PGlite) and its LocalFleet',
    async () => {
      const hs = await openHyperSync({ kernelThread: 'main' }, cleanups, 'close-hs-');
      await hs.createCollection('c', { dim: 2, metric: 'l2' });
      await hs.store('c', [{ id: 'a', vector: v(1, 2) }], { persist: false });
      const fleet = new LocalFleet(hs);
      return {
        close: async () => {
          await fleet.close();
          await hs.close();
        },
        use: () => hs.store('c', [{ vector: v(1, 1) }]),
        closedWith: ClosedError,
      };
    },
  ],
  [
    'Service (PGlite, inline jobs, HTTP)',
    async () => {
      const svc = await Service.start(
        loadConfig({ HYPERSYNC_DATA_DIR: await dir(), HYPERSYNC_PORT: '0', HYPERSYNC_DEVICE: 'cpu' }),
        pino({ level: 'silent' }),
      );
      return { close: () => svc.close(), use: () => svc.hs.listCollections() && svc.hs.ready(), closedWith: ClosedError };
    },
  ],
];

describe('close() is idempotent', () => {
  it.each(cases)(
    '%s: twice at once and once more resolve; use after close is refused',
    async (_name, open) => {
      await expectClosesTwice(await open());
    },
    240_000,
  );
});
