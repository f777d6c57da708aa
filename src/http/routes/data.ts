import { Router } from 'express';
import { InvalidArgumentError } from '../../core/errors.js';
import type { Filter } from '../../core/filter.js';
import { definedOnly } from '../../core/options.js';
import type { HyperSync } from '../../integration/hyper-sync.js';
import type { ListedItem } from '../../integration/types.js';
import { countBody, deleteItemsBody, explainBody, getItemsBody, patchItemBody, scrollBody } from '../schemas.js';
import { parse } from '../validate.js';

/** An item with its vector as a JSON array. */
function json(item: ListedItem): Record<string, unknown> {
  return item.vector ? { ...item, vector: Array.from(item.vector) } : { ...item };
}

/**
 * The data API of a collection: delete by ids or filter, count, scroll, get many, patch, and the
 * query plan (`/v1/collections/:c/…`).
 */
export function dataRoutes(hs: HyperSync): Router {
  const r = Router({ mergeParams: true });
  r.post('/:c/items/delete', async (req, res) => {
    const body = parse(deleteItemsBody, req.body);
    const ids = 'ids' in body ? body.ids : undefined;
    const filter = 'filter' in body ? (body.filter as Filter | undefined) : undefined;
    if ((ids === undefined) === (filter === undefined)) throw new InvalidArgumentError('give exactly one of ids and filter');
    res.json(ids ? await hs.delete(req.params.c, ids) : await hs.deleteWhere(req.params.c, filter as Filter));
  });
  r.post('/:c/items/scroll', async (req, res) => {
    const body = parse(scrollBody, req.body);
    const page = await hs.scroll(
      req.params.c,
      definedOnly({ filter: body.filter as Filter | undefined, limit: body.limit, cursor: body.cursor, include: body.include }),
    );
    res.json({ items: page.items.map(json), nextCursor: page.nextCursor });
  });
  r.post('/:c/items/get', async (req, res) => {
    const body = parse(getItemsBody, req.body);
    const items = await hs.getMany(req.params.c, body.ids, definedOnly({ include: body.include }));
    res.json({ items: items.map(json) });
  });
  r.post('/:c/count', async (req, res) => {
    const body = parse(countBody, req.body ?? {});
    res.json({ count: await hs.count(req.params.c, body.filter as Filter | undefined) });
  });
  r.patch('/:c/items/:id', async (req, res) => {
    const body = parse(patchItemBody, req.body);
    res.json(await hs.patch(req.params.c, req.params.id, definedOnly({ metadata: body.metadata, content: body.content })));
  });
  r.post('/:c/explain', async (req, res) => {
    const body = parse(explainBody, req.body ?? {});
    await hs.findCollection(req.params.c);
    res.json(
      hs.explain(
        req.params.c,
        definedOnly({
          k: body.k,
          filter: body.filter as Filter | undefined,
          include: body.include,
          minLsn: body.minLsn,
          minScore: body.minScore,
          exact: body.exact,
          nprobe: body.nprobe,
          targetRecall: body.targetRecall,
        }),
      ),
    );
  });
  return r;
}
