import type { Config } from '../config.js';
import type { Encoder } from './encoder.js';
import { HashingEncoder } from './hashing-encoder.js';
import { OnnxEncoder } from './onnx-encoder.js';

/** The encoders a service runs with: the default one and every one collections may name. */
export interface ConfiguredEncoders {
  encoder: Encoder;
  encoders: Encoder[];
  /** Closes every encoder; safe to call twice. */
  close(): Promise<void>;
}

/**
 * The hashing encoder (384 dimensions, no weights) is always there; with `HYPERSYNC_MODEL_DIR`
 * the ONNX sentence-transformer found there is loaded too and becomes the default.
 */
export async function encodersFromConfig(config: Config): Promise<ConfiguredEncoders> {
  const hashing = new HashingEncoder({ dim: 384 });
  const encoders: Encoder[] = [hashing];
  let encoder: Encoder = hashing;
  if (config.modelDir !== undefined) {
    encoder = await OnnxEncoder.open({ modelDir: config.modelDir, device: config.device });
    encoders.push(encoder);
  }
  return {
    encoder,
    encoders,
    close: async () => {
      for (const e of encoders) await e.close?.();
    },
  };
}
