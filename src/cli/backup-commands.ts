import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { InvalidArgumentError } from '../core/errors.js';
import type { BackupProgress } from '../integration/backup.js';
import type { CollectionsCommandDeps } from './collections.js';
import { checkReadableFile } from './vector-files.js';

/** A progress bar on stderr: a line a second where stderr is not a terminal, and one at the end. */
function progressBar(what: string): SingleBar {
  return new SingleBar(
    {
      format: `${what} |{bar}| {value}/{total} blocks | {phase} {collection}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 1000,
    },
    Presets.shades_classic,
  );
}

const showOn =
  (bar: SingleBar) =>
  (p: BackupProgress): void => {
    bar.setTotal(p.total);
    bar.update(p.blocks, { phase: p.phase, collection: p.collection });
  };

/**
 * `hypersync backup <collection|--all> <file>` and `hypersync restore <file> [--collection name...]`,
 * run in this process on the store the environment configures (as `serve` opens it). Bad input
 * and a corrupt or existing file exit 2 with a one-line message.
 */
export function backupCommands({ withStore, print }: CollectionsCommandDeps): Command[] {
  const backup = new Command('backup')
    .description(
      'write a consistent point-in-time copy of a collection (or of every one with --all) to a new file, ' +
        "gzip'd when its name ends in .gz; writes go on meanwhile, and WAL-only writes are persisted first",
    )
    .argument('<collection|file>', 'the collection, then the file; with --all, only the file')
    .argument('[file]', 'the backup file to create (never overwritten)')
    .option('-a, --all', 'every collection')
    .action(async (first: string, second: string | undefined, opts: { all?: boolean }) => {
      if (opts.all === true && second !== undefined) {
        throw new InvalidArgumentError('with --all, give only the file (hypersync backup --all <file>)');
      }
      if (opts.all !== true && second === undefined) {
        throw new InvalidArgumentError('give a collection and a file (or --all and a file)');
      }
      const file = opts.all === true ? first : (second as string);
      await withStore(async (hs) => {
        const bar = progressBar('backup');
        bar.start(0, 0, { phase: 'start', collection: '' });
        const result = await hs
          .backup(file, { ...(opts.all === true ? {} : { collections: [first] }), onProgress: showOn(bar) })
          .finally(() => bar.stop());
        print({ file, ...result });
      });
    });

  const restore = new Command('restore')
    .description(
      'restore a backup file into collections that do not exist yet (every one in it, or those named); the file ' +
        'is checked in full first, and the digests afterwards equal the source',
    )
    .argument('<file>', 'the backup file')
    .option('-c, --collection <name...>', 'restore only these collections')
    .action(async (file: string, opts: { collection?: string[] }) => {
      await checkReadableFile(file, '');
      await withStore(async (hs) => {
        const bar = progressBar('restore');
        bar.start(0, 0, { phase: 'start', collection: '' });
        const result = await hs
          .restore(file, { ...(opts.collection ? { collections: opts.collection } : {}), onProgress: showOn(bar) })
          .finally(() => bar.stop());
        print({ file, ...result });
      });
    });
  return [backup, restore];
}
