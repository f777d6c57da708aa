import { BackupCorruptError, CollectionExistsError, CollectionNotFoundError, InvalidArgumentError } from '../core/errors.js';
import { isArray } from '../core/ids.js';
import type { BlockInput, NvmStore, StoredBlock } from '../nvm/nvm-store.js';
import type { BackupCollectionSummary, BackupProgress } from './backup.js';
import type { BackupCollection, BackupHeader } from './backup-format.js';
import { readBackup } from './backup-reader.js';

/** Options of {@link restoreBackup}. */
export interface RestoreOptions {
  /** The collections to restore (default: every one in the backup). */
  collections?: readonly string[];
  /** Blocks per NVM write (default 500). */
  batchBlocks?: number;
  /** Called as the file is verified, then as blocks are written. */
  onProgress?: (p: BackupProgress) => void | Promise<void>;
  /** Stops the restore; what it created is dropped again. */
  signal?: AbortSignal;
}

/** What {@link restoreBackup} restored. */
export interface RestoreResult {
  /** The change-log position the backup was consistent at (in the source). */
  backupLsn: number;
  /** When the backup was taken. */
  createdAt: string;
  collections: BackupCollectionSummary[];
  blocks: number;
  /** The last lsn the restore wrote here. */
  lsn: number;
}

/** How a restore drops what it created when it fails (default: from the NVM). */
export interface RestoreHooks {
  drop?: (collection: string) => Promise<void>;
}

/** Vector bytes per NVM write besides the block count. */
const BATCH_BYTES = 8 * 2 ** 20;

/**
 * Restores a backup into collections that do not exist yet (every one in it, or those named):
 * the whole file is read and checked first (checksums, counts, digests), so a truncated or
 * corrupt file is refused before anything is created; then each collection is created with its
 * dimension, metric and encoder, and its blocks are written to the NVM in batches with their
 * versions, so its digest afterwards equals the source's (checked). {@link CollectionExistsError}
 * naming the first that exists; on any failure the collections it created are dropped again.
 * HVS processes take the collections up from the change log (`HyperSync.restore` waits for it).
 */
export async function restoreBackup(
  nvm: NvmStore,
  file: string,
  opts: RestoreOptions = {},
  hooks: RestoreHooks = {},
): Promise<RestoreResult> {
  const batchBlocks = opts.batchBlocks ?? 500;
  if (!Number.isInteger(batchBlocks) || batchBlocks < 1)
    throw new InvalidArgumentError(`batchBlocks must be a positive integer, got ${String(batchBlocks)}`);
  const header = await verifyBackup(file, opts);
  const chosen = chooseCollections(header, opts.collections);
  for (const c of chosen) {
    try {
      await nvm.getCollection(c.name);
    } catch (err) {
      if (err instanceof CollectionNotFoundError) continue;
      throw err;
    }
    throw new CollectionExistsError(c.name, { details: { hint: 'restore creates collections; drop it or leave it out' } });
  }
  const wanted = new Set(chosen.map((c) => c.name));
  const total = chosen.reduce((n, c) => n + c.blocks, 0);
  const created: string[] = [];
  const summaries: BackupCollectionSummary[] = [];
  let done = 0;
  let lsn = 0;
  try {
    let batch: BlockInput[] = [];
    let bytes = 0;
    const flush = async (c: BackupCollection): Promise<void> => {
      if (batch.length === 0) return;
      opts.signal?.throwIfAborted();
      const out = await nvm.writeBlocks(c.name, batch);
      lsn = Math.max(lsn, out.lsn);
      done += batch.length;
      batch = [];
      bytes = 0;
      await opts.onProgress?.({ phase: 'restore', collection: c.name, blocks: done, total });
    };
    for await (const e of readBackup(file)) {
      if (e.kind === 'collection' && wanted.has(e.collection.name)) {
        const c = e.collection;
        await nvm.createCollection(c.name, { dim: c.dim, metric: c.metric, ...(c.encoder ? { encoder: c.encoder } : {}) });
        created.push(c.name);
      } else if (e.kind === 'blocks' && wanted.has(e.collection.name)) {
        for (const b of e.blocks) {
          batch.push(blockInput(b));
          bytes += b.vectors.length * e.collection.dim * 4 + (b.content?.length ?? 0);
          if (batch.length >= batchBlocks || bytes >= BATCH_BYTES) await flush(e.collection);
        }
      } else if (e.kind === 'collection-end' && wanted.has(e.collection.name)) {
        await flush(e.collection);
        const { blocks, digest } = await nvm.digest(e.collection.name);
        if (blocks !== e.end.blocks || digest !== e.end.digest) {
          throw new Error(
            `collection ${e.collection.name} restored with ${blocks} blocks of digest ${digest}; the backup holds ` +
              `${e.end.blocks} of digest ${e.end.digest} (was it written to while restoring?)`,
          );
        }
        summaries.push({ name: e.collection.name, blocks, digest });
      }
    }
  } catch (err) {
    const drop = hooks.drop ?? ((name: string) => nvm.dropCollection(name));
    for (const name of created) await drop(name).catch(() => undefined);
    throw err;
  }
  return { backupLsn: header.lsn, createdAt: header.createdAt, collections: summaries, blocks: done, lsn };
}

/** Reads the whole file once, checking everything; resolves to its header. */
export async function verifyBackup(
  file: string,
  opts: Pick<RestoreOptions, 'onProgress' | 'signal'> = {},
): Promise<BackupHeader> {
  let header: BackupHeader | undefined;
  let total = 0;
  let read = 0;
  let ended = false;
  for await (const e of readBackup(file)) {
    opts.signal?.throwIfAborted();
    if (e.kind === 'header') {
      header = e.header;
      total = header.collections.reduce((n, c) => n + c.blocks, 0);
    } else if (e.kind === 'blocks') {
      read += e.blocks.length;
      await opts.onProgress?.({ phase: 'verify', collection: e.collection.name, blocks: read, total });
    } else if (e.kind === 'end') ended = true;
  }
  // The reader throws on anything amiss; this is its contract restated.
  if (!header || !ended) throw new BackupCorruptError('the backup ended early');
  return header;
}

/** The header's collections that are named (all without names); an unknown name is refused. */
function chooseCollections(header: BackupHeader, names: readonly string[] | undefined): BackupCollection[] {
  if (names === undefined) return header.collections;
  if (!isArray(names) || names.length === 0) {
    throw new InvalidArgumentError('collections must be a non-empty array of names (or unset: every collection in the backup)');
  }
  const byName = new Map(header.collections.map((c) => [c.name, c]));
  for (const n of names) {
    if (!byName.has(n)) {
      throw new InvalidArgumentError(
        `collection ${JSON.stringify(n)} is not in the backup; it holds ${header.collections.map((c) => c.name).join(', ') || 'none'}`,
      );
    }
  }
  return header.collections.filter((c) => names.includes(c.name));
}

function blockInput(b: StoredBlock): BlockInput {
  return { id: b.id, name: b.name, content: b.content, metadata: b.metadata, vectors: b.vectors, version: b.version };
}
