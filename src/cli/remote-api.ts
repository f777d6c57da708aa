import type { ErrorCode } from '../core/errors.js';
import { UnavailableError } from '../core/errors.js';
import { RemoteApiError } from './remote-error.js';

/** A running service and how the CLI found it. */
export interface ServerAddress {
  /** e.g. `http://127.0.0.1:8080` */
  url: string;
  /** Where the address came from, for messages: `HYPERSYNC_URL`, or the serve file's path and process. */
  from: string;
  /** Sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
}

/** How long the first call (`/healthz`) may take before the server counts as not answering. */
const PROBE_MS = 5000;

/** The base64 of a vector's little-endian float32 bytes, as the API takes large batches. */
export function base64Vector(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

/**
 * JSON calls to a hypersync service over plain `fetch` (the CLI is an entry point of the server's
 * package; the typed client is for other processes). An API error becomes a {@link RemoteApiError}
 * with the service's message; a server that does not answer, one {@link UnavailableError} line.
 */
export class RemoteApi {
  private constructor(private readonly address: ServerAddress) {}

  /** Connects: the service must answer `/healthz` within a few seconds. */
  static async connect(address: ServerAddress): Promise<RemoteApi> {
    const api = new RemoteApi({ ...address, url: address.url.replace(/\/+$/, '') });
    const res = await api.send('GET', '/healthz', undefined, AbortSignal.timeout(PROBE_MS));
    if (!res.ok) throw api.unexpected(res.status, 'GET /healthz');
    return api;
  }

  get url(): string {
    return this.address.url;
  }

  get from(): string {
    return this.address.from;
  }

  /** A JSON call; resolves to the parsed answer (undefined for 204). */
  async call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw this.unexpected(res.status, `${method} ${path}`);
    }
    if (res.ok) return json as T;
    const err = (json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
    if (typeof err?.message !== 'string') throw this.unexpected(res.status, `${method} ${path}`);
    const hint = res.status === 401 ? ' (set HYPERSYNC_API_KEY to a key of the server)' : '';
    throw new RemoteApiError(`${err.message}${hint}`, (err.code ?? 'internal') as ErrorCode, res.status, {
      ...(err.details ? { details: err.details } : {}),
    });
  }

  private async send(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.address.apiKey !== undefined) headers.authorization = `Bearer ${this.address.apiKey}`;
    try {
      return await fetch(`${this.address.url}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      const cause = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      throw new UnavailableError(
        `no answer from the hypersync server at ${this.address.url} (${this.address.from}): ${cause}; ` +
          'is `hypersync serve` running there?',
        { cause: err },
      );
    }
  }

  private unexpected(status: number, what: string): UnavailableError {
    return new UnavailableError(
      `${this.address.url} (${this.address.from}) answered ${what} with HTTP ${status}, not as a hypersync server does`,
    );
  }
}
