import { Presets, SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { loadConfig } from '../config.js';
import { definedOnly } from '../core/options.js';
import { trainingPercent } from '../hvs/ivf/ivf-index.js';
import type { HyperSync } from '../integration/hyper-sync.js';
import { type JobInfo, type JobType, percentOf } from '../jobs/job-queue.js';
import { positive } from './data-commands.js';

/** What `hypersync index` needs from the CLI's entry point. */
export interface IndexCommandDeps {
  withStore: <T>(fn: (hs: HyperSync) => Promise<T>) => Promise<T>;
  print: (value: unknown) => void;
  queueAndWait: (
    redisUrl: string,
    prefix: string,
    type: JobType,
    data: Record<string, unknown>,
    hooks: { onQueued?: () => void; onProgress?: (info: JobInfo) => void; onDone?: () => void },
  ) => Promise<void>;
}

const recall = (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !(n > 0 && n < 1)) throw new CommanderArgumentError('a number in (0, 1), e.g. 0.95');
  return n;
};

/**
 * `hypersync index <collection> [--nlist n] [--target-recall r]`: trains the collection's IVF
 * index (k-means lists of int8 codes, nprobe calibrated on held-out rows) and snapshots it; as a
 * job run by `hypersync worker` processes with REDIS_URL, in this process without. Queries stay
 * exact meanwhile.
 */
export function indexCommand({ withStore, print, queueAndWait }: IndexCommandDeps): Command {
  return new Command('index')
    .description(
      "train a collection's IVF index (approximate search, calibrated for recall@10 ≥ 0.95) and snapshot it: " +
        'as a job run by `hypersync worker` with REDIS_URL, in this process without',
    )
    .argument('<collection>')
    .option('--nlist <n>', 'inverted lists (default ≈ 4·√rows)', positive)
    .option('--target-recall <r>', 'the recall@10 the default nprobe is calibrated for (default 0.95)', recall)
    .action(async (collection: string, opts: { nlist?: number; targetRecall?: number }) => {
      const config = loadConfig();
      const bar = new SingleBar(
        { format: 'index |{bar}| {percentage}% | {phase}', stream: process.stderr, noTTYOutput: true, notTTYSchedule: 1000 },
        Presets.shades_classic,
      );
      const data = definedOnly({ collection, nlist: opts.nlist, targetRecall: opts.targetRecall });
      if (config.redisUrl !== undefined) {
        await queueAndWait(config.redisUrl, config.queuePrefix, 'index', data, {
          onQueued: () => bar.start(100, 0, { phase: 'waiting' }),
          onProgress: (i) => {
            const p = typeof i.progress === 'number' ? {} : i.progress;
            bar.update(Math.round(percentOf(i.progress)), { phase: typeof p.phase === 'string' ? p.phase : i.state });
          },
          onDone: () => bar.stop(),
        });
        return;
      }
      await withStore(async (hs) => {
        await hs.ready(collection);
        bar.start(100, 0, { phase: 'start' });
        const result = await hs
          .trainIndex(collection, {
            ...definedOnly({ nlist: opts.nlist, targetRecall: opts.targetRecall }),
            onProgress: (p) => bar.update(trainingPercent(p), { phase: p.phase }),
          })
          .finally(() => bar.stop());
        print(result);
      });
    });
}
