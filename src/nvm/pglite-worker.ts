/**
 * The embedded database's thread: PGlite (PostgreSQL compiled to WASM) runs each statement
 * synchronously, so on the service's thread a 5,000-row write held every request for a third
 * of a second. Here it runs beside the service; {@link PgliteDriver} talks to it by messages.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import type { PgliteReply, PgliteRequest, SerializedDbError } from './pglite-protocol.js';

const port = parentPort;
if (!port) throw new Error('pglite-worker must run in a worker thread');
const { dataDir } = workerData as { dataDir: string | undefined };

/** Open transactions by id: each waits for its `end` message while its statements run. */
const transactions = new Map<number, { tx: Transaction; end: (commit: boolean) => void }>();
const unlisteners = new Map<number, () => Promise<void>>();
/** Each open transaction's settlement: resolves once it committed or rolled back. */
const pendingEnds = new Map<number, Promise<void>>();
let nextTx = 1;

function serialize(err: unknown): SerializedDbError {
  const e = (err ?? {}) as Record<string, unknown>;
  const out: SerializedDbError = {
    message: typeof e.message === 'string' ? e.message : String(err),
    name: typeof e.name === 'string' ? e.name : 'Error',
  };
  for (const k of ['code', 'detail', 'hint', 'constraint', 'table', 'column', 'schema', 'severity'] as const) {
    if (typeof e[k] === 'string') out[k] = e[k];
  }
  return out;
}

const reply = (r: PgliteReply): void => port.postMessage(r);

let db: PGlite;
try {
  db = await PGlite.create({ ...(dataDir ? { dataDir } : {}), extensions: { vector } });
  reply({ id: 0, ok: true, value: undefined });
} catch (err) {
  reply({ id: 0, ok: false, error: serialize(err) });
  process.exit(0);
}

function executor(txId: number | undefined): Pick<Transaction, 'query' | 'exec'> {
  if (txId === undefined) return db;
  const open = transactions.get(txId);
  if (!open) throw new Error(`transaction ${txId} is not open`);
  return open.tx;
}

async function handle(req: PgliteRequest): Promise<unknown> {
  switch (req.op) {
    case 'query':
      return (await executor(req.tx).query(req.text, req.params as unknown[])).rows;
    case 'exec':
      await executor(req.tx).exec(req.script);
      return undefined;
    case 'copy':
      // COPY reads its input from the virtual file /dev/blob.
      await executor(req.tx).query(`COPY ${req.target} FROM '/dev/blob' (FORMAT binary)`, [], { blob: new Blob([req.payload]) });
      return undefined;
    case 'begin': {
      const id = nextTx++;
      let opened!: () => void;
      const ready = new Promise<void>((resolve) => (opened = resolve));
      const done = db.transaction(async (tx) => {
        const commit = await new Promise<boolean>((end) => {
          transactions.set(id, { tx, end });
          opened();
        });
        if (!commit) await tx.rollback();
      });
      // A BEGIN that fails never opens: its error answers this request.
      await Promise.race([ready, done]);
      if (req.begin) {
        try {
          await transactions.get(id)!.tx.exec(req.begin);
        } catch (err) {
          transactions.get(id)!.end(false);
          transactions.delete(id);
          await done.catch(() => undefined);
          throw err;
        }
      }
      pendingEnds.set(id, done);
      return id;
    }
    case 'end': {
      const open = transactions.get(req.tx);
      const done = pendingEnds.get(req.tx);
      if (!open || !done) throw new Error(`transaction ${req.tx} is not open`);
      if (req.commit && req.notify) await open.tx.exec(req.notify);
      transactions.delete(req.tx);
      pendingEnds.delete(req.tx);
      open.end(req.commit);
      await done;
      return undefined;
    }
    case 'listen': {
      const unlisten = await db.listen(req.channel, (payload) => reply({ id: -1, notify: { listenId: req.listenId, payload } }));
      unlisteners.set(req.listenId, unlisten);
      return undefined;
    }
    case 'unlisten': {
      const unlisten = unlisteners.get(req.listenId);
      unlisteners.delete(req.listenId);
      await unlisten?.();
      return undefined;
    }
    case 'close':
      await db.close();
      return undefined;
  }
}

port.on('message', (req: PgliteRequest) => {
  handle(req).then(
    (value) => reply({ id: req.id, ok: true, value }),
    (err: unknown) => reply({ id: req.id, ok: false, error: serialize(err) }),
  );
});
