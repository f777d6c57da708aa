#!/usr/bin/env node
import { Presets, SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError as CommanderArgumentError, Option } from 'commander';
import { pino } from 'pino';
import { resolveDevice } from '../../kernels/device.js';
import { METRICS, type Metric } from '../core/metric.js';
import { loadConfig } from '../config.js';
import { encodersFromConfig } from '../encoder/from-config.js';
import { quantizeModelDir } from '../encoder/quantize.js';
import { ConfigError, HyperSyncError, InvalidArgumentError } from '../core/errors.js';
import { HyperSync } from '../integration/hyper-sync.js';
import { optionsFromConfig } from '../integration/options.js';
import { BullJobQueue } from '../jobs/bullmq-job-queue.js';
import { startWorker } from '../../workers/from-config.js';
import { type JobInfo, type JobType, percentOf } from '../jobs/job-queue.js';
import { Service } from '../service.js';
import { VERSION } from '../core/version.js';
import { openVectorFile } from './vector-files.js';
import { backupCommands } from './backup-commands.js';
import { collectionsCommand } from './collections.js';
import { dataCommands } from './data-commands.js';
import { indexCommand } from './index-command.js';
import { LIMITS } from '../core/limits.js';

/** Runs `fn` on a HyperSync opened from the environment (as `serve` would), closed afterwards. */
async function withStore<T>(fn: (hs: HyperSync) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const encoders = await encodersFromConfig(config);
  try {
    const hs = await HyperSync.open(optionsFromConfig(config, { encoder: encoders.encoder, encoders: encoders.encoders }));
    try {
      return await fn(hs);
    } finally {
      await hs.close();
    }
  } finally {
    await encoders.close();
  }
}

const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CommanderArgumentError('a positive integer');
  return n;
};

/** A positive integer up to a limit of the one table (`LIMITS`) the library and HTTP enforce too. */
const upTo =
  (limit: number) =>
  (v: string): number => {
    const n = positiveInt(v);
    if (n > limit) throw new CommanderArgumentError(`at most ${limit}`);
    return n;
  };

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
    const svc = await Service.start(loadConfig());
    const stop = (signal: string): void => {
      svc.log.info({ signal }, 'shutting down');
      svc.close().then(
        () => process.exit(0),
        (err: unknown) => {
          svc.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
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
    const info = await resolveDevice(loadConfig().device);
    process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  });

program
  .command('import')
  .description('import vectors from a .jsonl, .npy or .fvecs file (resumable: ids already stored are skipped)')
  .argument('<file>', 'the file')
  .requiredOption('-c, --collection <name>', "target collection (created with the file's dimension if missing)")
  .addOption(new Option('-m, --metric <metric>', 'metric of a new collection').choices(METRICS).default('cosine'))
  .option('-b, --batch <n>', `items per write (at most ${LIMITS.itemsPerCall})`, upTo(LIMITS.itemsPerCall), 1000)
  .action(async (file: string, opts: { collection: string; metric: Metric; batch: number }) => {
    const input = await openVectorFile(file);
    await withStore(async (hs) => {
      if (!hs.listCollections().some((c) => c.name === opts.collection)) {
        if (input.dim === undefined) {
          throw new InvalidArgumentError(
            `collection ${opts.collection} does not exist; create it first (a .jsonl file does not say its dimension)`,
          );
        }
        await hs.createCollection(opts.collection, { dim: input.dim, metric: opts.metric });
      }
      const bar = new SingleBar(
        {
          format: 'import |{bar}| {value}/{total} | {rate} vectors/s | ETA {eta_formatted} | skipped {skipped}',
          stream: process.stderr,
          etaBuffer: 20,
          // Logs and CI are not terminals: a line a second there, and one at the end.
          noTTYOutput: true,
          notTTYSchedule: 1000,
        },
        Presets.shades_classic,
      );
      bar.start(input.total ?? 0, 0, { rate: 0, skipped: 0 });
      const t0 = performance.now();
      let done = 0;
      let stored = 0;
      let skipped = 0;
      for await (const batch of input.batches(opts.batch)) {
        // Resuming: ids already in the NVM were imported by an earlier run.
        const existing = await hs.storedVersions(
          opts.collection,
          batch.map((it) => it.id as string),
        );
        const todo = batch.filter((it) => !existing.has(it.id as string));
        if (todo.length > 0) await hs.store(opts.collection, todo);
        done += batch.length;
        stored += todo.length;
        skipped += batch.length - todo.length;
        if (input.total === undefined) bar.setTotal(done);
        bar.update(done, { rate: Math.round(stored / ((performance.now() - t0) / 1000)), skipped });
      }
      bar.stop();
      print({ collection: opts.collection, read: done, stored, skipped, seconds: (performance.now() - t0) / 1000 });
    });
  });

program
  .command('verify')
  .description('compare both tiers for a collection; exits 1 when they differ (unless --repair fixed it)')
  .argument('<collection>')
  .option('--repair', 'make the HVS match the NVM where they differ')
  .action(async (collection: string, opts: { repair?: boolean }) => {
    const consistent = await withStore(async (hs) => {
      await hs.ready(collection);
      if (opts.repair) {
        const r = await hs.repair(collection);
        print(r);
        return r.after.consistent;
      }
      const report = await hs.verifyConsistency(collection);
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
    await withStore(async (hs) => {
      const names = collection !== undefined ? [collection] : hs.listCollections().map((c) => c.name);
      await hs.ready();
      print(await Promise.all(names.map((n) => hs.stats(n))));
    });
  });

program.addCommand(collectionsCommand({ withStore, print }));
for (const c of dataCommands({ withStore, print })) program.addCommand(c);
for (const c of backupCommands({ withStore, print })) program.addCommand(c);
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
