import { CollectionNotFoundError, InvalidArgumentError } from '../core/errors.js';
import { isArray } from '../core/ids.js';
import type { NvmSnapshot, NvmStore, StoredBlock } from '../nvm/nvm-store.js';
import {
  BLOCKS_FRAME_BYTES,
  type BackupCollection,
  type BackupHeader,
  BACKUP_FORMAT,
  encodeBlocks,
  FRAME,
} from './backup-format.js';
import { BackupWriter } from './backup-writer.js';
import { DigestAccumulator } from './block-digest.js';

/** Options of {@link writeBackup}. */
export interface BackupOptions {
  /** The collections to copy (default: every collection). */
  collections?: readonly string[];
  /** Gzip the file (default: when its name ends in `.gz`). */
  gzip?: boolean;
  /** Called after each page of blocks is written. */
  onProgress?: (p: BackupProgress) => void | Promise<void>;
  /** Stops the backup (nothing is left under the file's name). */
  signal?: AbortSignal;
}

/** Progress of a backup or a restore: blocks done of the total, and the collection at hand. */
export interface BackupProgress {
  phase: 'backup' | 'verify' | 'restore';
  collection: string;
  blocks: number;
  total: number;
}

/** One collection of a backup, as written or restored. */
export interface BackupCollectionSummary {
  name: string;
  blocks: number;
  /** The collection's digest (as `verifyConsistency` computes it). */
  digest: string;
}

/** What {@link writeBackup} wrote. */
export interface BackupResult {
  /** The change-log position the copy is consistent at: every write up to it is in, none after. */
  lsn: number;
  createdAt: string;
  collections: BackupCollectionSummary[];
  blocks: number;
  /** The file's size. */
  bytes: number;
}

/** Blocks read from the NVM per page. */
const PAGE_BLOCKS = 1000;

/**
 * Writes a point-in-time copy of collections (default every one) to `file`: everything is read
 * in one NVM snapshot, so writes going on meanwhile are either wholly in the copy (committed
 * before its lsn) or wholly out. WAL-only writes are not in the NVM: the caller persists them
 * first (`HyperSync.backup` does). {@link BackupExistsError} if `file` exists; nothing is left
 * under its name when the backup fails.
 */
export async function writeBackup(nvm: NvmStore, file: string, opts: BackupOptions = {}): Promise<BackupResult> {
  if (opts.collections !== undefined && (!isArray(opts.collections) || opts.collections.length === 0)) {
    throw new InvalidArgumentError('collections must be a non-empty array of names (or unset: every collection)');
  }
  opts.signal?.throwIfAborted();
  const writer = await BackupWriter.create(file, { gzip: opts.gzip ?? file.endsWith('.gz') });
  try {
    const copied = await nvm.readSnapshot((snap) => copySnapshot(snap, writer, opts));
    return { ...copied, bytes: await writer.finish() };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

async function copySnapshot(snap: NvmSnapshot, writer: BackupWriter, opts: BackupOptions): Promise<Omit<BackupResult, 'bytes'>> {
  const known = new Map(snap.collections.map((c) => [c.name, c]));
  const names = opts.collections ? [...new Set(opts.collections)] : snap.collections.map((c) => c.name);
  const collections: BackupCollection[] = [];
  for (const name of names) {
    const c = known.get(name);
    if (!c) throw new CollectionNotFoundError(name);
    collections.push({
      name,
      dim: c.dim,
      metric: c.metric,
      ...(c.encoder ? { encoder: c.encoder } : {}),
      blocks: await snap.count(name),
    });
  }
  const header: BackupHeader = { format: BACKUP_FORMAT, createdAt: new Date().toISOString(), lsn: snap.lsn, collections };
  await writer.writeJson(FRAME.header, header);
  const total = collections.reduce((n, c) => n + c.blocks, 0);
  const summaries: BackupCollectionSummary[] = [];
  let done = 0;
  for (const c of collections) {
    await writer.writeJson(FRAME.collection, { name: c.name });
    const digest = new DigestAccumulator();
    for await (const page of snap.blocks(c.name, PAGE_BLOCKS)) {
      opts.signal?.throwIfAborted();
      for (const b of page) digest.add(b.id, b.version, b.vectors);
      for (const part of framesOf(page, c.dim)) await writer.writeFrame(FRAME.blocks, encodeBlocks(part, c.dim));
      done += page.length;
      await opts.onProgress?.({ phase: 'backup', collection: c.name, blocks: done, total });
    }
    const summary = { name: c.name, blocks: digest.blocks, digest: digest.digest };
    await writer.writeJson(FRAME.collectionEnd, summary);
    summaries.push(summary);
  }
  await writer.writeJson(FRAME.end, { collections: collections.length, blocks: done });
  return { lsn: snap.lsn, createdAt: header.createdAt, collections: summaries, blocks: done };
}

/** A page's blocks in runs of about {@link BLOCKS_FRAME_BYTES} each. */
function* framesOf(page: readonly StoredBlock[], dim: number): Generator<StoredBlock[]> {
  let run: StoredBlock[] = [];
  let bytes = 0;
  for (const b of page) {
    // An estimate (UTF-16 lengths, three bytes a character at most): frames stay well under the limit.
    bytes += 32 + 3 * (b.id.length + (b.name?.length ?? 0) + (b.content?.length ?? 0)) + b.vectors.length * dim * 4;
    run.push(b);
    if (bytes >= BLOCKS_FRAME_BYTES) {
      yield run;
      run = [];
      bytes = 0;
    }
  }
  if (run.length > 0) yield run;
}
