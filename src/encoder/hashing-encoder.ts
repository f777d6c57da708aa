import { ClosedError, InvalidArgumentError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import type { Encoder } from './encoder.js';
import { checkTexts } from './input.js';
import { withDefaults } from '../core/options.js';

/** Options of {@link HashingEncoder}; every weight must be finite and non-negative, and one positive. */
export interface HashingEncoderOptions {
  /** Dimension of the vectors; default 384 (that of MiniLM-class models). */
  dim?: number;
  /** Shortest character n-gram; default 3. */
  charNgramMin?: number;
  /** Longest character n-gram; default 5. */
  charNgramMax?: number;
  /** Weight of the word unigram features; default 1. */
  wordWeight?: number;
  /** Weight of the word bigram features (word order); default 0.5. */
  bigramWeight?: number;
  /** Weight of the character n-gram features (spelling variants, inflections); default 1. */
  charWeight?: number;
}

const DEFAULTS: Required<HashingEncoderOptions> = {
  dim: 384,
  charNgramMin: 3,
  charNgramMax: 5,
  wordWeight: 1,
  bigramWeight: 0.5,
  charWeight: 1,
};

/** Largest dimension accepted; the service's own limit. */
/** Characters that make up words: letters, digits and combining marks, any script. */
const WORD = /[\p{L}\p{N}\p{M}]+/gu;
/** Everything else that is not whitespace; used only for texts without a single word. */
const SYMBOL = /[^\s\p{L}\p{N}\p{M}]/gu;

/** Characters encoded between two yields to the event loop: about 25 ms of work on the build machine. */
const YIELD_EVERY_CHARS = 250_000;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** Feature families, hashed in first so the word "abc" and the 3-gram "abc" differ. */
const WORD_FAMILY = 1;
const BIGRAM_FAMILY = 2;
const CHAR_FAMILY = 3;

/** FNV-1a over the UTF-16 code units `s[start, end)`, continuing from state `h`. */
function fnv1a(h: number, s: string, start: number, end: number): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h;
}

/** murmur3's finaliser: spreads FNV's weak low bits over the whole word before taking index and sign. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function seed(family: number): number {
  return Math.imul(FNV_OFFSET ^ family, FNV_PRIME);
}

/** A growable list of 32-bit feature hashes, reused across texts. */
class HashList {
  data = new Uint32Array(256);
  length = 0;

  push(h: number): void {
    if (this.length === this.data.length) {
      const grown = new Uint32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = h;
  }
}

/**
 * The embedded default encoder; it needs no weights. Signed feature hashing (Weinberger et al.,
 * 2009) of three feature families:
 *
 * - word unigrams and word bigrams (word order), where words are runs of letters, digits and marks
 *   after NFKC normalisation and lower-casing (a text without any word uses its symbols instead);
 * - character n-grams of each word padded as `<word>` (fastText-style), so inflections and typos
 *   still share most features.
 *
 * Each feature's 32-bit hash (FNV-1a over UTF-16 code units with murmur3's finaliser) picks an
 * index and a sign; a feature seen `tf` times counts `1 + ln tf` (sublinear). Each family is
 * L2-normalised, weighted, summed, and the sum L2-normalised, so cosine and inner product agree.
 *
 * Lexical, not semantic: texts that share words and spellings score high, synonyms and
 * paraphrases with other words do not. Deterministic across runs, processes and machines, and
 * fast (no model, no native code). `version` encodes every parameter.
 */
export class HashingEncoder implements Encoder {
  readonly name = 'hashing';
  readonly version: string;
  readonly dim: number;
  private readonly opts: Required<HashingEncoderOptions>;
  private readonly lists = [new HashList(), new HashList(), new HashList()];
  /** Scratch: one family's counts, and the weighted sum of the families. */
  private readonly block: Float64Array;
  private readonly acc: Float64Array;
  private closed = false;

  constructor(opts: HashingEncoderOptions = {}) {
    this.opts = withDefaults(DEFAULTS, opts);
    const o = this.opts;
    if (!Number.isInteger(o.dim) || o.dim < 1 || o.dim > LIMITS.dim) {
      throw new InvalidArgumentError(`dim must be an integer between 1 and ${LIMITS.dim}, got ${String(o.dim)}`);
    }
    if (
      !Number.isInteger(o.charNgramMin) ||
      !Number.isInteger(o.charNgramMax) ||
      o.charNgramMin < 1 ||
      o.charNgramMax < o.charNgramMin
    ) {
      throw new InvalidArgumentError(
        `charNgramMin and charNgramMax must be integers with 1 <= min <= max, got ${String(o.charNgramMin)} and ${String(o.charNgramMax)}`,
      );
    }
    for (const k of ['wordWeight', 'bigramWeight', 'charWeight'] as const) {
      if (typeof o[k] !== 'number' || !Number.isFinite(o[k]) || o[k] < 0) {
        throw new InvalidArgumentError(`${k} must be a finite number >= 0, got ${String(o[k])}`);
      }
    }
    // Every text has at least one word or symbol unigram, so the word weight is what keeps every
    // vector non-zero.
    if (o.wordWeight === 0) throw new InvalidArgumentError('wordWeight must be > 0');
    this.dim = o.dim;
    this.block = new Float64Array(o.dim);
    this.acc = new Float64Array(o.dim);
    this.version = `hashing-v1-d${o.dim}-w${o.wordWeight}-b${o.bigramWeight}-c${o.charWeight}-n${o.charNgramMin}to${o.charNgramMax}`;
  }

  /**
   * One unit-length vector per text, in order. The work is synchronous; between texts it yields to
   * the event loop every {@link YIELD_EVERY_CHARS} characters (about 25 ms), so a large batch of
   * long texts does not stall a server.
   */
  async encode(texts: readonly string[]): Promise<Float32Array[]> {
    if (this.closed) throw new ClosedError('hashing encoder');
    checkTexts(texts);
    const out: Float32Array[] = [];
    let sinceYield = 0;
    for (const t of texts) {
      if (sinceYield > YIELD_EVERY_CHARS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sinceYield = 0;
      }
      out.push(this.encodeOne(t));
      sinceYield += t.length;
    }
    return out;
  }

  /** Nothing to release; later calls to `encode` reject with {@link ClosedError}. */
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private encodeOne(text: string): Float32Array {
    const [words, bigrams, chars] = this.lists;
    words.length = bigrams.length = chars.length = 0;
    const { charNgramMin: nMin, charNgramMax: nMax } = this.opts;
    const normalized = text.normalize('NFKC').toLowerCase();
    const wordSeed = seed(WORD_FAMILY);
    const bigramSeed = seed(BIGRAM_FAMILY);
    const charSeed = seed(CHAR_FAMILY);
    let hasPrev = false;
    let prevStart = 0;
    let prevEnd = 0;
    for (const m of normalized.matchAll(WORD)) {
      const start = m.index;
      const end = start + m[0].length;
      words.push(fmix32(fnv1a(wordSeed, normalized, start, end)));
      if (hasPrev) {
        // The bigram hashes "prev␠word" without building the string.
        const h = fnv1a(Math.imul(fnv1a(bigramSeed, normalized, prevStart, prevEnd) ^ 0x20, FNV_PRIME), normalized, start, end);
        bigrams.push(fmix32(h));
      }
      hasPrev = true;
      prevStart = start;
      prevEnd = end;
      const padded = `<${m[0]}>`;
      for (let n = nMin; n <= nMax; n++) {
        for (let i = 0; i + n <= padded.length; i++) chars.push(fmix32(fnv1a(charSeed, padded, i, i + n)));
      }
    }
    if (words.length === 0) {
      for (const m of normalized.matchAll(SYMBOL)) words.push(fmix32(fnv1a(wordSeed, m[0], 0, m[0].length)));
    }

    const acc = this.acc;
    acc.fill(0);
    this.addFamily(acc, words, this.opts.wordWeight);
    this.addFamily(acc, bigrams, this.opts.bigramWeight);
    this.addFamily(acc, chars, this.opts.charWeight);
    let norm = 0;
    for (let i = 0; i < acc.length; i++) norm += acc[i] * acc[i];
    norm = Math.sqrt(norm);
    // Only colliding features of equal weight and opposite sign cancelling exactly could make this 0.
    if (norm === 0) throw new InvalidArgumentError('text has no features left after hashing; it cannot be encoded');
    const out = new Float32Array(this.dim);
    for (let i = 0; i < acc.length; i++) out[i] = acc[i] / norm;
    return out;
  }

  /** Adds one family's features, L2-normalised and weighted, to `acc`. */
  private addFamily(acc: Float64Array, list: HashList, weight: number): void {
    if (list.length === 0 || weight === 0) return;
    const block = this.block;
    block.fill(0);
    // Sorting groups equal hashes, so term frequencies come out of one pass with no map.
    const hashes = list.data.subarray(0, list.length).sort();
    const dim = this.dim;
    for (let i = 0; i < hashes.length;) {
      const h = hashes[i];
      let j = i + 1;
      while (j < hashes.length && hashes[j] === h) j++;
      const tf = 1 + Math.log(j - i);
      block[(h & 0x7fffffff) % dim] += h >>> 31 ? -tf : tf;
      i = j;
    }
    let norm = 0;
    for (let i = 0; i < dim; i++) norm += block[i] * block[i];
    if (norm === 0) return;
    const scale = weight / Math.sqrt(norm);
    for (let i = 0; i < dim; i++) acc[i] += block[i] * scale;
  }
}
