import { UnavailableError } from '../core/errors.js';
import type { Filter } from '../core/filter.js';
import { definedOnly } from '../core/options.js';
import type { Metric } from '../core/metric.js';
import type {
  CollectionInfo,
  CollectionStatus,
  ConsistencyReport,
  Include,
  ItemPatch,
  QueryOptions,
  ScrollOptions,
  StoreItem,
  StoreResult,
} from '../integration/types.js';
import type { CliStore, HitJson, ItemJson, RepairReport } from './cli-store.js';
import { base64Vector, type RemoteApi } from './remote-api.js';
import { RemoteApiError } from './remote-error.js';

/** Most ids the service takes in one `items/get` (its page limit). */
const GET_IDS = 10_000;
/** How often readiness and jobs are polled. */
const POLL_MS = 200;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A job as `GET /v1/jobs/:id` answers it. */
interface JobAnswer {
  id: string;
  state: string;
  result?: unknown;
  error?: string;
}

/** One HVS process's answer inside a job's result. */
interface NodeAnswer {
  node: string;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/**
 * {@link CliStore} over the HTTP API of a running `hypersync serve`: the same calls, the same
 * JSON answers. Vectors travel as base64 float32.
 */
export class RemoteStore implements CliStore {
  readonly remote = true;

  constructor(private readonly api: RemoteApi) {}

  get where(): string {
    return `the server at ${this.api.url} (${this.api.from})`;
  }

  async listCollections(): Promise<CollectionInfo[]> {
    return (await this.api.call<{ collections: CollectionInfo[] }>('GET', '/v1/collections')).collections;
  }

  async findCollection(name: string): Promise<CollectionInfo> {
    const { name: n, dim, metric, encoder } = await this.stats(name);
    return { name: n, dim, metric, ...(encoder !== undefined ? { encoder } : {}) };
  }

  createCollection(name: string, spec: { dim?: number; metric?: Metric; encoder?: string }): Promise<CollectionInfo> {
    return this.api.call('POST', '/v1/collections', { name, ...spec });
  }

  async dropCollection(name: string): Promise<void> {
    await this.api.call('DELETE', path(name));
  }

  stats(name: string): Promise<CollectionStatus> {
    return this.api.call('GET', path(name));
  }

  /** Polls the collection's stats until its HVS is no longer loading (as `hs.ready` waits in process). */
  async ready(collection?: string): Promise<void> {
    const names = collection !== undefined ? [collection] : (await this.listCollections()).map((c) => c.name);
    for (const name of names) {
      while ((await this.stats(name)).hvs.state === 'loading') await sleep(POLL_MS);
    }
  }

  async storedIds(collection: string, ids: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += GET_IDS) {
      const { items } = await this.api.call<{ items: { id: string }[] }>('POST', `${path(collection)}/items/get`, {
        ids: ids.slice(i, i + GET_IDS),
        include: [],
      });
      for (const it of items) found.add(it.id);
    }
    return found;
  }

  store(collection: string, items: readonly StoreItem[]): Promise<StoreResult> {
    const body = items.map((it) => ({ ...it, ...(it.vector !== undefined ? { vector: base64Vector(it.vector) } : {}) }));
    return this.api.call('POST', `${path(collection)}/items`, { items: body });
  }

  async query(collection: string, query: Float32Array | string, k: number, opts: QueryOptions): Promise<HitJson[]> {
    const { results } = await this.api.call<{ results: HitJson[][] }>('POST', `${path(collection)}/query`, {
      queries: [typeof query === 'string' ? { text: query } : { vector: base64Vector(query) }],
      k,
      ...definedOnly({
        include: opts.include,
        minLsn: opts.minLsn,
        filter: opts.filter,
        minScore: opts.minScore,
        exact: opts.exact,
        nprobe: opts.nprobe,
        targetRecall: opts.targetRecall,
      }),
    });
    return results[0];
  }

  verify(collection: string): Promise<ConsistencyReport> {
    return this.api.call('GET', `${path(collection)}/consistency`);
  }

  /**
   * The service repairs in its `verify` job; its one HVS process's reply is the report `repair`
   * gives in process. A service with several HVS processes (BullMQ workers) has one report each:
   * that is the job's to show, not this command's.
   */
  async repair(collection: string): Promise<RepairReport> {
    const job = await this.runJob(collection, { type: 'verify', repair: true });
    const nodes = (job.result as { collections?: Record<string, NodeAnswer[]> } | undefined)?.collections?.[collection];
    if (nodes?.length !== 1) {
      throw new UnavailableError(
        `the server's verify job ${job.id} repaired ${nodes?.length ?? 0} HVS processes; see GET /v1/jobs/${job.id} for each report`,
      );
    }
    const [node] = nodes;
    if (!node.ok) throw new UnavailableError(`repair failed on ${node.node}: ${node.error ?? 'no reason given'}`);
    const r = node.result as {
      repaired: { upserted: number; deleted: number };
      before: ConsistencyReport;
      after: ConsistencyReport;
    };
    return { before: r.before, upserted: r.repaired.upserted, deleted: r.repaired.deleted, after: r.after };
  }

  async getMany(collection: string, ids: readonly string[], include?: readonly Include[]): Promise<ItemJson[]> {
    const out: ItemJson[] = [];
    for (let i = 0; i < ids.length; i += GET_IDS) {
      const { items } = await this.api.call<{ items: ItemJson[] }>('POST', `${path(collection)}/items/get`, {
        ids: ids.slice(i, i + GET_IDS),
        ...(include ? { include } : {}),
      });
      out.push(...items);
    }
    return out;
  }

  delete(collection: string, ids: readonly string[]): Promise<{ deleted: number; lsn: number }> {
    return this.api.call('POST', `${path(collection)}/items/delete`, { ids });
  }

  deleteWhere(collection: string, filter: Filter): Promise<{ deleted: number; lsn: number }> {
    return this.api.call('POST', `${path(collection)}/items/delete`, { filter });
  }

  async count(collection: string, filter?: Filter): Promise<number> {
    return (await this.api.call<{ count: number }>('POST', `${path(collection)}/count`, filter ? { filter } : {})).count;
  }

  scroll(collection: string, opts: ScrollOptions): Promise<{ items: ItemJson[]; nextCursor: string | null }> {
    return this.api.call('POST', `${path(collection)}/items/scroll`, opts);
  }

  patch(collection: string, id: string, patch: ItemPatch): Promise<{ id: string; version: number; lsn: number }> {
    return this.api.call('PATCH', `${path(collection)}/items/${encodeURIComponent(id)}`, patch);
  }

  /** Queues a job of the collection on the service and polls it until it ends; a failed one throws. */
  private async runJob(collection: string, body: Record<string, unknown>): Promise<JobAnswer> {
    const { jobId } = await this.api.call<{ jobId: string }>('POST', `${path(collection)}/jobs`, body);
    for (;;) {
      const job = await this.api.call<JobAnswer>('GET', `/v1/jobs/${encodeURIComponent(jobId)}`);
      if (job.state === 'completed') return job;
      if (job.state === 'failed' || job.state === 'cancelled') {
        const why = `the server's ${String(body.type)} job ${jobId} ${job.state}: ${job.error ?? 'no reason given'}`;
        throw new RemoteApiError(why, 'internal', 500);
      }
      await sleep(POLL_MS);
    }
  }
}

const path = (collection: string): string => `/v1/collections/${encodeURIComponent(collection)}`;
