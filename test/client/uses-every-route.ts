/**
 * Every route of the HTTP API through the typed client, with typed bodies and typed reads of each
 * answer. Never run: `tsc --noEmit -p .` type-checks it, so a route, body or answer that the
 * OpenAPI document (and so src/client/schema.ts) gets wrong, or a client that cannot express a
 * route, fails CI. Keep one call per operation when routes are added.
 */
import { createClient, type Schema } from '../../src/client/index.js';

/** Fails the program on an error answer (typed `{ error: { code, message } }`); returns the data. */
function ok<T>(r: { data?: T; error?: Schema<'Error'> }): T {
  if (r.error !== undefined) throw new Error(`${r.error.error.code}: ${r.error.error.message}`);
  if (r.data === undefined) throw new Error('no body');
  return r.data;
}

export async function usesEveryRoute(baseUrl: string, apiKey: string): Promise<string[]> {
  const hs = createClient(baseUrl, { apiKey });
  const seen: string[] = [];
  const c = { path: { c: 'docs' } };
  const item = { path: { c: 'docs', id: 'a' } };
  const filter: Schema<'Filter'> = { tenant: 'acme', year: { $gte: 2020 }, $or: [{ lang: 'de' }, { lang: 'en' }] };

  const created = ok(await hs.POST('/v1/collections', { body: { name: 'docs', dim: 3, metric: 'cosine' } }));
  const dim: number = created.dim;
  const encoderName: string | undefined = created.encoder?.name;
  const list = ok(await hs.GET('/v1/collections'));
  seen.push(`${dim} ${encoderName} ${list.collections.map((x) => x.metric).join()}`);
  const status = ok(await hs.GET('/v1/collections/{c}', { params: c }));
  const state: 'loading' | 'ready' | 'failed' = status.hvs.state;
  seen.push(`${status.count} ${status.nvm.vectors} ${state} ${status.walPending}`);

  const stored = ok(
    await hs.POST('/v1/collections/{c}/items', {
      params: c,
      body: {
        items: [{ id: 'a', vector: [1, 0, 0], content: 'alpha', metadata: { tenant: 'acme' } }, { text: 'beta' }],
        persist: true,
      },
    }),
  );
  const lsn: number = stored.lsn;
  seen.push(`${stored.ids.join()} ${String(stored.persisted)}`);

  const got = ok(await hs.GET('/v1/collections/{c}/items/{id}', { params: item }));
  const vector: number[] = got.vector;
  const content: string | null = got.content;
  seen.push(`${got.id} ${got.version} ${got.source} ${vector.length} ${content} ${JSON.stringify(got.metadata)}`);

  const patched = ok(
    await hs.PATCH('/v1/collections/{c}/items/{id}', { params: item, body: { metadata: { tenant: 'beta' }, content: null } }),
  );
  seen.push(`${patched.id} ${patched.version} ${patched.lsn}`);

  const q = ok(
    await hs.POST('/v1/collections/{c}/query', {
      params: c,
      body: {
        queries: [{ vector: [1, 0, 0] }, { text: 'alpha', filter: { lang: { $in: ['de', 'en'] } } }],
        k: 5,
        include: ['content', 'metadata', 'vector'],
        minLsn: lsn,
        filter,
        minScore: 0.5,
      },
    }),
  );
  for (const hits of q.results) {
    for (const h of hits) {
      const source: 'hvs' | 'nvm' | 'hvs+nvm' = h.source;
      seen.push(`${h.id} ${h.score} ${h.version} ${source} ${h.content} ${h.vector?.length} ${JSON.stringify(h.metadata)}`);
    }
  }

  const plan = ok(
    await hs.POST('/v1/collections/{c}/explain', {
      params: c,
      body: { k: 5, filter, include: ['content'], minLsn: lsn, minScore: 0.1 },
    }),
  );
  const path: 'hvs' | 'nvm' = plan.path;
  seen.push(`${plan.collection} ${path} ${plan.steps.map((s) => s.step).join()} ${plan.reason}`);

  const counted = ok(await hs.POST('/v1/collections/{c}/count', { params: c, body: { filter } }));
  const all = ok(await hs.POST('/v1/collections/{c}/count', { params: c, body: {} }));
  seen.push(`${counted.count} of ${all.count}`);

  let cursor: string | null = null;
  do {
    const page: Schema<'ScrollResult'> = ok(
      await hs.POST('/v1/collections/{c}/items/scroll', {
        params: c,
        body: { filter, limit: 100, include: ['metadata'], ...(cursor !== null ? { cursor } : {}) },
      }),
    );
    for (const it of page.items) seen.push(`${it.id} ${it.version} ${JSON.stringify(it.metadata)} ${it.content}`);
    cursor = page.nextCursor;
  } while (cursor !== null);

  const many = ok(await hs.POST('/v1/collections/{c}/items/get', { params: c, body: { ids: ['a', 'b'], include: ['vector'] } }));
  for (const it of many.items) seen.push(`${it.id} ${it.version} ${it.source} ${it.vector?.length}`);

  const byIds = ok(await hs.POST('/v1/collections/{c}/items/delete', { params: c, body: { ids: ['b'] } }));
  const byFilter = ok(await hs.POST('/v1/collections/{c}/items/delete', { params: c, body: { filter: { tenant: 'gone' } } }));
  seen.push(`${byIds.deleted + byFilter.deleted} ${byFilter.lsn}`);
  const deleted = ok(await hs.DELETE('/v1/collections/{c}/items/{id}', { params: item }));
  seen.push(`${deleted.deleted} ${deleted.lsn}`);

  const report = ok(await hs.GET('/v1/collections/{c}/consistency', { params: c }));
  seen.push(`${String(report.consistent)} ${report.hvs.digest} ${report.nvm.count} ${report.total}`);
  for (const d of report.inconsistencies) seen.push(`${d.id} ${d.kind} ${d.hvsVersion} ${d.nvmVersion}`);

  const queued = ok(await hs.POST('/v1/collections/{c}/jobs', { params: c, body: { type: 'reindex', m: 16, key: 'nightly' } }));
  const embedded = ok(
    await hs.POST('/v1/collections/{c}/jobs', { params: c, body: { type: 'embed', items: [{ text: 'gamma' }], attempts: 2 } }),
  );
  const everywhere = ok(await hs.POST('/v1/jobs', { body: { type: 'verify', repair: true } }));
  seen.push(`${String(queued.created)} ${embedded.jobId} ${everywhere.jobId}`);
  const job = ok(await hs.GET('/v1/jobs/{id}', { params: { path: { id: queued.jobId } } }));
  const percent = typeof job.progress === 'number' ? job.progress : job.progress.percent;
  seen.push(`${job.type} ${job.state} ${percent} ${job.attempts}/${job.maxAttempts} ${job.createdAt} ${job.error}`);
  const cancelled = ok(await hs.DELETE('/v1/jobs/{id}', { params: { path: { id: embedded.jobId } } }));
  seen.push(`${cancelled.state} ${cancelled.finishedAt}`);
  const counts = ok(await hs.GET('/v1/jobs'));
  seen.push(`${counts.kind} ${counts.counts.rebuild.failed} ${counts.counts.embed.waiting}`);

  const encoded = ok(await hs.POST('/v1/encode', { body: { texts: ['hello'], encoder: 'default' } }));
  seen.push(`${encoded.dim} ${encoded.encoder.version} ${encoded.vectors[0].length}`);

  const dropped = await hs.DELETE('/v1/collections/{c}', { params: c });
  seen.push(`${dropped.response.status}`);

  const live = ok(await hs.GET('/healthz'));
  const ready = await hs.GET('/readyz');
  // 503 (not ready) answers the same report, as an error answer.
  const health: Schema<'HealthReport'> | undefined = ready.data ?? ready.error;
  seen.push(`${live.status} ${String(health?.ready)} ${health?.nvm.backend} ${JSON.stringify(health?.hvs.collections)}`);
  const metrics = ok(await hs.GET('/metrics', { parseAs: 'text' }));
  const openapi = ok(await hs.GET('/openapi.json'));
  seen.push(`${metrics.length} ${openapi.openapi}`);
  return seen;
}
