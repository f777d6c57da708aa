import { Worker } from 'node:worker_threads';
import { UnavailableError } from '../core/errors.js';
import type { EncoderWorkerData, EncoderWorkerReply, EncoderWorkerRequest } from './encoder-worker.js';

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (r: { data: Float32Array; dims: number[] }) => void; reject: (e: Error) => void }>;
}

/**
 * Worker threads that each hold a session of the encoder's model; a bucket goes to the thread
 * with the fewest in flight. A thread that dies fails what it had in flight (503) and is replaced
 * at the next run.
 */
export class EncoderWorkerPool {
  private readonly slots: (Slot | undefined)[];
  private nextId = 1;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(
    readonly size: number,
    private readonly data: EncoderWorkerData,
  ) {
    this.slots = Array.from({ length: size }, () => undefined);
  }

  run(req: Omit<EncoderWorkerRequest, 'id'>): Promise<{ data: Float32Array; dims: number[] }> {
    if (this.closed) return Promise.reject(new UnavailableError('encoder workers are closed'));
    let best = 0;
    for (let i = 0; i < this.slots.length; i++) {
      if ((this.slots[i]?.pending.size ?? 0) < (this.slots[best]?.pending.size ?? 0)) best = i;
    }
    const slot = (this.slots[best] ??= this.spawn(best));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref();
      const transfer = [req.ids, req.mask, ...(req.types ? [req.types] : [])];
      slot.worker.postMessage({ ...req, id } satisfies EncoderWorkerRequest, transfer);
    });
  }

  private spawn(index: number): Slot {
    const ts = import.meta.url.endsWith('.ts');
    const entry = new URL(ts ? './encoder-worker.ts' : './encoder-worker.js', import.meta.url);
    // Run from sources (tests, benchmarks), the worker first registers the TypeScript loader.
    const worker = ts
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`, {
          eval: true,
          workerData: this.data,
        })
      : new Worker(entry, { workerData: this.data });
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    const fail = (err: Error): void => {
      if (this.slots[index] === slot) this.slots[index] = undefined;
      for (const p of slot.pending.values())
        p.reject(new UnavailableError(`encoder worker failed: ${err.message}`, { cause: err }));
      slot.pending.clear();
    };
    worker.on('message', (reply: EncoderWorkerReply) => {
      const p = slot.pending.get(reply.id);
      if (!p) return;
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) worker.unref();
      if (reply.ok) p.resolve({ data: reply.data, dims: reply.dims });
      else p.reject(new Error(reply.message));
    });
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`exited with code ${code}`));
    });
    return slot;
  }

  /** Terminates every thread (callers wait for their calls first); safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await Promise.all(this.slots.flatMap((s) => (s ? [s.worker.terminate()] : [])));
      this.slots.fill(undefined);
    })();
    return this.closing;
  }
}
