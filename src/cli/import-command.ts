import { Command, InvalidArgumentError as CommanderArgumentError, Option } from 'commander';
import { InvalidArgumentError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import { METRICS, type Metric } from '../core/metric.js';
import type { StoreItem } from '../integration/types.js';
import type { CliStore } from './cli-store.js';
import type { CollectionsCommandDeps } from './collections.js';
import { ImportProgress } from './import-progress.js';
import { openVectorFile } from './vector-files.js';

/** Items per write: in process, and over HTTP (where fewer, larger requests pay). */
const BATCH = { local: 1000, remote: 5000 } as const;

const upTo =
  (limit: number) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new CommanderArgumentError('a positive integer');
    if (n > limit) throw new CommanderArgumentError(`at most ${limit}`);
    return n;
  };

interface ImportOptions {
  collection: string;
  metric: Metric;
  batch?: number;
  concurrency: number;
  progress?: boolean;
}

/** One batch through: the ids stored already are skipped (a resumed import), the rest written. */
async function importBatch(store: CliStore, collection: string, batch: StoreItem[]): Promise<[number, number]> {
  const existing = await store.storedIds(
    collection,
    batch.map((it) => it.id as string),
  );
  const todo = existing.size > 0 ? batch.filter((it) => !existing.has(it.id as string)) : batch;
  if (todo.length > 0) await store.store(collection, todo);
  return [todo.length, batch.length - todo.length];
}

/**
 * `hypersync import <file> -c <collection>`: vectors from a `.jsonl`, `.npy` or `.fvecs` file, in
 * batches; in process, or over HTTP with a few batches in flight when a server holds the store.
 * Progress (done/total, vectors/s, ETA) goes to stderr; stdout gets one JSON result.
 */
export function importCommand({ withData, print }: CollectionsCommandDeps): Command {
  return new Command('import')
    .description('import vectors from a .jsonl, .npy or .fvecs file (resumable: ids already stored are skipped)')
    .argument('<file>', 'the file')
    .requiredOption('-c, --collection <name>', "target collection (created with the file's dimension if missing)")
    .addOption(new Option('-m, --metric <metric>', 'metric of a new collection').choices(METRICS).default('cosine'))
    .option(
      '-b, --batch <n>',
      `items per write (at most ${LIMITS.itemsPerCall}; default ${BATCH.local}, over HTTP ${BATCH.remote})`,
      upTo(LIMITS.itemsPerCall),
    )
    .option('--concurrency <n>', 'batches in flight over HTTP', upTo(64), 4)
    .option('--progress', 'live progress on stderr even when it is not a terminal (a line a second)')
    .action(async (file: string, opts: ImportOptions) => {
      const input = await openVectorFile(file);
      await withData(async (store) => {
        if (!(await store.listCollections()).some((c) => c.name === opts.collection)) {
          if (input.dim === undefined) {
            throw new InvalidArgumentError(
              `collection ${opts.collection} does not exist; create it first (a .jsonl file does not say its dimension)`,
            );
          }
          await store.createCollection(opts.collection, { dim: input.dim, metric: opts.metric });
        }
        const size = opts.batch ?? (store.remote ? BATCH.remote : BATCH.local);
        const limit = store.remote ? opts.concurrency : 1;
        const progress = new ImportProgress({ total: input.total, live: process.stderr.isTTY || opts.progress === true });
        const t0 = performance.now();
        let stored = 0;
        let skipped = 0;
        const inFlight = new Set<Promise<void>>();
        try {
          for await (const batch of input.batches(size)) {
            const p: Promise<void> = importBatch(store, opts.collection, batch).then(([s, k]) => {
              stored += s;
              skipped += k;
              progress.add(s, k);
              inFlight.delete(p);
            });
            inFlight.add(p);
            if (inFlight.size >= limit) await Promise.race(inFlight);
          }
          await Promise.all(inFlight);
        } catch (err) {
          progress.stop();
          // The batches still in flight end on their own; their outcome no longer matters.
          for (const p of inFlight) void p.catch(() => undefined);
          throw err;
        }
        progress.finish(store.remote ? `over HTTP, batches of ${size}, up to ${limit} in flight` : `batches of ${size}`);
        const read = stored + skipped;
        print({ collection: opts.collection, read, stored, skipped, seconds: (performance.now() - t0) / 1000 });
      });
    });
}
