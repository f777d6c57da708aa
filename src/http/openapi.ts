import { z } from 'zod';
import { RESPONSE_SCHEMAS, type ResponseSchemaName } from './response-schemas.js';
import {
  allCollectionsJobBody,
  countBody,
  createCollectionBody,
  deleteItemsBody,
  encodeBody,
  explainBody,
  queryBody,
  filterValue,
  getItemsBody,
  jobBody,
  patchItemBody,
  scrollBody,
  storeBody,
} from './schemas.js';

/** The request bodies by the name they have in `components.schemas`. */
const REQUEST_SCHEMAS = {
  Filter: filterValue,
  CreateCollectionRequest: createCollectionBody,
  StoreRequest: storeBody,
  QueryRequest: queryBody,
  DeleteItemsRequest: deleteItemsBody,
  ScrollRequest: scrollBody,
  GetItemsRequest: getItemsBody,
  CountRequest: countBody,
  PatchItemRequest: patchItemBody,
  ExplainRequest: explainBody,
  CollectionJobRequest: jobBody,
  JobRequest: allCollectionsJobBody,
  EncodeRequest: encodeBody,
} as const;
type SchemaName = ResponseSchemaName | keyof typeof REQUEST_SCHEMAS;

/** Where a component schema lives in the document. */
const ref = (name: SchemaName): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });

/**
 * JSON Schemas of zod schemas, each under its name, sharing the named ones by `$ref`; `io` says
 * whether they describe what a request may send (defaults optional) or what an answer holds.
 */
function componentSchemas(named: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { io, unrepresentable: 'any', uri: (id) => ref(id as SchemaName).$ref });
  // Standalone-schema keys the document's components do not carry.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _s, $id: _i, ...rest }]) => [id, rest]));
}

/** A JSON request body with a component schema; `required: false` where an absent body means `{}`. */
const body = (schema: keyof typeof REQUEST_SCHEMAS, required = true): Record<string, unknown> => ({
  required,
  content: { 'application/json': { schema: ref(schema) } },
});

/** A JSON answer with a component schema. */
const ok = (description: string, schema: ResponseSchemaName): Record<string, unknown> => ({
  description,
  content: { 'application/json': { schema: ref(schema) } },
});

/** The error answers every `/v1` route may give, each `{ error: { code, message, details? } }`. */
const errorResponses = {
  BadRequest: 'invalid argument: a bad body, parameter, vector or filter (`details.issues` lists each problem)',
  Unauthorized: 'missing or unknown bearer key',
  NotFound: 'no such collection, item or job',
  Conflict: 'the collection exists already, its encoder differs, or the store is locked',
  PayloadTooLarge: 'the body or batch is larger than the service takes',
  InternalError: 'an internal error (no details are leaked)',
  Unavailable: 'a tier or the job queue cannot be reached, or the store is closing; retry later',
} as const;
const errorStatus: Record<string, keyof typeof errorResponses> = {
  '400': 'BadRequest',
  '401': 'Unauthorized',
  '404': 'NotFound',
  '409': 'Conflict',
  '413': 'PayloadTooLarge',
  '500': 'InternalError',
  '503': 'Unavailable',
};
const errors = Object.fromEntries(
  Object.entries(errorStatus).map(([status, name]) => [status, { $ref: `#/components/responses/${name}` }]),
);

/** A queued job's answer. */
const jobAccepted = {
  ...ok('the job: `created` is false when `key` named a known job', 'JobAccepted'),
  headers: { Location: { description: '/v1/jobs/{id}', schema: { type: 'string' } } },
};
const c = { name: 'c', in: 'path', required: true, description: 'the collection', schema: { type: 'string' } };
const id = { name: 'id', in: 'path', required: true, description: 'the item', schema: { type: 'string' } };
const jobId = { name: 'id', in: 'path', required: true, description: 'the job', schema: { type: 'string' } };

/** The routes of `/v1/collections/{c}/...` that read or write items. */
function itemPaths(): Record<string, unknown> {
  return {
    '/v1/collections/{c}/items': {
      post: {
        operationId: 'storeItems',
        summary: 'Store items (upsert)',
        parameters: [c],
        requestBody: body('StoreRequest'),
        responses: { '200': ok('the ids, the write’s lsn, and whether PostgreSQL holds it', 'StoreResult'), ...errors },
      },
    },
    '/v1/collections/{c}/items/{id}': {
      get: {
        operationId: 'getItem',
        summary: 'One item',
        parameters: [c, id],
        responses: { '200': ok('the item', 'Item'), ...errors },
      },
      delete: {
        operationId: 'deleteItem',
        summary: 'Delete an item (404 when it does not exist)',
        parameters: [c, id],
        responses: { '200': ok('how many were deleted (1) and the lsn', 'DeleteResult'), ...errors },
      },
      patch: {
        operationId: 'patchItem',
        summary: 'Replace the metadata and/or content of an item; the vector stays',
        parameters: [c, id],
        requestBody: body('PatchItemRequest'),
        responses: { '200': ok('the new version and its lsn', 'PatchResult'), ...errors },
      },
    },
    '/v1/collections/{c}/items/delete': {
      post: {
        operationId: 'deleteItems',
        summary: 'Delete items by ids or by filter',
        parameters: [c],
        requestBody: body('DeleteItemsRequest'),
        responses: { '200': ok('how many were deleted and the lsn', 'DeleteResult'), ...errors },
      },
    },
    '/v1/collections/{c}/items/scroll': {
      post: {
        operationId: 'scrollItems',
        summary: 'A page of items (optionally filtered) in stable id order, with a cursor for the next',
        parameters: [c],
        requestBody: body('ScrollRequest'),
        responses: { '200': ok('the page and the next cursor', 'ScrollResult'), ...errors },
      },
    },
    '/v1/collections/{c}/items/get': {
      post: {
        operationId: 'getItems',
        summary: 'Many items by id',
        parameters: [c],
        requestBody: body('GetItemsRequest'),
        responses: { '200': ok('the items found, in the order asked', 'GetItemsResult'), ...errors },
      },
    },
    '/v1/collections/{c}/count': {
      post: {
        operationId: 'countItems',
        summary: 'Count the items (matching a filter)',
        parameters: [c],
        requestBody: body('CountRequest', false),
        responses: { '200': ok('the count', 'CountResult'), ...errors },
      },
    },
    '/v1/collections/{c}/query': {
      post: {
        operationId: 'queryItems',
        summary: 'k nearest items per query (vector or text), optionally filtered; by the IVF index where trained, or exact',
        parameters: [c],
        requestBody: body('QueryRequest'),
        responses: { '200': ok('one list of hits per query, best first', 'QueryResult'), ...errors },
      },
    },
    '/v1/collections/{c}/explain': {
      post: {
        operationId: 'explainQuery',
        summary: 'The plan a query with these options would run now, and why',
        parameters: [c],
        requestBody: body('ExplainRequest', false),
        responses: { '200': ok('the plan', 'QueryPlan'), ...errors },
      },
    },
  };
}

/** Background jobs. */
function jobPaths(): Record<string, unknown> {
  return {
    '/v1/collections/{c}/jobs': {
      post: {
        operationId: 'queueCollectionJob',
        summary: "Queue a background job on the collection: `type` and the type's parameters",
        parameters: [c],
        requestBody: body('CollectionJobRequest'),
        responses: { '202': jobAccepted, ...errors },
      },
    },
    '/v1/jobs': {
      get: {
        operationId: 'countJobs',
        summary: 'Jobs per type and state',
        responses: { '200': ok('the counts', 'JobCounts'), ...errors },
      },
      post: {
        operationId: 'queueJob',
        summary:
          'Queue a job over every collection: sync, verify, compact (which prunes the change log), backup (by name, into ' +
          'the backup directory), or restore (a backup by name, into collections that do not exist yet)',
        requestBody: body('JobRequest'),
        responses: { '202': jobAccepted, ...errors },
      },
    },
    '/v1/jobs/{id}': {
      get: {
        operationId: 'getJob',
        summary: 'A job: state, progress, result or error',
        parameters: [jobId],
        responses: { '200': ok('the job', 'Job'), ...errors },
      },
      delete: {
        operationId: 'cancelJob',
        summary: 'Cancel a job (a finished one is left as it is)',
        parameters: [jobId],
        responses: { '200': ok('the job as it stands', 'Job'), ...errors },
      },
    },
  };
}

/** The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`), schemas from the zod schemas the routes use. */
export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'hypersync',
      version,
      description: 'Vector store: a hot tier in device memory kept in step with PostgreSQL + pgvector.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [
      {
        url: 'http://{host}:{port}',
        description: 'a `hypersync serve` process (self-hosted: no public server)',
        variables: {
          host: { default: 'localhost', description: 'HYPERSYNC_HOST' },
          port: { default: '8080', description: 'HYPERSYNC_PORT' },
        },
      },
    ],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'one of HYPERSYNC_API_KEYS, when set' } },
      schemas: { ...componentSchemas(RESPONSE_SCHEMAS, 'output'), ...componentSchemas(REQUEST_SCHEMAS, 'input') },
      responses: Object.fromEntries(
        Object.entries(errorResponses).map(([name, description]) => [
          name,
          { description, content: { 'application/json': { schema: ref('Error') } } },
        ]),
      ),
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/collections': {
        post: {
          operationId: 'createCollection',
          summary: 'Create a collection',
          requestBody: body('CreateCollectionRequest'),
          responses: { '201': ok('the collection', 'Collection'), ...errors },
        },
        get: {
          operationId: 'listCollections',
          summary: 'List collections',
          responses: { '200': ok('the collections', 'CollectionList'), ...errors },
        },
      },
      '/v1/collections/{c}': {
        get: {
          operationId: 'getCollection',
          summary: 'A collection and its counts across both tiers',
          parameters: [c],
          responses: { '200': ok('the collection and its counts', 'CollectionStatus'), ...errors },
        },
        delete: {
          operationId: 'dropCollection',
          summary: 'Drop a collection',
          parameters: [c],
          responses: { '204': { description: 'dropped' }, ...errors },
        },
      },
      ...itemPaths(),
      '/v1/collections/{c}/consistency': {
        get: {
          operationId: 'verifyConsistency',
          summary: 'Compare both tiers',
          parameters: [c],
          responses: { '200': ok('what differs', 'ConsistencyReport'), ...errors },
        },
      },
      ...jobPaths(),
      '/v1/encode': {
        post: {
          operationId: 'encodeTexts',
          summary: 'Encode texts',
          requestBody: body('EncodeRequest'),
          responses: { '200': ok('one vector per text', 'EncodeResult'), ...errors },
        },
      },
      '/healthz': {
        get: {
          operationId: 'getLiveness',
          summary: 'Liveness',
          security: [],
          responses: { '200': ok('the process answers', 'Liveness'), '500': errors['500'] },
        },
      },
      '/readyz': {
        get: {
          operationId: 'getReadiness',
          summary: 'Readiness: NVM reachable, HVS loaded',
          security: [],
          responses: { '200': ok('ready', 'HealthReport'), '503': ok('not ready (the same report)', 'HealthReport') },
        },
      },
      '/metrics': {
        get: {
          operationId: 'getMetrics',
          summary: 'Prometheus metrics',
          security: [],
          responses: {
            '200': { description: 'text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } },
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'getOpenApiDocument',
          summary: 'This document',
          security: [],
          responses: { '200': ok('the OpenAPI 3.1 document', 'OpenApiDocument') },
        },
      },
    },
  };
}
