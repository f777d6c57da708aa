import { type Response, Router } from 'express';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../../core/errors.js';
import type { HyperSync } from '../../integration/hyper-sync.js';
import { JOB_TYPES, type JobQueue } from '../../jobs/job-queue.js';
import { ALL_COLLECTION_JOB_TYPES, allCollectionsJobBody, jobBody } from '../schemas.js';
import { parse } from '../validate.js';
import { publicMessage } from '../public-message.js';

/**
 * Background jobs, mounted under `/v1`: `POST /collections/:c/jobs` queues one (202 and a
 * `Location`), `POST /jobs` one over every collection (sync, verify, compact, backup, restore), `GET /jobs/:id` and
 * `DELETE /jobs/:id` read and cancel it, `GET /jobs` counts them.
 * Without a job queue every route answers 503.
 */
export function jobRoutes(hs: HyperSync, jobs: JobQueue | undefined): Router {
  const r = Router();
  const queue = (): JobQueue => {
    if (!jobs) throw new UnavailableError('background jobs are not available: this server was started without a job queue');
    return jobs;
  };

  r.post('/collections/:c/jobs', async (req, res) => {
    const q = queue();
    checkEnvelope(req.body);
    if ((req.body as { type: string }).type === 'restore') {
      throw new InvalidArgumentError(
        'body.type: a restore job creates its collections, which must not exist: POST /v1/jobs {"type": "restore", "name", "collections"?}',
      );
    }
    const { type, key, attempts, ...params } = parse(jobBody, req.body);
    // The collection is the NVM's to know (a worker may serve it before this process loads it).
    await hs.findCollection(req.params.c);
    accepted(res, await q.add(type, { ...params, collection: req.params.c }, { key, attempts }));
  });

  // Over every collection: a compact prunes the change log, a verify checks them all, a backup copies them
  // (or those named), a restore creates those of a backup.
  r.post('/jobs', async (req, res) => {
    const q = queue();
    checkEnvelope(req.body);
    const type = (req.body as { type: string }).type;
    if (!(ALL_COLLECTION_JOB_TYPES as readonly string[]).includes(type)) {
      throw new InvalidArgumentError(
        `body.type: a ${type} job needs a collection (POST /v1/collections/:c/jobs); over every collection: ${ALL_COLLECTION_JOB_TYPES.join(', ')}`,
      );
    }
    const { type: t, key, attempts, ...params } = parse(allCollectionsJobBody, req.body);
    accepted(res, await q.add(t, params, { key, attempts }));
  });

  r.get('/jobs', async (_req, res) => {
    const q = queue();
    res.json({ kind: q.kind, counts: await q.counts() });
  });
  r.get('/jobs/:id', async (req, res) => {
    const info = await queue().get(req.params.id);
    if (!info) throw new NotFoundError(`no job ${JSON.stringify(req.params.id)}`);
    res.json(info.error === undefined ? info : { ...info, error: publicMessage(info.error) });
  });
  r.delete('/jobs/:id', async (req, res) => {
    const info = await queue().cancel(req.params.id);
    if (!info) throw new NotFoundError(`no job ${JSON.stringify(req.params.id)}`);
    res.json(info.error === undefined ? info : { ...info, error: publicMessage(info.error) });
  });
  return r;
}

/** 202 with the job's id and where to follow it. */
function accepted(res: Response, { id, created }: { id: string; created: boolean }): void {
  res
    .status(202)
    .location(`/v1/jobs/${encodeURIComponent(id)}`)
    .json({ jobId: id, created });
}

/** Clearer answers than the schema's for the two mistakes it reports least plainly. */
function checkEnvelope(body: unknown): void {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (!(JOB_TYPES as readonly unknown[]).includes(b.type)) {
    throw new InvalidArgumentError(`body.type: must be one of ${JOB_TYPES.join(', ')}, got ${shown(b.type)}`);
  }
  if ('collection' in b) {
    throw new InvalidArgumentError(
      'body.collection: not a parameter (the path names the collection: POST /v1/collections/:c/jobs)',
    );
  }
}

/**
 * A value a client sent, for a message: a scalar as JSON, an array or object by its kind (a
 * deeply nested one would overflow `JSON.stringify`'s stack and answer 500).
 */
function shown(value: unknown): string {
  if (value === undefined) return 'none';
  if (Array.isArray(value)) return 'an array';
  if (value !== null && typeof value === 'object') return 'an object';
  return JSON.stringify(value);
}
