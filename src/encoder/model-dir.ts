import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, InvalidArgumentError } from '../core/errors.js';
import type { OnnxEncoderOptions, Pooling } from './onnx-encoder-options.js';
import { specialTokenCounts, type TextTokenizer, TokenizerClass } from './text-tokenizer.js';

/** A model directory as read: its files, its tokenizer, and the settings its configs and the options resolve to. */
export interface ModelDir {
  modelDir: string;
  modelPath: string;
  tokenizerPath: string;
  tokenizer: TextTokenizer;
  pooling: Pooling;
  maxLength: number;
  padId: number;
  /** Special tokens the tokenizer adds before and after a text's own tokens. */
  specialsBefore: number;
  specialsAfter: number;
}

/**
 * Reads a sentence-transformer export (see {@link OnnxEncoderOptions.modelDir}): finds the ONNX
 * file, loads the tokenizer and resolves pooling, maximum length and padding. Throws
 * {@link ConfigError} naming the path when a file is missing or unusable.
 */
export async function loadModelDir(opts: OnnxEncoderOptions): Promise<ModelDir> {
  const { modelDir, modelPath } = await findModelFile(opts.modelDir, opts.modelFile);
  const tokenizerPath = join(modelDir, 'tokenizer.json');
  const tokenizerJson = await readJson(tokenizerPath, true);
  const tokenizerConfig = (await readJson(join(modelDir, 'tokenizer_config.json'), false)) ?? {};
  const modelConfig = await readJson(join(modelDir, 'config.json'), false);
  const stConfig = await readJson(join(modelDir, 'sentence_bert_config.json'), false);
  const poolingConfig = await readJson(join(modelDir, '1_Pooling', 'config.json'), false);

  let tokenizer: TextTokenizer;
  try {
    tokenizer = new TokenizerClass(tokenizerJson!, tokenizerConfig);
  } catch (err) {
    throw new ConfigError(`${tokenizerPath} cannot be loaded: ${(err as Error).message}`, {
      cause: err,
      details: { path: tokenizerPath },
    });
  }

  const pooling = opts.pooling ?? poolingFromConfig(poolingConfig, join(modelDir, '1_Pooling', 'config.json'));
  const positions = positiveInt(modelConfig?.max_position_embeddings);
  let maxLength = opts.maxLength ?? positiveInt(stConfig?.max_seq_length) ?? positiveInt(tokenizerConfig.model_max_length) ?? 512;
  if (positions !== undefined) maxLength = Math.min(maxLength, positions);

  const { before, after } = specialTokenCounts(tokenizer);
  if (maxLength <= before + after) {
    throw new InvalidArgumentError(`maxLength ${maxLength} leaves no room for text beside ${before + after} special tokens`);
  }
  const padToken = tokenizerConfig.pad_token;
  const padName = typeof padToken === 'string' ? padToken : (padToken as { content?: unknown } | undefined)?.content;
  const padId = (typeof padName === 'string' ? tokenizer.token_to_id(padName) : undefined) ?? 0;
  return {
    modelDir,
    modelPath,
    tokenizerPath,
    tokenizer,
    pooling,
    maxLength,
    padId,
    specialsBefore: before,
    specialsAfter: after,
  };
}

async function readJson(path: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${path} is not a valid JSON object: ${(err as Error).message}`, { cause: err, details: { path } });
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** A positive integer from a JSON config, or undefined (HF writes huge sentinels like 1e30 for "no limit"). */
function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 1_000_000 ? v : undefined;
}

/** SHA-256 of the files' contents, one after another (the encoder's version). */
export async function sha256Files(paths: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const p of paths) {
    for await (const chunk of createReadStream(p)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/**
 * The ONNX file of a model directory: `modelFile` (relative to the directory) when given, else
 * `model.onnx`, else `onnx/model.onnx`. Throws {@link ConfigError} naming the path when the
 * directory or the file is missing.
 */
export async function findModelFile(dir: string, modelFile?: string): Promise<{ modelDir: string; modelPath: string }> {
  const modelDir = resolve(dir);
  const dirStat = await stat(modelDir).catch(() => undefined);
  if (!dirStat?.isDirectory()) {
    throw new ConfigError(`model directory ${modelDir} does not exist or is not a directory`, { details: { path: modelDir } });
  }
  const candidates = modelFile ? [modelFile] : ['model.onnx', join('onnx', 'model.onnx')];
  for (const c of candidates) {
    if (await isFile(resolve(modelDir, c))) return { modelDir, modelPath: resolve(modelDir, c) };
  }
  throw new ConfigError(`no ${candidates.join(' or ')} in model directory ${modelDir}`, {
    details: { path: resolve(modelDir, candidates[0]) },
  });
}

/** Reads sentence-transformers' `1_Pooling/config.json`; mean when absent. */
function poolingFromConfig(cfg: Record<string, unknown> | undefined, path: string): Pooling {
  if (!cfg) return 'mean';
  if (cfg.pooling_mode_mean_tokens === true) return 'mean';
  if (cfg.pooling_mode_cls_token === true) return 'cls';
  const modes = Object.keys(cfg).filter((k) => k.startsWith('pooling_mode_') && cfg[k] === true);
  throw new ConfigError(`${path} asks for pooling ${modes.join(', ') || '(none)'}; supported: mean tokens, CLS token`, {
    details: { path },
  });
}
