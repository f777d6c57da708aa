import { randomUUID } from 'node:crypto';
import type { Encoder } from '../encoder/encoder.js';
import { DimensionMismatchError, EncoderMismatchError, InvalidArgumentError } from '../core/errors.js';
import { checkMetadata, isCleanString } from '../core/filter.js';
import { assertBlockId, isArray } from '../core/ids.js';
import { LIMITS } from '../core/limits.js';
import { checkBatch, copyRows } from '../core/vector.js';
import type { BlockInput, EncoderRef } from '../nvm/nvm-store.js';
import type { CollectionState } from './collection-state.js';
import type { StoreItem } from './types.js';

/** Longest text or content accepted (characters). */

/** A checked item, its vector as stored (normalised for cosine), ready for both tiers. */
export interface PreparedBlock extends BlockInput {
  content: string | null;
  metadata: Record<string, unknown>;
  vectors: [Float32Array];
}

/**
 * Checks a batch of items in full before anything is written: ids, one vector or a text per
 * item, content and metadata; encodes the texts in one batch; normalises for cosine (both tiers
 * then hold the same bytes). An id given twice keeps its last item. Returns one id per item.
 */
export async function prepareItems(
  state: CollectionState,
  items: readonly StoreItem[],
  encoders: EncoderSet,
): Promise<{ ids: string[]; blocks: PreparedBlock[] }> {
  if (!isArray(items) || items.length === 0) throw new InvalidArgumentError('items must be a non-empty array');
  if (items.length > LIMITS.itemsPerCall)
    throw new InvalidArgumentError(`at most ${LIMITS.itemsPerCall} items per call, got ${items.length}`);
  const texts: { index: number; text: string }[] = [];
  items.forEach((item, i) => {
    if (typeof item !== 'object' || item === null) throw new InvalidArgumentError(`items[${i}] must be an object`);
    if (item.id !== undefined) assertBlockId(item.id, `items[${i}]`);
    if (item.id?.includes('\u0000')) throw new InvalidArgumentError(`items[${i}]: id must not contain NUL`);
    if (item.text !== undefined && (typeof item.text !== 'string' || item.text.length > LIMITS.textChars)) {
      throw new InvalidArgumentError(`items[${i}].text must be a string of at most ${LIMITS.textChars} characters`);
    }
    if (
      item.content !== undefined &&
      item.content !== null &&
      (typeof item.content !== 'string' || item.content.length > LIMITS.textChars)
    ) {
      throw new InvalidArgumentError(`items[${i}].content must be a string of at most ${LIMITS.textChars} characters, or null`);
    }
    if (item.metadata !== undefined) checkMetadata(item.metadata, `items[${i}].metadata`);
    for (const field of ['content', 'text'] as const) {
      const v = item[field];
      if (typeof v === 'string' && !isCleanString(v)) {
        throw new InvalidArgumentError(`items[${i}].${field} must be well-formed Unicode without NUL characters`);
      }
    }
    if (item.vector === undefined) {
      if (item.text === undefined) throw new InvalidArgumentError(`items[${i}] needs a vector or a text`);
      texts.push({ index: i, text: item.text });
    } else if (!(item.vector instanceof Float32Array)) {
      throw new InvalidArgumentError(`items[${i}].vector must be a Float32Array`);
    } else if (item.vector.length !== state.dim) {
      throw new DimensionMismatchError(state.dim, item.vector.length, `items[${i}].vector`);
    }
  });
  const encoded = await encodeTexts(
    state,
    texts.map((t) => t.text),
    encoders,
  );
  const vectors: Float32Array[] = items.map((item) => item.vector ?? new Float32Array(0));
  texts.forEach((t, j) => (vectors[t.index] = encoded[j]));
  // Checks finiteness (and non-zero norms for cosine) of the whole batch, then copies each row
  // once: the caller's arrays are never kept, so changing them later changes nothing stored.
  const checked = checkBatch(vectors, state.dim, state.metric, 'items', undefined, (i) => `items[${i}].vector`);
  const byId = new Map<string, PreparedBlock>();
  const ids: string[] = [];
  items.forEach((item, i) => {
    const v = new Float32Array(state.dim);
    copyRows(checked, state.dim, i, 1, v, 0);
    const id = item.id ?? randomUUID();
    ids.push(id);
    byId.delete(id);
    byId.set(id, {
      id,
      content: item.content !== undefined ? item.content : (item.text ?? null),
      metadata: item.metadata ?? {},
      vectors: [v],
    });
  });
  return { ids, blocks: [...byId.values()] };
}

/** The encoders a process has: a default and more by name. */
export interface EncoderSet {
  default: Encoder | undefined;
  byName: ReadonlyMap<string, Encoder>;
}

/** The default encoder and every encoder by name (the default one included). */
export function encoderSetOf(defaultEncoder: Encoder | undefined, others: readonly Encoder[] = []): EncoderSet {
  const byName = new Map<string, Encoder>();
  for (const e of [...others, ...(defaultEncoder ? [defaultEncoder] : [])]) {
    const other = byName.get(e.name);
    if (other && other !== e) throw new InvalidArgumentError(`two encoders are named ${e.name}`);
    byName.set(e.name, e);
  }
  return { default: defaultEncoder, byName };
}

/**
 * The encoder for a collection's texts: the one it named at creation (same name and version), or
 * for a collection that named none the default one when its dimension matches.
 */
export function encoderFor(state: CollectionState, encoders: EncoderSet): Encoder {
  const named = state.encoder;
  if (named) {
    const e = encoders.byName.get(named.name);
    if (!e) {
      throw new EncoderMismatchError(`collection ${state.name} encodes with ${named.name}, which this process does not have`, {
        details: { encoder: named.name, version: named.version },
      });
    }
    if (e.version !== named.version) {
      throw new EncoderMismatchError(
        `collection ${state.name} was created with ${named.name} version ${named.version}; this process has version ${e.version}`,
        { details: { encoder: named.name, version: named.version, available: e.version } },
      );
    }
    return e;
  }
  const d = encoders.default;
  if (!d) throw new InvalidArgumentError(`collection ${state.name}: texts need an encoder, and none is configured; send vectors`);
  if (d.dim !== state.dim) {
    throw new InvalidArgumentError(
      `collection ${state.name} has dimension ${state.dim} but the default encoder ${d.name} makes ${d.dim}-dimensional vectors; send vectors, or create the collection with dim ${d.dim}`,
    );
  }
  return d;
}

/** Encodes texts for a collection (one batch); 400 or 409 with the reason when no encoder fits. */
export async function encodeTexts(
  state: CollectionState,
  texts: readonly string[],
  encoders: EncoderSet,
): Promise<Float32Array[]> {
  if (texts.length === 0) return [];
  const encoder = encoderFor(state, encoders);
  const out = await encoder.encode(texts);
  if (out.length !== texts.length)
    throw new Error(`encoder ${encoder.name} returned ${out.length} vectors for ${texts.length} texts`);
  return out;
}

/** Checks a list of ids to delete or get. */
export function checkIds(ids: readonly string[], what = 'ids'): void {
  if (!isArray(ids) || ids.length === 0) throw new InvalidArgumentError(`${what} must be a non-empty array`);
  if (ids.length > LIMITS.itemsPerCall)
    throw new InvalidArgumentError(`at most ${LIMITS.itemsPerCall} ${what} per call, got ${ids.length}`);
  ids.forEach((id, i) => assertBlockId(id, `${what}[${i}]`));
}

/** Encodes texts with the default encoder, or the one named; an unknown name is an {@link InvalidArgumentError}. */
export async function encodeWith(
  encoders: EncoderSet,
  texts: readonly string[],
  name: string | undefined,
): Promise<{ dim: number; vectors: Float32Array[]; encoder: EncoderRef }> {
  const e = name === undefined ? encoders.default : encoders.byName.get(name);
  if (!e) {
    throw new InvalidArgumentError(
      name === undefined ? 'no default encoder is configured' : `unknown encoder ${JSON.stringify(name)}`,
    );
  }
  const vectors = await e.encode(texts);
  return { dim: e.dim, vectors, encoder: { name: e.name, version: e.version } };
}
