import { Tokenizer } from '@huggingface/tokenizers';

/**
 * The part of `@huggingface/tokenizers`' `Tokenizer` used here. The package's bundled typings use
 * extensionless relative imports, which TypeScript's NodeNext resolution cannot follow (the class
 * comes out as `any`), so its shape is stated here.
 */
export interface TextTokenizer {
  encode(
    text: string,
    options?: { add_special_tokens?: boolean; return_token_type_ids?: boolean },
  ): { ids: number[]; token_type_ids?: number[] };
  token_to_id(token: string): number | undefined;
}
export const TokenizerClass = Tokenizer as unknown as new (tokenizerJson: object, tokenizerConfig: object) => TextTokenizer;

/** One text after tokenisation and truncation. */
export interface Tokens {
  ids: number[];
  typeIds: number[] | undefined;
}

/** How a text is cut to the model's length. */
export interface TruncationOptions {
  /** Most tokens kept, special tokens included. */
  maxLength: number;
  /** Special tokens the tokenizer adds after a text's own tokens (kept on truncation). */
  specialsAfter: number;
  /** Whether the model takes `token_type_ids`. */
  typeIds: boolean;
}

/** Texts longer than this many characters per allowed token are tokenised from a prefix (see `tokenize`). */
const CHARS_PER_TOKEN_BUDGET = 8;

/** Token ids of one text, truncated to `maxLength` with the closing special tokens kept. */
export function tokenize(tokenizer: TextTokenizer, text: string, opts: TruncationOptions): Tokens {
  const { maxLength, specialsAfter } = opts;
  const enc = encodeHead(tokenizer, text, opts) ?? tokenizer.encode(text, { return_token_type_ids: opts.typeIds });
  let ids: number[] = enc.ids;
  let typeIds = opts.typeIds ? enc.token_type_ids : undefined;
  if (ids.length > maxLength) {
    const keep = maxLength - specialsAfter;
    ids = ids.slice(0, keep).concat(ids.slice(ids.length - specialsAfter));
    typeIds = typeIds?.slice(0, keep).concat(typeIds.slice(typeIds.length - specialsAfter));
  }
  return { ids, typeIds };
}

/**
 * The tokens of a prefix of a long text whose first `maxLength` tokens (less the closing special
 * ones) are the whole text's, or undefined when no such prefix is found (the caller then
 * tokenises the whole text). Texts may be up to `LIMITS.textChars` (1,000,000) characters, and
 * tokenising one whole costs seconds (≈8 s for a million CJK characters on 2 cores), all of it
 * on the event loop.
 */
function encodeHead(
  tokenizer: TextTokenizer,
  text: string,
  opts: TruncationOptions,
): { ids: number[]; token_type_ids?: number[] } | undefined {
  const { maxLength, specialsAfter } = opts;
  const encodeOpts = { return_token_type_ids: opts.typeIds };
  const first = maxLength * CHARS_PER_TOKEN_BUDGET;
  // A long document is tokenised from a prefix cut at ASCII whitespace (a token boundary for
  // WordPiece, BPE and Unigram alike), grown until it yields more tokens than are kept; the
  // kept tokens are then the same as the whole text's. Whitespace is looked for only so far
  // past the budget: a cut far beyond it would save little.
  for (let budget = first; budget < text.length; budget *= 4) {
    const cut = text.slice(budget, 2 * budget).search(/[ \t\n\r]/);
    if (cut < 0) break;
    const prefix = tokenizer.encode(text.slice(0, budget + cut), encodeOpts);
    if (prefix.ids.length > maxLength) return prefix;
  }
  // No whitespace to cut at (CJK text, minified code, long identifiers): cut anywhere, at two
  // places. A cut can only change tokens near it, so kept tokens that both prefixes agree on are
  // the whole text's; when they differ (e.g. one word longer than the tokenizer splits, which it
  // maps to a single unknown token), the whole text is tokenised.
  if (text.length <= 2 * first) return undefined;
  const head = tokenizer.encode(text.slice(0, first), encodeOpts);
  if (head.ids.length <= maxLength) return undefined;
  const longer = tokenizer.encode(text.slice(0, 2 * first), encodeOpts).ids;
  for (let i = 0; i < maxLength - specialsAfter; i++) if (head.ids[i] !== longer[i]) return undefined;
  return head;
}

/** Where the template puts the text's own tokens among the special ones, e.g. [CLS] $A [SEP]. */
export function specialTokenCounts(tokenizer: TextTokenizer): { before: number; after: number } {
  const probeText = 'hello';
  const content = tokenizer.encode(probeText, { add_special_tokens: false }).ids;
  const full = tokenizer.encode(probeText).ids;
  let before = full.length;
  for (let p = 0; p + content.length <= full.length; p++) {
    if (content.every((id, j) => full[p + j] === id)) {
      before = p;
      break;
    }
  }
  const after = Math.max(0, full.length - before - content.length);
  return { before, after };
}
