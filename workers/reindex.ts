import { parseJobData } from '../src/jobs/job-data.js';
import type { JobContext, JobRun } from '../src/jobs/processor.js';
import { definedOnly } from '../src/core/options.js';

/**
 * `reindex`: (re)builds the collection's pgvector HNSW index with the given parameters,
 * concurrently on PostgreSQL (writes go on; queries keep the old index until the new one is
 * in place), reporting PostgreSQL's own build progress.
 */
export async function reindexJob(run: JobRun, ctx: JobContext): Promise<unknown> {
  const data = parseJobData('reindex', run.data);
  await ctx.nvm.getCollection(data.collection);
  await run.progress({ phase: 'start', percent: 0 });
  const params = definedOnly({ m: data.m, efConstruction: data.efConstruction });
  const r = await ctx.nvm.createHnswIndex(data.collection, params, {
    signal: run.signal,
    onProgress: (p) => {
      run.progress({ ...p }).catch(() => undefined);
    },
  });
  await run.progress({ phase: 'done', percent: 100 });
  return { collection: data.collection, ...r };
}
