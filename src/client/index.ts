import createFetchClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './schema.js';

/**
 * The typed HTTP client of a hypersync service (`import { createClient } from 'hypersync/client'`):
 * openapi-fetch over the types openapi-typescript generates from the service's OpenAPI document,
 * so paths, bodies and answers are checked by the compiler. It imports nothing of the server.
 */

export type { components, operations, paths };

/** A schema of the API by its name in the OpenAPI document, e.g. `Schema<'Hit'>`, `Schema<'QueryRequest'>`. */
export type Schema<Name extends keyof components['schemas']> = components['schemas'][Name];

/** The client {@link createClient} returns: `GET`, `POST`, `PATCH`, `DELETE`, … by path. */
export type HyperSyncClient = Client<paths>;

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** Sent as `Authorization: Bearer <apiKey>` (a key of the service's `HYPERSYNC_API_KEYS`). */
  apiKey?: string;
  /** The fetch to use (default: the global `fetch`). */
  fetch?: (input: Request) => Promise<Response>;
}

/**
 * A client of the service at `baseUrl` (e.g. `http://localhost:8080`). Each call resolves to
 * `{ data }` on a 2xx or `{ error }` (the API's `{ error: { code, message, details? } }`) otherwise,
 * with the `response` either way; network failures reject.
 *
 * @example
 * const hs = createClient('http://localhost:8080', { apiKey: process.env.HYPERSYNC_KEY });
 * const { data, error } = await hs.POST('/v1/collections/{c}/query', {
 *   params: { path: { c: 'docs' } },
 *   body: { queries: [{ text: 'hello' }], k: 5, include: ['content'] },
 * });
 */
export function createClient(baseUrl: string, opts: ClientOptions = {}): HyperSyncClient {
  return createFetchClient<paths>({
    baseUrl,
    ...(opts.apiKey !== undefined ? { headers: { authorization: `Bearer ${opts.apiKey}` } } : {}),
    ...(opts.fetch !== undefined ? { fetch: opts.fetch } : {}),
  });
}
