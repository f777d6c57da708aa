/**
 * The worker thread behind {@link WorkerSearchKernel}: it owns every sealed segment's onnxruntime
 * session, so that building a segment's index and searching sealed segments run beside the main
 * thread instead of blocking its event loop. Messages are handled one at a time, in order: a
 * search sent after a `create` waits for that index.
 */
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import type { DeviceInfo } from './device.js';
import { OnnxSearchKernel } from './onnx-kernel.js';
import type { ResidentIndex } from './search-kernel.js';
import { CHECKSUM_ERROR, type TopKResult } from './types.js';
import { type Metric } from '../src/core/metric.js';

/** A request from the main thread. */
export type KernelRequest =
  | {
      op: 'create';
      id: number;
      handle: number;
      vectors?: Float32Array;
      path?: string;
      /** CRC-32 the file's bytes must have (snapshots): checked here, beside the event loop. */
      crc32?: number;
      rows: number;
      dim: number;
      metric: Metric;
    }
  | {
      op: 'searchMany';
      id: number;
      queries: Float32Array;
      batch: number;
      k: number;
      items: { handle: number; masked: number; mask?: Float32Array }[];
    }
  | { op: 'release'; id: number; handle: number }
  | { op: 'close'; id: number };

/** The answer to one request. */
export type KernelReply =
  { id: number; ok: true; result?: TopKResult[] } | { id: number; ok: false; error: { name: string; message: string } };

/** What the worker is started with. */
export interface KernelWorkerData {
  deviceInfo: DeviceInfo;
  intraOpThreads?: number;
}

const port = parentPort;
if (!port) throw new Error('kernel-worker must run in a worker thread');
const { deviceInfo, intraOpThreads } = workerData as KernelWorkerData;
const kernel = new OnnxSearchKernel(deviceInfo, intraOpThreads === undefined ? {} : { intraOpThreads });
const indexes = new Map<number, Promise<ResidentIndex>>();
/** A zero mask per index with nothing masked, so such searches send none. */
const zeroMasks = new Map<number, Float32Array>();

/**
 * One reusable buffer for segments read from disk: onnxruntime copies the bytes while it builds
 * the session, so the next `create` may overwrite them, and no fresh memory is touched per seal.
 */
let scratch = new ArrayBuffer(0);

// The read buffer is one segment large; once it is dropped, collect it rather than wait for V8 to
// notice (a worker's heap sees little allocation pressure). `--expose-gc` is not accepted in a
// worker's execArgv, hence the flag set at run time.
v8.setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
let scratchTimer: NodeJS.Timeout | undefined;

/** Frees the scratch buffer once seals stop coming (a second without one). */
function releaseScratchLater(): void {
  clearTimeout(scratchTimer);
  scratchTimer = setTimeout(() => {
    scratch = new ArrayBuffer(0);
    collectGarbage();
  }, 1000);
  scratchTimer.unref();
}

/** The vectors of a `create`: sent along, or read from the segment's file (the page cache has it). */
async function vectorsOf(req: Extract<KernelRequest, { op: 'create' }>): Promise<Float32Array> {
  if (req.vectors) return req.vectors;
  if (!req.path) throw new Error('create needs vectors or a path');
  const bytes = req.rows * req.dim * 4;
  clearTimeout(scratchTimer);
  if (scratch.byteLength < bytes) scratch = new ArrayBuffer(bytes);
  // Held locally: the release timer may replace `scratch` while this read is in flight.
  const buffer = scratch;
  const view = new Uint8Array(buffer, 0, bytes);
  const fh = await open(req.path, 'r');
  try {
    let off = 0;
    while (off < bytes) {
      const { bytesRead } = await fh.read(view, off, bytes - off, off);
      if (bytesRead === 0) throw new Error(`${req.path} holds ${off} bytes, expected ${bytes}`);
      off += bytesRead;
    }
  } finally {
    await fh.close();
  }
  if (req.crc32 !== undefined && crc32(view) !== req.crc32) {
    const err = new Error(`${req.path} fails its CRC-32 check`);
    err.name = CHECKSUM_ERROR;
    throw err;
  }
  return new Float32Array(buffer, 0, bytes / 4);
}

async function searchOne(
  handle: number,
  queries: Float32Array,
  batch: number,
  k: number,
  item: { masked: number; mask?: Float32Array },
): Promise<TopKResult> {
  const index = await indexes.get(handle);
  if (!index) throw new Error(`unknown index handle ${handle}`);
  let mask = item.mask;
  if (!mask) {
    mask = zeroMasks.get(handle);
    if (!mask) zeroMasks.set(handle, (mask = new Float32Array(index.rows)));
  }
  return index.search(queries, batch, k, { mask, masked: item.masked });
}

async function handle(req: KernelRequest): Promise<TopKResult[] | undefined> {
  switch (req.op) {
    case 'create': {
      const building = (async () => kernel.createIndex(await vectorsOf(req), req.rows, req.dim, req.metric))();
      building.finally(releaseScratchLater).catch(() => undefined);
      indexes.set(req.handle, building);
      building.catch(() => undefined);
      await building;
      return undefined;
    }
    case 'searchMany': {
      const out: TopKResult[] = [];
      for (const it of req.items) out.push(await searchOne(it.handle, req.queries, req.batch, req.k, it));
      return out;
    }
    case 'release': {
      const index = indexes.get(req.handle);
      indexes.delete(req.handle);
      zeroMasks.delete(req.handle);
      if (index) await (await index.catch(() => undefined))?.release();
      return undefined;
    }
    case 'close': {
      for (const index of indexes.values()) await (await index.catch(() => undefined))?.release();
      indexes.clear();
      await kernel.close();
      return undefined;
    }
  }
}

// One request at a time: onnxruntime runs synchronously in this thread anyway, and order matters.
let queue: Promise<unknown> = Promise.resolve();
port.on('message', (req: KernelRequest) => {
  queue = queue.then(async () => {
    let reply: KernelReply;
    const transfer: ArrayBuffer[] = [];
    try {
      const result = await handle(req);
      reply = result ? { id: req.id, ok: true, result } : { id: req.id, ok: true };
      for (const r of result ?? []) transfer.push(r.scores.buffer as ArrayBuffer, r.rows.buffer as ArrayBuffer);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      reply = { id: req.id, ok: false, error: { name: e.name, message: e.message } };
    }
    port.postMessage(reply, transfer);
  });
});
