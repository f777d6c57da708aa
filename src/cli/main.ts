#!/usr/bin/env node
import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { pino } from 'pino';
import { resolveDevice } from '../../kernels/device.js';
import { loadConfig } from '../config.js';
import { encodersFromConfig } from '../encoder/from-config.js';
import { quantizeModelDir } from '../encoder/quantize.js';
import { ConfigError, HyperSyncError } from '../core/errors.js';
import type { HyperSync } from '../integration/hyper-sync.js';
import { BullJobQueue } from '../jobs/bullmq-job-queue.js';
import { startWorker } from '../../workers/from-config.js';
import { type JobInfo, type JobType, percentOf } from '../jobs/job-queue.js';
import { Service } from '../service.js';
import { VERSION } from '../core/version.js';
import type { CliStore } from './cli-store.js';
import { importCommand } from './import-command.js';
import { withData as withDataOf, withStore as withStoreOf } from './open-store.js';
import { removeServeFile, localUrl, writeServeFile } from './serve-file.js';
import { backupCommands } from './backup-commands.js';
import { collectionsCommand } from './collections.js';
import { dataCommands } from './data-commands.js';
import { indexCommand } from './index-command.js';

/** The command being run (`rebuild`, `collections drop`), for messages; set before each action. */
let commandName = '';
const withStore = <T>(fn: (hs: HyperSync) => Promise<T>): Promise<T> => withStoreOf(loadConfig(), commandName, fn);
const withData = <T>(fn: (store: CliStore) => Promise<T>): Promise<T> => withDataOf(loadConfig(), fn);

/** ` 1200/5000 rows` for a progress bar, or nothing when the progress says no counts. */
const rowsOf = (rows: unknown, total: unknown): string =>
  typeof rows === 'number' && typeof total === 'number' ? ` ${rows}/${total} rows` : '';

const print = (value: unknown): void => {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
};

/**
 * Queues a job for `hypersync worker` processes, waits for it (Ctrl-C stops the waiting, not the
 * job) and prints it; the exit code is 1 unless it completed.
 */
async function queueAndWait(
  redisUrl: string,
  prefix: string,
  type: JobType,
  data: Record<string, unknown>,
  hooks: { onQueued?: () => void; onProgress?: (info: JobInfo) => void; onDone?: () => void } = {},
): Promise<void> {
  const queue = new BullJobQueue(redisUrl, prefix);
  try {
    const { id } = await queue.add(type, data);
    process.stderr.write(`hypersync: queued ${id}; a hypersync worker runs it (Ctrl-C stops waiting, not the job)\n`);
    hooks.onQueued?.();
    const info = await queue.wait(id, hooks.onProgress ? { onProgress: hooks.onProgress } : {}).finally(() => hooks.onDone?.());
    print(info);
    if (info.state !== 'completed') process.exitCode = 1;
  } finally {
    await queue.close();
  }
}

const program = new Command();
program.name('hypersync').description('GPU-accelerated vector store service').version(VERSION);

program
  .command('serve')
  .description('run the HTTP service (configured from the environment; see README)')
  .action(async () => {
    const config = loadConfig();
    const svc = await Service.start(config);
    // The handlers go in before anything else is awaited: a SIGTERM right after the service
    // answers must still shut it down cleanly (and remove the serve file once it is written).
    let serveFile: Promise<unknown> = Promise.resolve();
    const stop = (signal: string): void => {
      svc.log.info({ signal }, 'shutting down');
      serveFile
        .then(() => removeServeFile(config.dataDir))
        .catch(() => undefined)
        .then(() => svc.close())
        .then(
          () => process.exit(0),
          (err: unknown) => {
            svc.log.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // Where CLI commands on the same data directory find this server (and talk HTTP to it).
    serveFile = writeServeFile(config.dataDir, {
      pid: process.pid,
      url: localUrl(config.host, svc.port),
      nvm: svc.hs.nvm.backend,
      startedAt: new Date().toISOString(),
    }).catch((err: unknown) => svc.log.warn({ err }, 'no serve file: CLI commands will not find this server'));
  });

program
  .command('worker')
  .description('run background jobs from Redis (needs REDIS_URL and DATABASE_URL; see README)')
  .action(async () => {
    try {
      const config = loadConfig();
      const log = pino({ level: config.logLevel });
      const encoders = await encodersFromConfig(config);
      const worker = await startWorker(config, encoders, log).catch(async (err: unknown) => {
        await encoders.close();
        throw err;
      });
      log.info({ prefix: config.queuePrefix }, 'hypersync worker running');
      const stop = (signal: string): void => {
        log.info({ signal }, 'shutting down');
        // Running jobs get HYPERSYNC_JOB_DRAIN_MS to finish; the rest go back to the queue.
        worker
          .close()
          .then(() => encoders.close())
          .then(
            () => process.exit(0),
            (err: unknown) => {
              log.error({ err }, 'shutdown failed');
              process.exit(1);
            },
          );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    } catch (err) {
      // A worker that cannot run here (no Redis or PostgreSQL configured) is a start-up failure.
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`hypersync: ${err.message}\n`);
      process.exit(1);
    }
  });

program
  .command('device')
  .description('print the compute device HYPERSYNC_DEVICE resolves to, and why')
  .action(async () => {
    const { device, cudaTf32 } = loadConfig();
    const info = await resolveDevice(device, { tf32: cudaTf32 });
    process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  });

program
  .command('verify')
  .description('compare both tiers for a collection; exits 1 when they differ (unless --repair fixed it)')
  .argument('<collection>')
  .option('--repair', 'make the HVS match the NVM where they differ')
  .action(async (collection: string, opts: { repair?: boolean }) => {
    const consistent = await withData(async (store) => {
      await store.ready(collection);
      if (opts.repair) {
        const r = await store.repair(collection);
        print(r);
        return r.after.consistent;
      }
      const report = await store.verify(collection);
      print(report);
      return report.consistent;
    });
    if (!consistent) process.exitCode = 1;
  });

program
  .command('rebuild')
  .description(
    "rebuild a collection's HVS index from the NVM: as a job run by `hypersync worker` with REDIS_URL, in this process without",
  )
  .argument('<collection>')
  .action(async (collection: string) => {
    const config = loadConfig();
    const bar = new SingleBar(
      {
        format: 'rebuild |{bar}| {percentage}% | {phase}{rows}',
        stream: process.stderr,
        noTTYOutput: true,
        notTTYSchedule: 1000,
      },
      Presets.shades_classic,
    );
    if (config.redisUrl !== undefined) {
      await queueAndWait(
        config.redisUrl,
        config.queuePrefix,
        'rebuild',
        { collection },
        {
          onQueued: () => bar.start(100, 0, { phase: 'waiting', rows: '' }),
          onProgress: (i) => {
            const p = typeof i.progress === 'number' ? {} : i.progress;
            bar.update(Math.round(percentOf(i.progress)), { phase: p.phase ?? i.state, rows: rowsOf(p.rows, p.total) });
          },
          onDone: () => bar.stop(),
        },
      );
      return;
    }
    await withStore(async (hs) => {
      bar.start(100, 0, { phase: 'start', rows: '' });
      const result = await hs
        .rebuild(collection, {
          onProgress: (p) => {
            // Streaming out of the NVM is the long part; catching up and switching are short.
            const percent = p.phase === 'stream' ? (p.total > 0 ? (100 * p.rows) / p.total : 0) : 100;
            bar.update(Math.round(percent), { phase: p.phase, rows: rowsOf(p.rows, p.total) });
          },
        })
        .finally(() => bar.stop());
      print(result);
    });
  });

program
  .command('compact')
  .description(
    'merge segments, drop tombstones and snapshot (one collection or all); over all, with REDIS_URL, the job also ' +
      'prunes the change log up to the oldest snapshot of every serving process',
  )
  .argument('[collection]')
  .option(
    '--prune-change-log',
    "in this process (no REDIS_URL): prune the change log up to this process's snapshots too; other processes on " +
      'the same database that fall behind then rebuild from the tables',
  )
  .action(async (collection: string | undefined, opts: { pruneChangeLog?: boolean }) => {
    const config = loadConfig();
    if (config.redisUrl !== undefined) {
      await queueAndWait(config.redisUrl, config.queuePrefix, 'compact', collection !== undefined ? { collection } : {});
      return;
    }
    await withStore(async (hs) => {
      await hs.ready();
      const result = await hs.compact(collection);
      const prune = opts.pruneChangeLog === true && result.changeLogPosition !== undefined;
      print({
        ...result,
        changeLog: prune
          ? await hs.pruneChangeLog(result.changeLogPosition!)
          : { pruned: false, reason: collection !== undefined ? 'one collection' : 'no --prune-change-log' },
      });
    });
  });

program
  .command('quantize')
  .description(
    'write an int8 copy of a float ONNX sentence-transformer (dynamic quantisation, about 2.5x faster on CPU) ' +
      'and compare it with the float model on sample texts',
  )
  .argument('<model-dir>', 'the model directory (as HYPERSYNC_MODEL_DIR)')
  .option('--model-file <file>', 'the float model, relative to the directory (default model.onnx, else onnx/model.onnx)')
  .option('-o, --out <file>', 'output, relative to the directory (default model_qint8.onnx beside the float model)')
  .option('--per-tensor', 'one scale per weight matrix instead of one per output column')
  .option('--reduce-range', '7-bit weights, for CPUs without VNNI (AVX2 only)')
  .option('--no-check', 'skip the comparison with the float model')
  .option('-f, --force', 'replace an existing output file')
  .action(
    async (
      dir: string,
      opts: { modelFile?: string; out?: string; perTensor?: boolean; reduceRange?: boolean; check: boolean; force?: boolean },
    ) => {
      process.stderr.write('quantizing...\n');
      const report = await quantizeModelDir(dir, {
        modelFile: opts.modelFile,
        out: opts.out,
        perChannel: !opts.perTensor,
        reduceRange: opts.reduceRange === true,
        force: opts.force === true,
        check: opts.check,
      });
      print(report);
      process.stderr.write(`use it with HYPERSYNC_MODEL_DIR=${dir} HYPERSYNC_MODEL_FILE=${report.modelFile}\n`);
    },
  );

program
  .command('stats')
  .description('counts across both tiers, for one collection or all')
  .argument('[collection]')
  .action(async (collection: string | undefined) => {
    await withData(async (store) => {
      const names = collection !== undefined ? [collection] : (await store.listCollections()).map((c) => c.name);
      await store.ready();
      print(await Promise.all(names.map((n) => store.stats(n))));
    });
  });

program.hook('preAction', (_program, action) => {
  const names: string[] = [];
  for (let c: Command | null = action; c !== null && c !== program; c = c.parent) names.unshift(c.name());
  commandName = names.join(' ');
});
program.addCommand(importCommand({ withStore, withData, print }));
program.addCommand(collectionsCommand({ withStore, withData, print }));
for (const c of dataCommands({ withStore, withData, print })) program.addCommand(c);
for (const c of backupCommands({ withStore, withData, print })) program.addCommand(c);
program.addCommand(indexCommand({ withStore, print, queueAndWait }));

program.parseAsync().catch((err: unknown) => {
  if (err instanceof HyperSyncError) {
    process.stderr.write(`hypersync: ${err.message}\n`);
    process.exit(2);
  }
  // A system error (a file, a socket, the disk) is one line; anything else is a bug: its stack helps.
  const systemError = err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
  process.stderr.write(
    `hypersync: ${err instanceof Error ? (systemError ? err.message : (err.stack ?? err.message)) : String(err)}\n`,
  );
  process.exit(1);
});
