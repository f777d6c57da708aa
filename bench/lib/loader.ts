/**
 * A small HTTP load generator: `clients` concurrent loops, each sending one request at a time
 * over a kept-alive connection for a fixed time, with latencies per kind of request and figures
 * per time window (for the load test's memory check). Plain `node:http`: the loader must cost
 * less than the service it loads on a 2-core machine.
 */
import { Agent, request } from 'node:http';

/** One request: method, path (with query), body (already serialised), and its kind for the tables. */
export interface LoadRequest {
  kind: string;
  method: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** Wait this long before sending it (not counted in its latency): a client's think time. */
  delayMs?: number;
}

export interface LoadOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  clients: number;
  durationMs: number;
  /** The next request of client `client` (its `seq`-th). */
  next: (client: number, seq: number) => LoadRequest;
  /** Called with every answer's status and body (to check it); throwing counts as an error. */
  check?: (req: LoadRequest, status: number, body: Buffer) => void;
  /** Window length for {@link LoadResult.windows} (default: the whole run). */
  windowMs?: number;
  /** Called at the end of each window (e.g. to sample the server's memory). */
  onWindow?: (index: number) => void | Promise<void>;
}

export interface KindFigures {
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LoadResult {
  seconds: number;
  requests: number;
  errors: number;
  /** The first few errors, as text. */
  errorSamples: string[];
  byKind: Record<string, KindFigures>;
  /** Requests completed per window. */
  windows: number[];
}

/** The q-quantile (0..1) of sorted `xs`, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function send(agent: Agent, base: URL, req: LoadRequest): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...req.headers };
    if (req.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = Buffer.byteLength(req.body);
    }
    const r = request({ agent, host: base.hostname, port: base.port, method: req.method, path: req.path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(req.body);
  });
}

/** Runs the load; resolves when every client has finished its last request. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const base = new URL(opts.baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.clients });
  const latencies = new Map<string, number[]>();
  const errorsByKind = new Map<string, number>();
  const errorSamples: string[] = [];
  const windowMs = opts.windowMs ?? opts.durationMs;
  const windows: number[] = [];
  const start = performance.now();
  const end = start + opts.durationMs;
  let done = 0;
  let windowIndex = 0;
  let windowCount = 0;
  const ticker = setInterval(() => {
    windows.push(windowCount);
    windowCount = 0;
    void opts.onWindow?.(windowIndex++);
  }, windowMs);
  const client = async (c: number): Promise<void> => {
    for (let seq = 0; performance.now() < end; seq++) {
      const req = opts.next(c, seq);
      if (req.delayMs) await new Promise((r) => setTimeout(r, req.delayMs));
      if (performance.now() >= end) break;
      const t0 = performance.now();
      try {
        const { status, body } = await send(agent, base, req);
        if (opts.check) opts.check(req, status, body);
        else if (status >= 400) throw new Error(`${status} ${body.toString().slice(0, 200)}`);
      } catch (err) {
        errorsByKind.set(req.kind, (errorsByKind.get(req.kind) ?? 0) + 1);
        if (errorSamples.length < 5) errorSamples.push(`${req.kind} ${req.method} ${req.path}: ${(err as Error).message}`);
      }
      let list = latencies.get(req.kind);
      if (!list) latencies.set(req.kind, (list = []));
      list.push(performance.now() - t0);
      done++;
      windowCount++;
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c)));
  } finally {
    clearInterval(ticker);
    agent.destroy();
  }
  if (windowCount > 0 && windows.length * windowMs < opts.durationMs) windows.push(windowCount);
  const byKind: Record<string, KindFigures> = {};
  for (const [kind, list] of latencies) {
    list.sort((a, b) => a - b);
    byKind[kind] = {
      requests: list.length,
      errors: errorsByKind.get(kind) ?? 0,
      p50Ms: quantile(list, 0.5),
      p99Ms: quantile(list, 0.99),
      maxMs: list[list.length - 1],
    };
  }
  let errors = 0;
  for (const n of errorsByKind.values()) errors += n;
  return { seconds: (performance.now() - start) / 1000, requests: done, errors, errorSamples, byKind, windows };
}
