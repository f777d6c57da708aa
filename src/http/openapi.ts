import { z } from 'zod';
import { allCollectionsJobBody, createCollectionBody, encodeBody, jobBody, queryBody, storeBody } from './schemas.js';

/** JSON Schema of a request body, from the same zod schema that checks it. */
const body = (schema: z.ZodType): Record<string, unknown> => ({
  required: true,
  content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } },
});

const error = {
  description: 'error',
  content: {
    'application/json': {
      schema: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } },
          },
        },
      },
    },
  },
};

const ok = (description: string): Record<string, unknown> => ({
  description,
  content: { 'application/json': { schema: { type: 'object' } } },
});
const errors = { '400': error, '401': error, '404': error, '409': error, '413': error, '503': error };
/** A queued job's answer. */
const jobAccepted = {
  ...ok('{ jobId, created }; created is false when `key` named a known job'),
  headers: { Location: { description: '/v1/jobs/{id}', schema: { type: 'string' } } },
};
const c = { name: 'c', in: 'path', required: true, schema: { type: 'string' } };
const id = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

/** The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`), request schemas from the zod schemas the routes use. */
export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'hypersync',
      version,
      description: 'Vector store: a hot tier in device memory kept in step with PostgreSQL + pgvector.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths: {
      '/v1/collections': {
        post: {
          summary: 'Create a collection',
          requestBody: body(createCollectionBody),
          responses: { '201': ok('the collection'), ...errors },
        },
        get: { summary: 'List collections', responses: { '200': ok('{ collections }'), ...errors } },
      },
      '/v1/collections/{c}': {
        get: { summary: 'Counts across both tiers', parameters: [c], responses: { '200': ok('stats'), ...errors } },
        delete: { summary: 'Drop a collection', parameters: [c], responses: { '204': { description: 'dropped' }, ...errors } },
      },
      '/v1/collections/{c}/items': {
        post: {
          summary: 'Store items (upsert)',
          parameters: [c],
          requestBody: body(storeBody),
          responses: { '200': ok('{ ids, lsn, persisted }'), ...errors },
        },
      },
      '/v1/collections/{c}/items/{id}': {
        get: {
          summary: 'One item',
          parameters: [c, id],
          responses: { '200': ok('{ id, vector, content, metadata, version, source }'), ...errors },
        },
        delete: { summary: 'Delete an item', parameters: [c, id], responses: { '200': ok('{ deleted, lsn }'), ...errors } },
      },
      '/v1/collections/{c}/query': {
        post: {
          summary: 'k nearest items per query',
          parameters: [c],
          requestBody: body(queryBody),
          responses: { '200': ok('{ results }'), ...errors },
        },
      },
      '/v1/collections/{c}/consistency': {
        get: { summary: 'Compare both tiers', parameters: [c], responses: { '200': ok('consistency report'), ...errors } },
      },
      '/v1/collections/{c}/jobs': {
        post: {
          summary: "Queue a background job on the collection: `type` and the type's parameters",
          parameters: [c],
          requestBody: body(jobBody),
          responses: { '202': jobAccepted, ...errors },
        },
      },
      '/v1/jobs': {
        get: { summary: 'Jobs per type and state', responses: { '200': ok('{ kind, counts }'), ...errors } },
        post: {
          summary: 'Queue a job over every collection: sync, verify, or compact (which prunes the change log)',
          requestBody: body(allCollectionsJobBody),
          responses: { '202': jobAccepted, ...errors },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          summary: 'A job: state, progress, result or error',
          parameters: [id],
          responses: { '200': ok('{ id, type, state, progress, result?, error?, attempts, maxAttempts, …At }'), ...errors },
        },
        delete: {
          summary: 'Cancel a job (a finished one is left as it is)',
          parameters: [id],
          responses: { '200': ok('the job as it stands'), ...errors },
        },
      },
      '/v1/encode': {
        post: {
          summary: 'Encode texts',
          requestBody: body(encodeBody),
          responses: { '200': ok('{ dim, encoder, vectors }'), ...errors },
        },
      },
      '/healthz': { get: { summary: 'Liveness', security: [], responses: { '200': ok('{ status }') } } },
      '/readyz': {
        get: {
          summary: 'Readiness: NVM reachable, HVS loaded',
          security: [],
          responses: { '200': ok('ready'), '503': ok('not ready') },
        },
      },
      '/metrics': {
        get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'text exposition format' } } },
      },
    },
  };
}
