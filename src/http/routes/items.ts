import { Router } from 'express';
import { InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import type { HyperSync } from '../../integration/hyper-sync.js';
import type { StoreItem } from '../../integration/types.js';
import type { Filter } from '../../core/filter.js';
import { queryBody, storeBody } from '../schemas.js';
import { parse } from '../validate.js';
import { vectorFromBody } from '../vector-body.js';
import { definedOnly } from '../../core/options.js';

/** Items and queries of a collection: `/v1/collections/:c/items`, `/v1/collections/:c/query`. */
export function itemRoutes(hs: HyperSync): Router {
  const r = Router({ mergeParams: true });
  r.post('/:c/items', async (req, res) => {
    const body = parse(storeBody, req.body);
    const items: StoreItem[] = body.items.map((it, i) => {
      const vector = it.vector !== undefined ? vectorFromBody(it.vector, `items[${i}].vector`) : undefined;
      return definedOnly({ id: it.id, vector, text: it.text, content: it.content, metadata: it.metadata });
    });
    const out = await hs.store(req.params.c, items, { persist: body.persist ?? true });
    res.json(out);
  });
  r.get('/:c/items/:id', async (req, res) => {
    const got = await hs.get(req.params.c, req.params.id);
    if (!got) throw new NotFoundError(`no item ${JSON.stringify(req.params.id)} in collection ${req.params.c}`);
    res.json({ ...got, vector: Array.from(got.vector) });
  });
  r.delete('/:c/items/:id', async (req, res) => {
    const out = await hs.delete(req.params.c, [req.params.id]);
    if (out.deleted === 0) throw new NotFoundError(`no item ${JSON.stringify(req.params.id)} in collection ${req.params.c}`);
    res.json(out);
  });
  r.post('/:c/query', async (req, res) => {
    const body = parse(queryBody, req.body);
    const queries = body.queries.map((q, i) => {
      if ((q.vector === undefined) === (q.text === undefined)) {
        throw new InvalidArgumentError(`queries[${i}] needs exactly one of vector and text`);
      }
      return q.vector !== undefined ? vectorFromBody(q.vector, `queries[${i}].vector`) : (q.text as string);
    });
    const perQuery = body.queries.some((q) => q.filter !== undefined) ? body.queries.map((q) => q.filter) : undefined;
    const opts = definedOnly({
      include: body.include,
      minLsn: body.minLsn,
      filter: body.filter as Filter | undefined,
      filters: perQuery as (Filter | undefined)[] | undefined,
      minScore: body.minScore,
      exact: body.exact,
      nprobe: body.nprobe,
      targetRecall: body.targetRecall,
    });
    const results = await hs.query(req.params.c, queries, body.k, opts);
    res.json({
      results: results.map((list) => list.map((h) => (h.vector ? { ...h, vector: Array.from(h.vector) } : h))),
    });
  });
  return r;
}
