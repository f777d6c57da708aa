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
  const encodeOpts = { return_token_type_ids: opts.typeIds };
  let enc: { ids: number[]; token_type_ids?: number[] } | undefined;
  // A long document is tokenised from a prefix cut at ASCII whitespace (a token boundary for
  // WordPiece, BPE and Unigram alike), grown until it yields more tokens than are kept; the
  // kept tokens are then the same as the whole text's, without tokenising 100k characters.
  for (let budget = maxLength * CHARS_PER_TOKEN_BUDGET; !enc && budget < text.length; budget *= 4) {
    const cut = text.slice(budget).search(/[ \t\n\r]/);
    if (cut < 0) break;
    const prefix = tokenizer.encode(text.slice(0, budget + cut), encodeOpts);
    if (prefix.ids.length > maxLength) enc = prefix;
  }
  enc ??= tokenizer.encode(text, encodeOpts);
  let ids: number[] = enc.ids;
  let typeIds = opts.typeIds ? enc.token_type_ids : undefined;
  if (ids.length > maxLength) {
    const keep = maxLength - specialsAfter;
    ids = ids.slice(0, keep).concat(ids.slice(ids.length - specialsAfter));
    typeIds = typeIds?.slice(0, keep).concat(typeIds.slice(typeIds.length - specialsAfter));
  }
  return { ids, typeIds };
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
