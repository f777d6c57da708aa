/**
 * Turns texts into vectors, in batches (LanceDB's `EmbeddingFunction`). Collections record the
 * encoder's name and version so vectors from different encoders are never mixed.
 *
 * Implementations: `HashingEncoder` (lexical, no weights, the embedded default) and `OnnxEncoder`
 * (sentence-transformer exports on onnxruntime).
 */
export interface Encoder {
  /** Short name, e.g. `hashing` or `onnx:all-MiniLM-L6-v2`. */
  readonly name: string;
  /** Changes whenever the same text could encode to a different vector. */
  readonly version: string;
  /** Dimension of every vector it returns. */
  readonly dim: number;
  /**
   * One vector per text, in order. Rejects with `InvalidArgumentError` (naming the index) unless
   * `texts` is a non-empty array of at most `LIMITS.textsPerCall` non-blank strings of at most
   * `LIMITS.textChars` characters each (see `input.ts`), and with `ClosedError` after `close()`.
   */
  encode(texts: readonly string[]): Promise<Float32Array[]>;
  /** Releases sessions and buffers; safe to call twice. */
  close?(): Promise<void>;
}
