import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { LIMITS } from '../core/limits.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { Filter } from '../core/filter.js';
import { definedOnly } from '../core/options.js';
import type { AnnOptions } from '../hvs/ivf/ivf-types.js';
import type { Include } from '../integration/types.js';
import type { CollectionsCommandDeps } from './collections.js';

/** A `--filter` value: a JSON object in the filter grammar (checked by the library). */
export function filterOption(v: string): Filter {
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw new CommanderArgumentError('a JSON object, e.g. \'{"tenant": "acme", "year": {"$gte": 2020}}\'');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CommanderArgumentError('a JSON object, e.g. \'{"lang": "de"}\'');
  }
  return parsed as Filter;
}

/** `content,metadata` → the fields, checked by the library. */
export function includeOption(v: string): Include[] {
  return v
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f.length > 0) as Include[];
}

const pageSize = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new CommanderArgumentError('an integer from 1 to 10000');
  return n;
};

/** `hypersync count <collection> [--filter json]`. */
export function countCommand({ withData, print }: CollectionsCommandDeps): Command {
  return new Command('count')
    .description('how many items of a collection match a filter (all of them without one)')
    .argument('<collection>')
    .option('-f, --filter <json>', 'metadata filter, e.g. \'{"lang": "de"}\'', filterOption)
    .action(async (collection: string, opts: { filter?: Filter }) => {
      await withData(async (store) => {
        print({ collection, count: await store.count(collection, opts.filter) });
      });
    });
}

/**
 * `hypersync scroll <collection> [--filter json] [--limit n] [--cursor c] [--all]`: a page of
 * items in stable id order as JSON, or with `--all` every matching item as JSON lines.
 */
export function scrollCommand({ withData, print }: CollectionsCommandDeps): Command {
  return new Command('scroll')
    .description('list the items of a collection that match a filter, a page at a time, in stable id order')
    .argument('<collection>')
    .option('-f, --filter <json>', 'metadata filter, e.g. \'{"lang": "de"}\'', filterOption)
    .option('-l, --limit <n>', 'items per page (1-10000)', pageSize, 100)
    .option('-c, --cursor <cursor>', "the page after this cursor (the previous page's nextCursor)")
    .option('--include <fields>', 'comma-separated: content, metadata, vector', includeOption)
    .option('-a, --all', 'every matching item, one JSON object per line, page after page')
    .action(
      async (
        collection: string,
        opts: { filter?: Filter; limit: number; cursor?: string; include?: Include[]; all?: boolean },
      ) => {
        if (opts.all && opts.cursor !== undefined)
          throw new InvalidArgumentError('--all starts at the first page: drop --cursor');
        await withData(async (store) => {
          let cursor = opts.cursor;
          for (;;) {
            const page = await store.scroll(collection, {
              limit: opts.limit,
              ...(opts.filter ? { filter: opts.filter } : {}),
              ...(opts.include ? { include: opts.include } : {}),
              ...(cursor !== undefined ? { cursor } : {}),
            });
            if (!opts.all) {
              print(page);
              return;
            }
            for (const it of page.items) process.stdout.write(JSON.stringify(it) + '\n');
            if (page.nextCursor === null) return;
            cursor = page.nextCursor;
          }
        });
      },
    );
}

const kOption = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CommanderArgumentError('a positive integer');
  if (n > LIMITS.k) throw new CommanderArgumentError(`at most ${LIMITS.k}`);
  return n;
};

/** A positive integer option (`--nprobe`, `--nlist`). */
export const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new CommanderArgumentError('a positive integer');
  return n;
};

const finite = (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new CommanderArgumentError('a number');
  return n;
};

/** A JSON object option (`--metadata`). */
const jsonObject = (v: string): Record<string, unknown> => filterOption(v);

function parseVector(text: string): Float32Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('--vector must be a JSON array of numbers');
  }
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'number')) {
    throw new InvalidArgumentError('--vector must be a JSON array of numbers');
  }
  return Float32Array.from(parsed);
}

/** `hypersync query <collection> --vector|--text … [-k] [--include] [--filter] [--min-score]`. */
export function queryCommand({ withData, print }: CollectionsCommandDeps): Command {
  return new Command('query')
    .description('k nearest items of a collection for one vector or text')
    .argument('<collection>')
    .option('--vector <json>', 'the query vector as a JSON array')
    .option('--text <text>', 'the query text (encoded)')
    .option('-k <k>', `results (at most ${LIMITS.k})`, kOption, 10)
    .option('--include <fields>', 'comma-separated: content, metadata, vector', includeOption, ['content', 'metadata'])
    .option('-f, --filter <json>', 'metadata filter, e.g. \'{"lang": "de"}\'', filterOption)
    .option('--min-score <score>', 'drop hits scoring worse (similarity below it; for l2, distance above it)', finite)
    .option('--exact', 'scan every item exactly, whatever index the collection has')
    .option('--nprobe <n>', 'IVF lists scanned (default: the one calibrated for recall@10 ≥ 0.95)', positive)
    .option('--target-recall <r>', 'the recall@10 wanted, in (0, 1]: the smallest calibrated nprobe reaching it', finite)
    .action(
      async (
        collection: string,
        opts: { vector?: string; text?: string; k: number; include: Include[]; filter?: Filter; minScore?: number } & AnnOptions,
      ) => {
        if ((opts.vector === undefined) === (opts.text === undefined)) {
          throw new InvalidArgumentError('give exactly one of --vector and --text');
        }
        const query = opts.vector !== undefined ? parseVector(opts.vector) : (opts.text as string);
        await withData(async (store) => {
          await store.ready(collection);
          const hits = await store.query(collection, query, opts.k, {
            include: opts.include,
            ...(opts.filter ? { filter: opts.filter } : {}),
            ...(opts.minScore !== undefined ? { minScore: opts.minScore } : {}),
            ...definedOnly({ exact: opts.exact, nprobe: opts.nprobe, targetRecall: opts.targetRecall }),
          });
          print(hits);
        });
      },
    );
}

/** `hypersync get <collection> <ids...> [--include]`: the items that exist, in the order given. */
export function getCommand({ withData, print }: CollectionsCommandDeps): Command {
  return new Command('get')
    .description('items of a collection by id (those that exist, in the order given)')
    .argument('<collection>')
    .argument('<ids...>')
    .option('--include <fields>', 'comma-separated: content, metadata, vector', includeOption)
    .action(async (collection: string, ids: string[], opts: { include?: Include[] }) => {
      await withData(async (store) => {
        print(await store.getMany(collection, ids, opts.include));
      });
    });
}

/** `hypersync delete <collection> [ids...] [--filter json]`: by ids or by filter, from both tiers. */
export function deleteCommand({ withData, print }: CollectionsCommandDeps): Command {
  return new Command('delete')
    .description('delete items of a collection by id, or every item matching --filter')
    .argument('<collection>')
    .argument('[ids...]')
    .option('-f, --filter <json>', 'metadata filter: delete every item it matches', filterOption)
    .action(async (collection: string, ids: string[], opts: { filter?: Filter }) => {
      if (ids.length > 0 === (opts.filter !== undefined)) throw new InvalidArgumentError('give ids or --filter (one of them)');
      await withData(async (store) => {
        print(opts.filter ? await store.deleteWhere(collection, opts.filter) : await store.delete(collection, ids));
      });
    });
}

/** `hypersync patch <collection> <id> [--metadata json] [--content text | --clear-content]`. */
export function patchCommand({ withData, print }: CollectionsCommandDeps): Command {
  return new Command('patch')
    .description("change an item's metadata (replaced whole) and/or content; its vector stays")
    .argument('<collection>')
    .argument('<id>')
    .option('--metadata <json>', 'the new metadata, a JSON object', jsonObject)
    .option('--content <text>', 'the new content')
    .option('--clear-content', 'set the content to null')
    .action(
      async (
        collection: string,
        id: string,
        opts: { metadata?: Record<string, unknown>; content?: string; clearContent?: boolean },
      ) => {
        if (opts.content !== undefined && opts.clearContent)
          throw new InvalidArgumentError('give --content or --clear-content, not both');
        const content = opts.clearContent ? null : opts.content;
        await withData(async (store) => {
          print(
            await store.patch(collection, id, {
              ...(opts.metadata ? { metadata: opts.metadata } : {}),
              ...(content !== undefined ? { content } : {}),
            }),
          );
        });
      },
    );
}

/** Every data command of the CLI. */
export function dataCommands(deps: CollectionsCommandDeps): Command[] {
  return [queryCommand, countCommand, scrollCommand, getCommand, deleteCommand, patchCommand].map((c) => c(deps));
}
