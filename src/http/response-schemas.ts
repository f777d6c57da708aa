import { z } from 'zod';
import { METRICS } from '../core/metric.js';
import { JOB_STATES, JOB_TYPES } from '../jobs/job-queue.js';

/**
 * The answers of the HTTP API as zod schemas: the OpenAPI document's `components.schemas` are
 * generated from these (so the typed client's types are), and the e2e tests parse real answers
 * with them. Strict objects: a field the server sends and the document does not name fails there.
 */

const int = z.number().int();
const metadata = z.record(z.string(), z.unknown());
const source = z
  .enum(['hvs', 'nvm', 'hvs+nvm'])
  .describe('Which tiers answered: the HVS, the NVM, or the HVS with content from the NVM');
const tierState = z.enum(['loading', 'ready', 'failed']);

/** The body of every error answer (4xx and 5xx). */
export const errorResponse = z.strictObject({
  error: z.strictObject({
    code: z.string().describe('Stable machine-readable code, e.g. invalid_argument, collection_not_found, unauthorized'),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional().describe('Structured context, e.g. `issues` for a bad body'),
  }),
});

export const encoderRef = z.strictObject({ name: z.string(), version: z.string() });

export const collectionInfo = z.strictObject({
  name: z.string(),
  dim: int,
  metric: z.enum(METRICS),
  encoder: encoderRef.optional().describe('The encoder it was created with; its texts are always encoded by it'),
});

export const collectionList = z.strictObject({ collections: z.array(collectionInfo) });

const indexStats = z
  .strictObject({
    state: z.enum(['flat', 'training', 'ivf']),
    reason: z.string().optional().describe('Why there is no IVF index'),
    minRows: int.describe('Rows at which the IVF index is trained by itself (0: only when asked)'),
    progress: z.strictObject({ phase: z.string(), done: int, total: int }).optional(),
    deltaRows: int.describe('Rows outside the IVF lists, searched exactly beside them'),
    ivf: z
      .looseObject({ nlist: int, rows: int, nprobe: int, expectedRecall: z.number(), hotBytes: int })
      .optional()
      .describe('The IVF index: lists, rows, calibrated default nprobe and its recall, hot-tier bytes'),
  })
  .describe('The HVS index: flat (exact), training, or IVF');

export const collectionStatus = collectionInfo.extend({
  count: int,
  hvs: z.strictObject({
    count: int,
    bytes: int,
    device: z.string(),
    ready: z.boolean(),
    state: tierState,
    error: z.string().optional(),
    index: indexStats.optional(),
  }),
  nvm: z.strictObject({ count: int, vectors: int }),
  lsn: int.describe('The change-log position the HVS has applied for this collection'),
  walPending: int.describe('Writes held by the local write-ahead log only, waiting for a sync'),
  resultCache: z
    .strictObject({ hits: int, misses: int, hitRatio: z.number(), entries: int, bytes: int })
    .describe(
      'The result cache of the process that answered: repeated identical queries it answered (hits) or not (misses) since it took the collection up, and the answers it holds',
    ),
});

export const storeResult = z.strictObject({
  ids: z.array(z.string()),
  lsn: int.describe('The change-log position of the write: pass it as minLsn to read it back'),
  persisted: z.boolean().describe('False when only the local write-ahead log holds the write so far'),
});

export const item = z.strictObject({
  id: z.string(),
  vector: z.array(z.number()).describe("Chunk 0's vector (normalised for cosine collections)"),
  content: z.string().nullable(),
  metadata,
  version: int,
  source,
});

export const deleteResult = z.strictObject({ deleted: int, lsn: int });

export const hit = z.strictObject({
  id: z.string(),
  score: z.number().describe('Cosine similarity, inner product, or L2 distance'),
  version: int,
  source,
  content: z.string().nullable().optional(),
  metadata: metadata.optional(),
  vector: z.array(z.number()).optional(),
});

export const queryResult = z.strictObject({ results: z.array(z.array(hit)).describe('One list per query, best first') });

/** An item as scroll and get-many answer it: the parts asked for by `include`. */
export const listedItem = z.strictObject({
  id: z.string(),
  version: int,
  source,
  content: z.string().nullable().optional(),
  metadata: metadata.optional(),
  vector: z.array(z.number()).optional().describe("Chunk 0's vector (normalised for cosine collections)"),
});

export const scrollResult = z.strictObject({
  items: z.array(listedItem).describe('In stable id order'),
  nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null after the last'),
});

export const getItemsResult = z.strictObject({ items: z.array(listedItem).describe('The ids found, in the order asked') });

export const countResult = z.strictObject({ count: int });

export const patchResult = z.strictObject({ id: z.string(), version: int, lsn: int });

export const queryPlan = z.strictObject({
  collection: z.string(),
  path: z.enum(['hvs', 'nvm']).describe('Which tier searches'),
  steps: z
    .array(z.looseObject({ step: z.string() }))
    .describe('What runs, in order: each step names itself (`step`) and carries its own parameters'),
  reason: z.string(),
});

export const consistencyReport = z.strictObject({
  collection: z.string(),
  consistent: z.boolean(),
  hvs: z.strictObject({ count: int, digest: z.string() }),
  nvm: z.strictObject({ count: int, digest: z.string() }),
  inconsistencies: z
    .array(
      z.strictObject({
        id: z.string(),
        kind: z.enum(['missing_in_hvs', 'missing_in_nvm', 'version_mismatch', 'vector_mismatch']),
        hvsVersion: int.optional(),
        nvmVersion: int.optional(),
      }),
    )
    .describe('Differences found (at most `limit` listed)'),
  total: int.describe('Every difference, listed or not'),
});

export const jobAccepted = z.strictObject({
  jobId: z.string(),
  created: z.boolean().describe('False when `key` named a known job (its id is answered)'),
});

export const job = z.strictObject({
  id: z.string(),
  type: z.enum(JOB_TYPES),
  state: z.enum(JOB_STATES),
  progress: z.union([z.number(), z.looseObject({ percent: z.number().optional() })]),
  result: z.unknown().optional().describe('The processor’s answer, once completed'),
  error: z.string().optional().describe('Why it failed or was cancelled'),
  attempts: int,
  maxAttempts: int,
  createdAt: z.string().describe('ISO-8601'),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
});

const countedStates = z.strictObject({ waiting: int, active: int, delayed: int, completed: int, failed: int });
export const jobCounts = z.strictObject({
  kind: z.enum(['bullmq', 'inline']),
  counts: z.strictObject(
    Object.fromEntries(JOB_TYPES.map((t) => [t, countedStates])) as Record<(typeof JOB_TYPES)[number], typeof countedStates>,
  ),
});

export const encodeResult = z.strictObject({ dim: int, encoder: encoderRef, vectors: z.array(z.array(z.number())) });

export const liveness = z.strictObject({ status: z.literal('ok') });

export const healthReport = z.strictObject({
  ready: z.boolean(),
  nvm: z.strictObject({ reachable: z.boolean(), backend: z.string(), lsn: int.optional(), error: z.string().optional() }),
  hvs: z.strictObject({
    device: z.string(),
    reason: z.string(),
    runtime: z.string(),
    collections: z
      .record(z.string(), tierState)
      .optional()
      .describe('Each collection and its state (HYPERSYNC_PROBE_DETAIL=full)'),
    collectionStates: z
      .strictObject({ loading: int, ready: int, failed: int })
      .optional()
      .describe('How many collections are in each state, without their names (HYPERSYNC_PROBE_DETAIL=counts)'),
    hostBytes: int,
    deviceBytes: int,
  }),
});

export const openApiDocumentResponse = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) });

/** Every answer schema by the name it has in the OpenAPI document's `components.schemas`. */
export const RESPONSE_SCHEMAS = {
  Error: errorResponse,
  EncoderRef: encoderRef,
  Collection: collectionInfo,
  CollectionList: collectionList,
  CollectionStatus: collectionStatus,
  StoreResult: storeResult,
  Item: item,
  DeleteResult: deleteResult,
  Hit: hit,
  QueryResult: queryResult,
  ListedItem: listedItem,
  ScrollResult: scrollResult,
  GetItemsResult: getItemsResult,
  CountResult: countResult,
  PatchResult: patchResult,
  QueryPlan: queryPlan,
  ConsistencyReport: consistencyReport,
  JobAccepted: jobAccepted,
  Job: job,
  JobCounts: jobCounts,
  EncodeResult: encodeResult,
  Liveness: liveness,
  HealthReport: healthReport,
  OpenApiDocument: openApiDocumentResponse,
} as const;

export type ResponseSchemaName = keyof typeof RESPONSE_SCHEMAS;
