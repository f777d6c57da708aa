import type { Config } from '../config.js';
import { ConfigError } from '../core/errors.js';
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
 * the ONNX sentence-transformer found there (`HYPERSYNC_MODEL_FILE` picks the file, e.g. the int8
 * one `hypersync quantize` writes) is loaded too and becomes the default.
 */
export async function encodersFromConfig(config: Config): Promise<ConfiguredEncoders> {
  const hashing = new HashingEncoder({ dim: 384 });
  const encoders: Encoder[] = [hashing];
  let encoder: Encoder = hashing;
  if (config.modelFile !== undefined && config.modelDir === undefined) {
    throw new ConfigError('HYPERSYNC_MODEL_FILE is set but HYPERSYNC_MODEL_DIR is not: the file is looked up in that directory');
  }
  if (config.modelDir !== undefined) {
    encoder = await OnnxEncoder.open({ modelDir: config.modelDir, modelFile: config.modelFile, device: config.device });
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
