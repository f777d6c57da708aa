import { z } from 'zod';
import { MAX_K, METRICS } from '../../kernels/types.js';
import { COLLECTION_NAME } from '../hvs/collection-name.js';
import { MAX_ID_LENGTH } from '../hvs/guards.js';
import { MAX_DIM } from '../hvs/vector-input.js';
import { MAX_ITEMS } from '../integration/item-input.js';
import { JOB_DATA } from '../jobs/job-data.js';

/** Collection names as the NVM accepts them: identifiers. */
export const collectionName = z
  .string()
  .regex(COLLECTION_NAME, 'use 1-63 letters, digits or underscores, not starting with a digit');

/**
 * A vector: a JSON array of finite numbers, or for large batches the base64 of its little-endian
 * float32 bytes (decoded straight into a Float32Array, see vector-body.ts).
 */
export const vectorValue = z.union([
  z.array(z.number()).min(1, 'a vector needs at least one number').max(MAX_DIM, `at most ${MAX_DIM} dimensions`),
  z
    .string()
    .min(1, 'an empty base64 vector')
    .max(Math.ceil((MAX_DIM * 4) / 3) + 4, `at most ${MAX_DIM} dimensions`),
]);

export const createCollectionBody = z.strictObject({
  name: collectionName,
  dim: z.number().int().min(1).max(MAX_DIM).optional(),
  metric: z.enum(METRICS).optional(),
  encoder: z.string().min(1).optional(),
});

export const itemBody = z.strictObject({
  id: z.string().min(1).max(MAX_ID_LENGTH).optional(),
  vector: vectorValue.optional(),
  text: z.string().optional(),
  content: z.string().nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

export const storeBody = z.strictObject({
  items: z.array(itemBody).min(1, 'at least one item').max(MAX_ITEMS, `at most ${MAX_ITEMS} items per request`),
  persist: z.boolean().optional(),
});

export const queryBody = z.strictObject({
  queries: z
    .array(z.strictObject({ vector: vectorValue.optional(), text: z.string().optional() }))
    .min(1, 'at least one query')
    .max(4096, 'at most 4096 queries per request'),
  k: z.number().int().min(1).max(MAX_K),
  include: z.array(z.enum(['content', 'metadata', 'vector'])).optional(),
  minLsn: z.number().int().min(0).optional(),
});

export const encodeBody = z.strictObject({
  texts: z.array(z.string()).min(1, 'at least one text'),
  encoder: z.string().min(1).optional(),
});

/** What `POST /v1/collections/:c/jobs` takes besides a job type's own data. */
const jobOptions = {
  /** Idempotency key: a second job of the same type and key answers the first one's id. */
  key: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^:]+$/, 'a key may not contain ":"')
    .optional(),
  attempts: z.number().int().min(1).max(100).optional(),
};

/**
 * A job for a collection: `type`, the job options, and the type's data (`JOB_DATA`) without
 * `collection`, which the path names.
 */
export const jobBody = z.discriminatedUnion('type', [
  JOB_DATA.sync.omit({ collection: true }).extend({ type: z.literal('sync'), ...jobOptions }),
  JOB_DATA.rebuild.omit({ collection: true }).extend({ type: z.literal('rebuild'), ...jobOptions }),
  JOB_DATA.verify.omit({ collection: true }).extend({ type: z.literal('verify'), ...jobOptions }),
  JOB_DATA.reindex.omit({ collection: true }).extend({ type: z.literal('reindex'), ...jobOptions }),
  JOB_DATA.embed.omit({ collection: true }).extend({ type: z.literal('embed'), ...jobOptions }),
  JOB_DATA.compact.omit({ collection: true }).extend({ type: z.literal('compact'), ...jobOptions }),
]);

/** The job types that can run over every collection at once, and their bodies (`POST /v1/jobs`). */
export const ALL_COLLECTION_JOB_TYPES = ['sync', 'verify', 'compact'] as const;
export const allCollectionsJobBody = z.discriminatedUnion('type', [
  JOB_DATA.sync.omit({ collection: true }).extend({ type: z.literal('sync'), ...jobOptions }),
  JOB_DATA.verify.omit({ collection: true }).extend({ type: z.literal('verify'), ...jobOptions }),
  JOB_DATA.compact.omit({ collection: true }).extend({ type: z.literal('compact'), ...jobOptions }),
]);
