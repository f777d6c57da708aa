import { createInterface } from 'node:readline/promises';
import { Command, InvalidArgumentError as CommanderArgumentError, Option } from 'commander';
import { assertCollectionName } from '../core/collection-name.js';
import { InvalidArgumentError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import { METRICS, type Metric } from '../core/metric.js';
import type { HyperSync } from '../integration/hyper-sync.js';
import type { CliStore } from './cli-store.js';

/** What the collections commands take from the CLI's entry point. */
export interface CollectionsCommandDeps {
  /** Runs `fn` on a HyperSync opened from the environment, closed afterwards (in process only). */
  withStore: <T>(fn: (hs: HyperSync) => Promise<T>) => Promise<T>;
  /** Runs `fn` on the store: over HTTP when a server holds it (or `HYPERSYNC_URL` names one), else in process. */
  withData: <T>(fn: (store: CliStore) => Promise<T>) => Promise<T>;
  /** Writes a value to stdout as JSON. */
  print: (value: unknown) => void;
}

/** A dimension: an integer from 1 to `LIMITS.dim`, as the library and HTTP accept. */
const dimension = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > LIMITS.dim) throw new CommanderArgumentError(`an integer from 1 to ${LIMITS.dim}`);
  return n;
};

/** Asks on the terminal; true only for an explicit yes. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/**
 * `hypersync collections create|list|drop`: the collection catalogue, on the store the
 * environment configures (as `serve` opens it), or over HTTP on the server that holds it. Bad
 * input exits 2 with a one-line message.
 */
export function collectionsCommand({ withData, print }: CollectionsCommandDeps): Command {
  const cmd = new Command('collections').description('create, list and drop collections');

  cmd
    .command('create')
    .description("create a collection (its dimension from --dim, or from --encoder's model)")
    .argument('<name>', '1-63 letters, digits or underscores, not starting with a digit')
    .option('-d, --dim <n>', `vector dimension (1-${LIMITS.dim}; default: the encoder's)`, dimension)
    .addOption(new Option('-m, --metric <metric>', 'similarity metric').choices(METRICS).default('cosine'))
    .option('-e, --encoder <name>', "the encoder whose model embeds the collection's texts (HYPERSYNC_ENCODERS)")
    .action(async (name: string, opts: { dim?: number; metric: Metric; encoder?: string }) => {
      assertCollectionName(name);
      if (opts.dim === undefined && opts.encoder === undefined) {
        throw new InvalidArgumentError('give --dim, or --encoder to take the dimension from its model');
      }
      await withData(async (store) => {
        print(
          await store.createCollection(name, {
            metric: opts.metric,
            ...(opts.dim !== undefined ? { dim: opts.dim } : {}),
            ...(opts.encoder !== undefined ? { encoder: opts.encoder } : {}),
          }),
        );
      });
    });

  cmd
    .command('list')
    .description('the collections: name, dimension, metric and encoder')
    .action(async () => {
      await withData(async (store) => {
        print(await store.listCollections());
      });
    });

  cmd
    .command('drop')
    .description('drop a collection from both tiers, with its items and snapshot')
    .argument('<name>')
    .option('-y, --yes', 'do not ask (required when stdin is not a terminal)')
    .action(async (name: string, opts: { yes?: boolean }) => {
      await withData(async (store) => {
        // Not found is reported before any question.
        await store.findCollection(name);
        if (opts.yes !== true) {
          if (!process.stdin.isTTY) throw new InvalidArgumentError(`dropping collection ${name} deletes its items: pass --yes`);
          const { count } = await store.stats(name);
          if (!(await confirm(`drop collection ${name} and its ${count} items?`))) {
            process.stderr.write('hypersync: not dropped\n');
            process.exitCode = 1;
            return;
          }
        }
        await store.dropCollection(name);
        print({ dropped: name });
      });
    });

  return cmd;
}
