import { InvalidArgumentError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';

/** Any character that is not whitespace; a text without one has nothing to encode. */
const NON_BLANK = /\S/u;

/**
 * The checks every encoder runs before it encodes: `texts` is a non-empty array of at most
 * {@link LIMITS.textsPerCall} strings, each non-blank and at most {@link LIMITS.textChars} long. Throws
 * {@link InvalidArgumentError} naming the first offending index.
 *
 * Empty and whitespace-only texts are rejected rather than given a zero vector: a zero vector has
 * no direction, so cosine collections would reject it later with a less helpful error, and any
 * fixed stand-in vector would match every other blank text perfectly.
 */
export function checkTexts(texts: unknown, what = 'texts'): asserts texts is readonly string[] {
  if (!Array.isArray(texts) || texts.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty array of strings`);
  }
  if (texts.length > LIMITS.textsPerCall) {
    throw new InvalidArgumentError(
      `${what} has ${texts.length} entries; at most ${LIMITS.textsPerCall} can be encoded per call`,
      {
        details: { count: texts.length, limit: LIMITS.textsPerCall },
      },
    );
  }
  for (let i = 0; i < texts.length; i++) {
    const t: unknown = texts[i];
    if (typeof t !== 'string') {
      throw new InvalidArgumentError(`${what}[${i}] must be a string, got ${t === null ? 'null' : typeof t}`, {
        details: { index: i },
      });
    }
    if (t.length > LIMITS.textChars) {
      throw new InvalidArgumentError(`${what}[${i}] has ${t.length} characters; the limit is ${LIMITS.textChars}`, {
        details: { index: i, length: t.length, limit: LIMITS.textChars },
      });
    }
    if (!NON_BLANK.test(t)) {
      throw new InvalidArgumentError(`${what}[${i}] is empty or whitespace only; there is nothing to encode`, {
        details: { index: i },
      });
    }
  }
}
