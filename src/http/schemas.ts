import { z } from 'zod';
import { compileFilter } from '../core/filter.js';
import { LIMITS } from '../core/limits.js';
import { METRICS } from '../core/metric.js';
import { COLLECTION_NAME } from '../core/collection-name.js';
import { JOB_DATA } from '../jobs/job-data.js';

/** Collection names as the NVM accepts them: identifiers. */
export const collectionName = z
  .string()
  .regex(COLLECTION_NAME, 'use 1-63 letters, digits or underscores, not starting with a digit');

/**
 * A vector: a JSON array of finite numbers, or for large batches the base64 of its little-endian
 * float32 bytes (decoded straight into a Float32Array, see vector-body.ts).
 */
export const vectorValue = z.union(
  [
    z.array(z.number()).min(1, 'a vector needs at least one number').max(LIMITS.dim, `at most ${LIMITS.dim} dimensions`),
    z
      .string()
      .min(1, 'an empty base64 vector')
      .max(Math.ceil((LIMITS.dim * 4) / 3) + 4, `at most ${LIMITS.dim} dimensions`),
  ],
  { error: (iss) => badVector(iss.input) },
);

/** Why a value is not a vector, naming the element at fault (a union alone says "Invalid input"). */
export function badVector(input: unknown): string {
  const kind = (x: unknown): string => (x === null ? 'null' : Array.isArray(x) ? 'an array' : `a ${typeof x}`);
  if (typeof input === 'string') return input.length === 0 ? 'an empty base64 vector' : `at most ${LIMITS.dim} dimensions`;
  if (!Array.isArray(input)) return `a vector is an array of numbers or a base64 string of float32s, not ${kind(input)}`;
  if (input.length === 0) return 'a vector needs at least one number';
  if (input.length > LIMITS.dim) return `at most ${LIMITS.dim} dimensions`;
  const i = input.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
  const x: unknown = input[i];
  if (typeof x === 'number') {
    return `element ${i} is ${x}: vectors hold finite numbers (a literal such as 1e999 overflows to Infinity)`;
  }
  if (i >= 0) return `element ${i} is ${kind(x)}, not a number`;
  return 'not a vector';
}

export const createCollectionBody = z.strictObject({
  name: collectionName,
  dim: z.number().int().min(1).max(LIMITS.dim).optional(),
  metric: z.enum(METRICS).optional(),
  encoder: z.string().min(1).optional(),
});

export const itemBody = z.strictObject({
  id: z.string().min(1).max(LIMITS.idLength).optional(),
  vector: vectorValue.optional(),
  text: z.string().max(LIMITS.textChars, `at most ${LIMITS.textChars} characters`).optional(),
  content: z.string().max(LIMITS.textChars, `at most ${LIMITS.textChars} characters`).nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

export const storeBody = z.strictObject({
  items: z
    .array(itemBody)
    .min(1, 'at least one item')
    .max(LIMITS.itemsPerCall, `at most ${LIMITS.itemsPerCall} items per request`),
  persist: z.boolean().optional(),
});

/**
 * A metadata filter: `{field: value}` equality; operators $eq $ne $in $nin $gt $gte $lt $lte
 * $exists $contains; combinators $and $or $not; dotted paths for nested fields. Its contents are
 * checked by the library's grammar (`compileFilter`), which names the bad clause's path.
 */
export const filterValue = z
  .record(z.string(), z.unknown())
  // The grammar's own check, so that a bad clause is a 400 naming its path with the other issues.
  .superRefine((filter, ctx) => {
    try {
      compileFilter(filter, 'filter');
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
    }
  })
  .describe(
    'Metadata filter: {field: value} is equality; operators $eq $ne $in $nin $gt $gte $lt $lte $exists $contains; ' +
      'combinators $and $or $not; nested fields by dotted path ("source.kind").',
  );

/** How a query uses the collection's IVF index (see `AnnOptions`). */
const annFields = {
  exact: z.boolean().optional().describe('Scan every row exactly (the HVS flat scan, or pgvector without HNSW)'),
  nprobe: z
    .number()
    .int()
    .min(1)
    .max(1 << 20)
    .optional()
    .describe('IVF lists scanned per query (default: the nprobe calibrated for recall@10 ≥ 0.95)'),
  targetRecall: z
    .number()
    .gt(0)
    .max(1)
    .optional()
    .describe('The recall@10 wanted: the smallest calibrated nprobe that reached it (1: exact)'),
};

export const queryBody = z.strictObject({
  queries: z
    .array(
      z.strictObject({
        vector: vectorValue.optional(),
        text: z.string().max(LIMITS.textChars, `at most ${LIMITS.textChars} characters`).optional(),
        filter: filterValue.optional(),
      }),
    )
    .min(1, 'at least one query')
    .max(LIMITS.queriesPerCall, `at most ${LIMITS.queriesPerCall} queries per request`),
  k: z.number().int().min(1).max(LIMITS.k),
  include: z.array(z.enum(['content', 'metadata', 'vector'])).optional(),
  minLsn: z.number().int().min(0).optional(),
  /** Applies to every query; a query's own `filter` overrides it. */
  filter: filterValue.optional(),
  /** Drops hits scoring worse: similarity below it (cosine, ip), distance above it (l2). */
  minScore: z.number().optional(),
  ...annFields,
});

export const encodeBody = z.strictObject({
  texts: z
    .array(z.string().max(LIMITS.textChars, `at most ${LIMITS.textChars} characters`))
    .min(1, 'at least one text')
    .max(LIMITS.textsPerCall, `at most ${LIMITS.textsPerCall} texts per request`),
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
  JOB_DATA.index.omit({ collection: true }).extend({ type: z.literal('index'), ...jobOptions }),
  JOB_DATA.backup.omit({ collection: true, collections: true }).extend({ type: z.literal('backup'), ...jobOptions }),
]);

/** The job types that can run over every collection at once, and their bodies (`POST /v1/jobs`). */
export const ALL_COLLECTION_JOB_TYPES = ['sync', 'verify', 'compact', 'backup', 'restore'] as const;
export const allCollectionsJobBody = z.discriminatedUnion('type', [
  JOB_DATA.sync.omit({ collection: true }).extend({ type: z.literal('sync'), ...jobOptions }),
  JOB_DATA.verify.omit({ collection: true }).extend({ type: z.literal('verify'), ...jobOptions }),
  JOB_DATA.compact.omit({ collection: true }).extend({ type: z.literal('compact'), ...jobOptions }),
  JOB_DATA.backup.omit({ collection: true }).extend({ type: z.literal('backup'), ...jobOptions }),
  JOB_DATA.restore.extend({ type: z.literal('restore'), ...jobOptions }),
]);

const includeValue = z
  .array(z.enum(['content', 'metadata', 'vector']))
  .describe('Parts of each item to return besides id and version');
const minScore = z.number().describe('Score threshold: hits scoring worse are dropped');
const itemIds = (max: number): z.ZodArray<z.ZodString> =>
  z.array(z.string().min(1).max(LIMITS.idLength)).min(1, 'at least one id').max(max, `at most ${max} ids per request`);

/** `POST /v1/collections/:c/items/delete`: by ids or by filter. */
export const deleteItemsBody = z.union([
  z.strictObject({ ids: itemIds(LIMITS.itemsPerCall) }),
  z.strictObject({ filter: filterValue }),
]);

/** Most items per scroll page or get-many request. */
export const PAGE_LIMIT = 10_000;

/** `POST /v1/collections/:c/items/scroll`: a page of items in stable id order. */
export const scrollBody = z.strictObject({
  filter: filterValue.optional(),
  limit: z.number().int().min(1).max(PAGE_LIMIT).default(100),
  cursor: z.string().min(1).optional().describe('`nextCursor` of the previous page'),
  include: includeValue.optional(),
});

/** `POST /v1/collections/:c/items/get`: many items by id. */
export const getItemsBody = z.strictObject({ ids: itemIds(PAGE_LIMIT), include: includeValue.optional() });

/** `POST /v1/collections/:c/count`. */
export const countBody = z.strictObject({ filter: filterValue.optional() });

/** `PATCH /v1/collections/:c/items/:id`: new metadata and/or content; the vector stays. */
export const patchItemBody = z
  .strictObject({
    metadata: z.record(z.string(), z.unknown()).optional(),
    content: z.string().max(LIMITS.textChars, `at most ${LIMITS.textChars} characters`).nullable().optional(),
  })
  .refine((b) => b.metadata !== undefined || b.content !== undefined, 'give metadata, content or both')
  .meta({ minProperties: 1 });

/** `POST /v1/collections/:c/explain`: the query options whose plan to show. */
export const explainBody = z.strictObject({
  k: z.number().int().min(1).max(LIMITS.k).optional(),
  filter: filterValue.optional(),
  include: includeValue.optional(),
  minLsn: z.number().int().min(0).optional(),
  minScore: minScore.optional(),
  ...annFields,
});
