/**
 * The limits every layer enforces, in one table: the library's argument checks, the encoder, the
 * HTTP schemas, the CLI and the job payloads all read them from here, so a value the service
 * advertises is a value every layer below it accepts.
 */
export const LIMITS = {
  /** Items per `store()`/`delete()` call, HTTP request, CLI import batch or embed job. */
  itemsPerCall: 100_000,
  /** Query vectors or texts per `query()` call or HTTP request. */
  queriesPerCall: 4096,
  /** Texts per `encode()` call; the encoders batch inside, so this is the call limit. */
  textsPerCall: 100_000,
  /** Characters (UTF-16 code units, `string.length`) of one text to encode or one item's content. */
  textChars: 1_000_000,
  /** Largest vector dimension. */
  dim: 4096,
  /** Largest `k` a search accepts. */
  k: 1024,
  /** Longest id, in UTF-16 code units. */
  idLength: 512,
  /** Deepest nesting of `$and`/`$or`/`$not` in a metadata filter. */
  filterDepth: 16,
  /** Most conditions plus `$in`/`$nin` values in one filter. */
  filterTerms: 10_000,
  /** Deepest nesting of objects in an item's metadata. */
  metadataDepth: 16,
  /** Most values in one metadata array. */
  metadataArray: 4096,
} as const;

/** The names of the limits, for messages and `details`. */
export type LimitName = keyof typeof LIMITS;
