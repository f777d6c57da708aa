import { Router } from 'express';
import type { HyperSync } from '../../integration/hyper-sync.js';
import { createCollectionBody } from '../schemas.js';
import { parse } from '../validate.js';
import { definedOnly } from '../../core/options.js';

/** `/v1/collections`: create, list, describe (counts across both tiers), drop, consistency. */
export function collectionRoutes(hs: HyperSync): Router {
  const r = Router();
  r.post('/', async (req, res) => {
    const body = parse(createCollectionBody, req.body);
    const spec = definedOnly({ dim: body.dim, metric: body.metric, encoder: body.encoder });
    res.status(201).json(await hs.createCollection(body.name, spec));
  });
  r.get('/', (_req, res) => {
    res.json({ collections: hs.listCollections() });
  });
  r.get('/:c', async (req, res) => {
    res.json(await hs.stats(req.params.c));
  });
  r.delete('/:c', async (req, res) => {
    await hs.dropCollection(req.params.c);
    res.status(204).end();
  });
  r.get('/:c/consistency', async (req, res) => {
    res.json(await hs.verifyConsistency(req.params.c));
  });
  return r;
}
