import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { InvalidArgumentError } from '../core/errors.js';
import type { Filter } from '../core/filter.js';
import type { Include, ListedItem } from '../integration/types.js';
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

const json = (it: ListedItem): unknown => (it.vector ? { ...it, vector: Array.from(it.vector) } : it);

/** `hypersync count <collection> [--filter json]`. */
export function countCommand({ withStore, print }: CollectionsCommandDeps): Command {
  return new Command('count')
    .description('how many items of a collection match a filter (all of them without one)')
    .argument('<collection>')
    .option('-f, --filter <json>', 'metadata filter, e.g. \'{"lang": "de"}\'', filterOption)
    .action(async (collection: string, opts: { filter?: Filter }) => {
      await withStore(async (hs) => {
        print({ collection, count: await hs.count(collection, opts.filter) });
      });
    });
}

/**
 * `hypersync scroll <collection> [--filter json] [--limit n] [--cursor c] [--all]`: a page of
 * items in stable id order as JSON, or with `--all` every matching item as JSON lines.
 */
export function scrollCommand({ withStore, print }: CollectionsCommandDeps): Command {
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
        await withStore(async (hs) => {
          let cursor = opts.cursor;
          for (;;) {
            const page = await hs.scroll(collection, {
              limit: opts.limit,
              ...(opts.filter ? { filter: opts.filter } : {}),
              ...(opts.include ? { include: opts.include } : {}),
              ...(cursor !== undefined ? { cursor } : {}),
            });
            if (!opts.all) {
              print({ items: page.items.map(json), nextCursor: page.nextCursor });
              return;
            }
            for (const it of page.items) process.stdout.write(JSON.stringify(json(it)) + '\n');
            if (page.nextCursor === null) return;
            cursor = page.nextCursor;
          }
        });
      },
    );
}
