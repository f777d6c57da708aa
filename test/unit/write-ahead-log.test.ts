import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFile, mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClosedError, InvalidArgumentError, WalCorruptError } from '../../src/core/errors.js';
import type { WalOp, WalRecord } from '../../src/integration/wal-format.js';
import { WriteAheadLog } from '../../src/integration/write-ahead-log.js';
import { walChildOp } from '../fixtures/wal-child.js';

let dir: string;
let opened: WriteAheadLog[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), `wal-${randomUUID()}-`));
  opened = [];
});
afterEach(async () => {
  for (const wal of opened) await wal.close();
  await rm(dir, { recursive: true, force: true });
});

const walPath = (): string => join(dir, 'wal.log');

async function openWal(): Promise<Awaited<ReturnType<typeof WriteAheadLog.open>>> {
  const r = await WriteAheadLog.open({ dir });
  opened.push(r.wal);
  return r;
}

/** Floats whose bits a lossy path would change: -0, subnormals, extremes, a NaN with a payload. */
function trickyVector(seed: number): Float32Array {
  const v = new Float32Array(12);
  v.set([-0, 1e-45, 1.17e-39, 3.4028234e38, -3.4028234e38, 1e30, Math.PI * seed, -1 / 3, 0, 1e-7, seed]);
  new Uint32Array(v.buffer)[11] = 0x7fc0_1234;
  return v;
}

function upsertOp(i: number, dim = 12): WalOp {
  const v = new Float32Array(dim);
  for (let j = 0; j < dim; j++) v[j] = Math.cos(i + j) * 1000;
  return {
    type: 'upsert',
    collection: 'docs',
    items: [{ id: `id-${i}`, version: i, vectors: [v], content: i % 3 === 0 ? null : `text ${i}`, metadata: { i } }],
  };
}

/** A record with every vector replaced by its bit pattern, so `toEqual` compares floats exactly. */
function bitExact(r: { seq?: number; op: WalOp }): unknown {
  const op =
    r.op.type === 'delete'
      ? r.op
      : {
          ...r.op,
          items: r.op.items.map((it) => ({
            ...it,
            vectors: it.vectors.map((v) => {
              expect(v).toBeInstanceOf(Float32Array);
              return Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));
            }),
          })),
        };
  return r.seq === undefined ? { op } : { seq: r.seq, op };
}

const bitExactAll = (records: readonly WalRecord[]): unknown[] => records.map(bitExact);

describe('WriteAheadLog', () => {
  it('round-trips upserts and deletes bit for bit across a reopen', async () => {
    const { wal, pending, recovery } = await openWal();
    expect(pending).toEqual([]);
    expect(recovery).toEqual({ records: 0, completed: 0, tornBytes: 0 });

    // a vector that is a view into a larger buffer, at an offset
    const backing = new Float32Array(40);
    backing.set(trickyVector(3), 20);
    const ops: WalOp[] = [
      {
        type: 'upsert',
        collection: 'docs',
        items: [
          {
            id: 'a',
            version: 0,
            vectors: [trickyVector(1)],
            content: 'alpha',
            metadata: { tags: ['x', 'y'], n: 1.5, nested: { ok: true } },
          },
          {
            id: 'b',
            version: Number.MAX_SAFE_INTEGER,
            vectors: [trickyVector(2), backing.subarray(20, 32)],
            content: null,
            metadata: {},
          },
        ],
      },
      { type: 'delete', collection: 'docs', ids: ['a', 'zz'] },
      { type: 'upsert', collection: 'other', items: [{ id: 'c', version: 7, vectors: [], content: '', metadata: { é: 'ü' } }] },
    ];
    const seqs: number[] = [];
    for (const op of ops) seqs.push(await wal.append(op));
    expect(seqs).toEqual([1, 2, 3]);
    const expected = ops.map((op, i) => ({ seq: seqs[i], op }));
    expect(bitExactAll(wal.pending())).toEqual(bitExactAll(expected));
    expect(wal.stats()).toMatchObject({ pending: 3, appends: 3, bytes: (await stat(walPath())).size });
    await wal.close();

    const again = await openWal();
    expect(again.recovery).toEqual({ records: 3, completed: 0, tornBytes: 0 });
    expect(bitExactAll(again.pending)).toEqual(bitExactAll(expected));
    expect(bitExactAll(again.wal.pending())).toEqual(bitExactAll(expected));
    // decoded vectors own aligned buffers of their own
    const v = (again.pending[0].op as Extract<WalOp, { type: 'upsert' }>).items[1].vectors[1];
    expect(v.length).toBe(12);
    expect(v.byteOffset % 4).toBe(0);
  });

  it('completed records are not pending after a reopen, and seqs continue after the highest', async () => {
    const { wal } = await openWal();
    const seqs = [];
    for (let i = 0; i < 6; i++) seqs.push(await wal.append(upsertOp(i)));
    await wal.complete([seqs[0], seqs[2]]);
    await wal.complete([seqs[2], 999]); // retried and unknown seqs are harmless
    expect(wal.pending().map((r) => r.seq)).toEqual([2, 4, 5, 6]);
    expect(wal.pendingCount).toBe(4);
    await wal.close();

    const r = await openWal();
    expect(r.recovery).toEqual({ records: 6, completed: 2, tornBytes: 0 });
    expect(r.pending.map((p) => p.seq)).toEqual([2, 4, 5, 6]);
    expect(bitExact(r.pending[0])).toEqual(bitExact({ seq: 2, op: upsertOp(1) }));
    await r.wal.complete([6]);
    expect(await r.wal.append(upsertOp(99))).toBe(7);
    await r.wal.close();

    // the highest seq was completed; the next one still does not reuse it
    const r2 = await openWal();
    expect(r2.pending.map((p) => p.seq)).toEqual([2, 4, 5, 7]);
    expect(await r2.wal.append(upsertOp(100))).toBe(8);
  });

  it('group-commits concurrent appends: one write and fsync per group, all durable', async () => {
    const { wal } = await openWal();
    const fsyncsBefore = wal.stats().fsyncs;
    const resolved: number[] = [];
    const appends: Promise<number>[] = [];
    for (let i = 0; i < 200; i++) {
      appends.push(
        wal.append(upsertOp(i)).then((seq) => {
          resolved.push(seq);
          return seq;
        }),
      );
      // spread the appends over several turns of the event loop, so that some arrive mid-fsync
      if (i % 10 === 9) await new Promise((r) => setImmediate(r));
    }
    const seqs = await Promise.all(appends);
    expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(resolved).toHaveLength(200);
    for (let i = 1; i < resolved.length; i++) expect(resolved[i]).toBeGreaterThan(resolved[i - 1]);
    const fsyncs = wal.stats().fsyncs - fsyncsBefore;
    expect(fsyncs).toBeGreaterThanOrEqual(1);
    expect(fsyncs).toBeLessThan(50);
    expect(wal.stats().appends).toBe(200);
    await wal.close();

    const r = await openWal();
    expect(r.recovery.records).toBe(200);
    expect(bitExactAll(r.pending)).toEqual(bitExactAll(seqs.map((seq, i) => ({ seq, op: upsertOp(i) }))));
  });

  describe('recovers from a damaged tail', () => {
    const damages: [string, (lastFrameAt: number, size: number) => Promise<void>][] = [
      ['a torn last frame', (at, size) => truncate(walPath(), at + Math.floor((size - at) / 2))],
      ['a frame header cut short', (at) => truncate(walPath(), at + 5)],
      ['garbage after the last frame', () => appendFile(walPath(), Buffer.alloc(37, 0xab))],
      // what a crash can leave when the file's size was made durable before its data
      ['zeros after the last frame', () => appendFile(walPath(), Buffer.alloc(4096))],
      [
        'a flipped byte in the last frame (CRC)',
        async (at, size) => {
          const fh = await open(walPath(), 'r+');
          try {
            const pos = at + 8 + Math.floor((size - at - 8) / 2);
            const b = Buffer.alloc(1);
            await fh.read(b, 0, 1, pos);
            b[0] ^= 0x10;
            await fh.write(b, 0, 1, pos);
          } finally {
            await fh.close();
          }
        },
      ],
    ];

    it.each(damages)('%s: earlier records survive, the tail is cut, new appends follow', async (what, damage) => {
      const { wal } = await openWal();
      for (let i = 0; i < 5; i++) await wal.append(upsertOp(i));
      const lastFrameAt = wal.stats().bytes;
      await wal.append(upsertOp(5));
      const size = wal.stats().bytes;
      await wal.close();
      await damage(lastFrameAt, size);
      const damagedSize = (await stat(walPath())).size;

      const r = await openWal();
      const survivors = what.endsWith('after the last frame') ? 6 : 5;
      expect(r.recovery.records).toBe(survivors);
      expect(r.recovery.tornBytes).toBe(damagedSize - (survivors === 6 ? size : lastFrameAt));
      expect(r.recovery.tornBytes).toBeGreaterThan(0);
      expect((await stat(walPath())).size).toBe(survivors === 6 ? size : lastFrameAt);
      const expected = Array.from({ length: survivors }, (_, i) => ({ seq: i + 1, op: upsertOp(i) }));
      expect(bitExactAll(r.pending)).toEqual(bitExactAll(expected));

      const seq = await r.wal.append(upsertOp(42));
      await r.wal.close();
      const r2 = await openWal();
      expect(r2.recovery).toEqual({ records: survivors + 1, completed: 0, tornBytes: 0 });
      expect(bitExact(r2.pending.at(-1)!)).toEqual(bitExact({ seq, op: upsertOp(42) }));
    });
  });

  it('creates missing directories, honours fileName, and rejects a fileName that is a path', async () => {
    const nested = join(dir, 'x', 'y');
    const { wal, recovery } = await WriteAheadLog.open({ dir: nested, fileName: 'custom.wal' });
    opened.push(wal);
    expect(recovery.tornBytes).toBe(0);
    await wal.append(upsertOp(1));
    await wal.close();
    expect((await stat(join(nested, 'custom.wal'))).size).toBe(wal.stats().bytes);
    const again = await WriteAheadLog.open({ dir: nested, fileName: 'custom.wal' });
    opened.push(again.wal);
    expect(again.pending.map((r) => r.seq)).toEqual([1]);
    await expect(WriteAheadLog.open({ dir, fileName: '../escape.log' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('refuses a file that is not a write-ahead log and leaves it untouched', async () => {
    await writeFile(walPath(), 'this is not a write-ahead log at all');
    await expect(WriteAheadLog.open({ dir })).rejects.toBeInstanceOf(WalCorruptError);
    expect(await readFile(walPath(), 'utf8')).toBe('this is not a write-ahead log at all');

    await writeFile(walPath(), Buffer.from('HSWAL1\n\x09', 'latin1'));
    const err = await WriteAheadLog.open({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalCorruptError);
    expect((err as WalCorruptError).code).toBe('wal_corrupt');
    expect((err as WalCorruptError).httpStatus).toBe(500);
  });

  it('restarts a file whose header was torn at creation', async () => {
    await writeFile(walPath(), Buffer.from('HSWA', 'latin1'));
    const { wal, recovery } = await openWal();
    expect(recovery).toEqual({ records: 0, completed: 0, tornBytes: 4 });
    await wal.append(upsertOp(1));
    await wal.close();
    expect((await openWal()).pending).toHaveLength(1);
  });

  it('checkpoint keeps only pending records: smaller file, same pending, appends go on', async () => {
    const { wal } = await openWal();
    const seqs: number[] = [];
    for (let i = 0; i < 300; i++) seqs.push(await wal.append(upsertOp(i, 64)));
    const keep = seqs.filter((_, i) => i % 10 === 3);
    await wal.complete(seqs.filter((_, i) => i % 10 !== 3));
    const before = wal.stats().bytes;
    const pendingBefore = bitExactAll(wal.pending());
    expect(pendingBefore).toHaveLength(30);

    await wal.checkpoint();
    const after = wal.stats().bytes;
    expect(after).toBe((await stat(walPath())).size);
    expect(after).toBeLessThan(before / 5);
    expect(bitExactAll(wal.pending())).toEqual(pendingBefore);

    // appends and completes after the checkpoint, then a second checkpoint that moves frames again
    const s1 = await wal.append(upsertOp(1000, 64));
    expect(s1).toBe(301);
    await wal.complete([keep[0], keep[1]]);
    await wal.checkpoint();
    const s2 = await wal.append(upsertOp(1001, 64));
    await wal.close();

    const r = await openWal();
    expect(r.recovery.tornBytes).toBe(0);
    const expected = [
      ...keep.slice(2).map((seq) => ({ seq, op: upsertOp(seq - 1, 64) })),
      { seq: s1, op: upsertOp(1000, 64) },
      { seq: s2, op: upsertOp(1001, 64) },
    ];
    expect(bitExactAll(r.pending)).toEqual(bitExactAll(expected));
  });

  it('checkpoint of a fully completed log keeps seqs monotonic; appends during it wait for it', async () => {
    const { wal } = await openWal();
    for (let i = 0; i < 10; i++) await wal.append(upsertOp(i));
    await wal.complete(wal.pending().map((r) => r.seq));

    const events: string[] = [];
    const cp = wal.checkpoint().then(() => events.push('checkpoint'));
    const ap = wal.append(upsertOp(10)).then((seq) => events.push(`append ${seq}`));
    await Promise.all([cp, ap]);
    expect(events).toEqual(['checkpoint', 'append 11']);
    await wal.complete([11]);
    await wal.checkpoint();
    await wal.close();

    // a checkpoint that crashed before its rename left a temp file: ignored and removed
    await writeFile(`${walPath()}.checkpoint`, 'half-written');
    const r = await openWal();
    expect(r.pending).toEqual([]);
    expect(await r.wal.append(upsertOp(12))).toBe(12);
    await expect(stat(`${walPath()}.checkpoint`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('close is safe twice, flushes queued appends, and use after close rejects with ClosedError', async () => {
    const { wal } = await openWal();
    const queued = wal.append(upsertOp(1));
    const closing = wal.close();
    expect(wal.close()).toBe(closing);
    await closing;
    expect(await queued).toBe(1);
    await wal.close();
    await expect(wal.append(upsertOp(2))).rejects.toBeInstanceOf(ClosedError);
    await expect(wal.complete([1])).rejects.toBeInstanceOf(ClosedError);
    await expect(wal.checkpoint()).rejects.toBeInstanceOf(ClosedError);
    expect((await openWal()).pending.map((r) => r.seq)).toEqual([1]);
  });

  it('rejects malformed ops with InvalidArgumentError and writes nothing', async () => {
    const { wal } = await openWal();
    const bad: unknown[] = [
      { ...upsertOp(1), collection: '' },
      { type: 'upsert', collection: 'docs', items: [] },
      { type: 'upsert', collection: 'docs', items: [{ id: 'a', version: 1, vectors: [[1, 2]], content: null, metadata: {} }] },
      { type: 'upsert', collection: 'docs', items: [{ id: 'a', version: -1, vectors: [], content: null, metadata: {} }] },
      { type: 'upsert', collection: 'docs', items: [{ id: 'a', version: 2 ** 60, vectors: [], content: null, metadata: {} }] },
      { type: 'upsert', collection: 'docs', items: [{ id: '', version: 1, vectors: [], content: null, metadata: {} }] },
      { type: 'delete', collection: 'docs', ids: [] },
      { type: 'truncate', collection: 'docs' },
    ];
    for (const op of bad) await expect(wal.append(op as WalOp)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(wal.complete([0])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(wal.complete([1.5])).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(wal.stats()).toMatchObject({ appends: 0, pending: 0 });
    // a rejected append does not use up a seq
    expect(await wal.append(upsertOp(1))).toBe(1);
  });

  it('every append acknowledged before a SIGKILL is recovered with its exact content', async () => {
    const script = fileURLToPath(new URL('../fixtures/wal-child.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked = new Map<number, number>(); // seq → append number
    const exited = new Promise<NodeJS.Signals | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (_code, signal) => resolve(signal));
    });
    let buffered = '';
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const [seq, i] = line.split(' ').map(Number);
        acked.set(seq, i);
      }
      if (acked.size >= 100 && child.exitCode === null && !child.killed) child.kill('SIGKILL');
    });
    expect(await exited).toBe('SIGKILL');
    expect(acked.size).toBeGreaterThanOrEqual(100);

    const r = await openWal();
    const bySeq = new Map(r.pending.map((p) => [p.seq, p]));
    for (const [seq, i] of acked) {
      const rec = bySeq.get(seq);
      expect(rec, `acknowledged seq ${seq} is pending`).toBeDefined();
      expect(bitExact(rec!)).toEqual(bitExact({ seq, op: walChildOp(i) }));
    }
    // nothing recovered out of order, and the log takes appends after the crash
    const seqs = r.pending.map((p) => p.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(await r.wal.append(upsertOp(0))).toBe(seqs.at(-1)! + 1);
  });
});
