import type { NvmStore } from '../nvm/nvm-store.js';
import { checkBatch, copyRows } from '../core/vector.js';
import { blockHash, DigestAccumulator } from './block-digest.js';
import type { CollectionState } from './collection-state.js';
import { blockIdOf, chunkOf, rowKey } from './row-keys.js';
import { reconcile } from './sync-manager.js';
import type { TieredCache } from './tiered-cache.js';
import type { ConsistencyReport, Inconsistency } from './types.js';

/** Options of {@link verifyConsistency}. */
export interface VerifyOptions {
  /** Inconsistencies listed at most (default 1,000; all are counted). */
  limit?: number;
}

type HvsBlock = { version: number; hash: bigint };

/**
 * Blocks of the HVS collection: id → version and 60-bit hash. Vectors are hashed as they are
 * scanned (one segment in memory at a time); only blocks with several chunks are gathered first.
 */
async function hvsBlocks(state: CollectionState): Promise<Map<string, HvsBlock>> {
  const h = state.hvs;
  const out = new Map<string, HvsBlock>();
  if (!h) return out;
  const multi = new Map<string, { version: number; vectors: Float32Array[] }>();
  for await (const part of h.scan()) {
    part.ids.forEach((key, i) => {
      const id = blockIdOf(key);
      const chunk = chunkOf(key);
      const v = part.vectors.subarray(i * h.dim, (i + 1) * h.dim);
      if (chunk === 0 && !h.has(rowKey(id, 1))) {
        out.set(id, { version: part.versions[i], hash: blockHash(id, part.versions[i], [v]) });
        return;
      }
      let b = multi.get(id);
      if (!b) multi.set(id, (b = { version: part.versions[i], vectors: [] }));
      if (chunk === 0) b.version = part.versions[i];
      b.vectors[chunk] = v.slice();
    });
  }
  for (const [id, b] of multi) out.set(id, { version: b.version, hash: blockHash(id, b.version, b.vectors) });
  return out;
}

/**
 * Compares the tiers for one collection: counts and order-independent digests of ids, versions
 * and vector bytes, computed the same way on both sides. When they differ, the NVM is streamed
 * and compared block by block to list every difference (missing in either tier, other version,
 * other vector bytes). Vectors the NVM holds unnormalised (written straight into PostgreSQL) are
 * compared after normalising, as the HVS indexes them.
 */
export async function verifyConsistency(
  nvm: NvmStore,
  state: CollectionState,
  opts: VerifyOptions = {},
): Promise<ConsistencyReport> {
  const limit = opts.limit ?? 1000;
  const hvs = await hvsBlocks(state);
  const acc = new DigestAccumulator();
  for (const b of hvs.values()) acc.addHash(b.hash);
  const nvmDigest = await nvm.digest(state.name);
  const report: ConsistencyReport = {
    collection: state.name,
    consistent: true,
    hvs: { count: acc.blocks, digest: acc.digest },
    nvm: { count: nvmDigest.blocks, digest: nvmDigest.digest },
    inconsistencies: [],
    total: 0,
  };
  if (acc.digest === nvmDigest.digest && acc.blocks === nvmDigest.blocks) return report;

  const list: Inconsistency[] = [];
  const note = (x: Inconsistency): void => {
    report.total++;
    if (list.length < limit) list.push(x);
  };
  // Stream the NVM (pages in lsn order, a block's chunks together) and compare as blocks complete.
  const seen = new Set<string>();
  const pending = new Map<string, { version: number; vectors: Float32Array[] }>();
  for await (const page of nvm.streamVectors(state.name)) {
    for (let i = 0; i < page.ids.length; i++) {
      const id = page.ids[i];
      let b = pending.get(id);
      if (!b) pending.set(id, (b = { version: page.versions[i], vectors: [] }));
      b.vectors[page.chunks[i]] = page.vectors.subarray(i * state.dim, (i + 1) * state.dim);
    }
    for (const [id, b] of pending) {
      seen.add(id);
      compareBlock(state, id, b, hvs.get(id), note);
    }
    pending.clear();
  }
  // Vectorless blocks are not streamed: the HVS has no rows for them either.
  for (const [id, b] of hvs) {
    if (!seen.has(id)) note({ id, kind: 'missing_in_nvm', hvsVersion: b.version });
  }
  report.inconsistencies = list;
  report.consistent = report.total === 0;
  return report;
}

function compareBlock(
  state: CollectionState,
  id: string,
  nvmBlock: { version: number; vectors: Float32Array[] },
  hvsBlock: HvsBlock | undefined,
  note: (x: Inconsistency) => void,
): void {
  if (!hvsBlock) {
    note({ id, kind: 'missing_in_hvs', nvmVersion: nvmBlock.version });
    return;
  }
  if (hvsBlock.version !== nvmBlock.version) {
    note({ id, kind: 'version_mismatch', hvsVersion: hvsBlock.version, nvmVersion: nvmBlock.version });
    return;
  }
  const expected = nvmBlock.vectors.map((v) => asIndexed(v, state));
  if (blockHash(id, nvmBlock.version, expected) !== hvsBlock.hash) {
    note({ id, kind: 'vector_mismatch', hvsVersion: hvsBlock.version, nvmVersion: nvmBlock.version });
  }
}

/** The vector as the HVS stores it: normalised for cosine (a unit vector keeps its bytes). */
function asIndexed(v: Float32Array, state: CollectionState): Float32Array {
  if (state.metric !== 'cosine') return v;
  const out = new Float32Array(state.dim);
  copyRows(checkBatch(v, state.dim, 'cosine', 'vector'), state.dim, 0, 1, out, 0);
  return out;
}

/**
 * Makes the HVS agree with the NVM (the source of truth) for the ids a report lists: re-read
 * where missing or different, deleted where the NVM has no such block.
 */
export async function repairInconsistencies(
  nvm: NvmStore,
  cache: TieredCache,
  state: CollectionState,
  report: ConsistencyReport,
): Promise<{ upserted: number; deleted: number }> {
  const ids = report.inconsistencies.map((x) => x.id);
  if (ids.length === 0) return { upserted: 0, deleted: 0 };
  return state.lock.runExclusive(() => reconcile({ nvm, cache }, state, ids, new Set(ids)));
}
