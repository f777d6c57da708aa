import { join } from 'node:path';
import { z } from 'zod';
import type { DevicePreference } from './core/device-preference.js';
import { ConfigError } from './core/errors.js';

const emptyToUndefined = (v: unknown): unknown => (v === '' ? undefined : v);

const schema = z.object({
  DATABASE_URL: z.preprocess(emptyToUndefined, z.string().url().optional()),
  REDIS_URL: z.preprocess(emptyToUndefined, z.string().url().optional()),
  HYPERSYNC_PORT: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(65535).default(8080)),
  HYPERSYNC_HOST: z.preprocess(emptyToUndefined, z.string().default('0.0.0.0')),
  HYPERSYNC_DATA_DIR: z.preprocess(emptyToUndefined, z.string().default('./.hypersync')),
  HYPERSYNC_BACKUP_DIR: z.preprocess(emptyToUndefined, z.string().optional()),
  HYPERSYNC_DEVICE: z.preprocess(emptyToUndefined, z.enum(['auto', 'cpu', 'cuda']).default('auto')),
  HYPERSYNC_CUDA_TF32: z.preprocess(emptyToUndefined, z.enum(['0', '1']).default('0')),
  HYPERSYNC_CACHE_MB: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).default(1024)),
  HYPERSYNC_RESULT_CACHE_MB: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).default(64)),
  HYPERSYNC_IVF_MIN_ROWS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).default(50_000)),
  HYPERSYNC_API_KEYS: z.preprocess(emptyToUndefined, z.string().optional()),
  HYPERSYNC_URL: z.preprocess(emptyToUndefined, z.string().url().optional()),
  HYPERSYNC_API_KEY: z.preprocess(emptyToUndefined, z.string().optional()),
  HYPERSYNC_PROBE_DETAIL: z.preprocess(emptyToUndefined, z.enum(['full', 'counts']).optional()),
  HYPERSYNC_RATE_LIMIT: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1).optional()),
  HYPERSYNC_MODEL_DIR: z.preprocess(emptyToUndefined, z.string().optional()),
  HYPERSYNC_MODEL_FILE: z.preprocess(emptyToUndefined, z.string().optional()),
  HYPERSYNC_QUEUE_PREFIX: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only (1 to 64)')
      .default('hypersync'),
  ),
  HYPERSYNC_VERIFY_INTERVAL_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).default(3_600_000)),
  HYPERSYNC_COMPACT_INTERVAL_MS: z.preprocess(
    emptyToUndefined,
    z.coerce
      .number()
      .int()
      .refine((v) => v === 0 || v >= 1000, '0 (off) or at least 1000')
      .default(86_400_000),
  ),
  HYPERSYNC_JOB_LOCK_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1000).default(30_000)),
  HYPERSYNC_JOB_DRAIN_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).default(30_000)),
  HYPERSYNC_REQUIRE_SERVICES: z.preprocess(emptyToUndefined, z.enum(['0', '1']).default('0')),
  LOG_LEVEL: z.preprocess(
    emptyToUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
});

/** Validated configuration; the only view of `process.env` in the code base. */
export interface Config {
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  port: number;
  host: string;
  dataDir: string;
  /** Where `backup` jobs write and `restore` jobs read backups, by name (default `<dataDir>/backups`). */
  backupDir: string;
  device: DevicePreference;
  /** TF32 tensor cores for the CUDA addon's score GEMM (`HYPERSYNC_CUDA_TF32=1`); FP32 otherwise. */
  cudaTf32: boolean;
  cacheMb: number;
  /** Result-cache budget in MiB (repeated identical queries; 0 disables it). */
  resultCacheMb: number;
  /** Rows at which a collection's IVF index is trained in the background by itself (0: only when asked). */
  ivfMinRows: number;
  apiKeys: string[];
  /** The running service the CLI's data commands talk to over HTTP (`HYPERSYNC_URL`; else found through `dataDir`). */
  serverUrl: string | undefined;
  /** The key the CLI sends to that service: `HYPERSYNC_API_KEY`, else the first of `HYPERSYNC_API_KEYS`. */
  clientApiKey: string | undefined;
  /** Requests per second per API key, or per client address without one (undefined: no limit). */
  rateLimit: number | undefined;
  /**
   * What the open probes (`/readyz`, `/metrics`) tell of collections: `full` names them, `counts`
   * only counts them (the default when API keys are set, since the probes need no key).
   */
  probeDetail: 'full' | 'counts';
  modelDir: string | undefined;
  /** The ONNX file inside `modelDir` (e.g. `model_qint8.onnx`); default `model.onnx`, else `onnx/model.onnx`. */
  modelFile: string | undefined;
  requireServices: boolean;
  /** Prefix of every Redis key and channel (queues, control channel). */
  queuePrefix: string;
  /** Every how many ms a `verify` job of every collection is queued (0: never). */
  verifyIntervalMs: number;
  /** Every how many ms a `compact` job of every collection (which prunes the change log) is queued (0: never). */
  compactIntervalMs: number;
  /** A killed worker's job is retried after about this long (BullMQ lock duration). */
  jobLockMs: number;
  /** How long a stopping process lets running jobs finish before it hands them back. */
  jobDrainMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/**
 * Reads and validates the environment. Throws one {@link ConfigError} listing every bad value,
 * each with the variable's name and the reason.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`, {
      details: { issues: lines },
    });
  }
  const e = parsed.data;
  const apiKeys = (e.HYPERSYNC_API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    port: e.HYPERSYNC_PORT,
    host: e.HYPERSYNC_HOST,
    dataDir: e.HYPERSYNC_DATA_DIR,
    backupDir: e.HYPERSYNC_BACKUP_DIR ?? join(e.HYPERSYNC_DATA_DIR, 'backups'),
    device: e.HYPERSYNC_DEVICE,
    cudaTf32: e.HYPERSYNC_CUDA_TF32 === '1',
    cacheMb: e.HYPERSYNC_CACHE_MB,
    resultCacheMb: e.HYPERSYNC_RESULT_CACHE_MB,
    ivfMinRows: e.HYPERSYNC_IVF_MIN_ROWS,
    apiKeys,
    serverUrl: e.HYPERSYNC_URL,
    clientApiKey: e.HYPERSYNC_API_KEY ?? apiKeys[0],
    rateLimit: e.HYPERSYNC_RATE_LIMIT,
    probeDetail: e.HYPERSYNC_PROBE_DETAIL ?? (apiKeys.length > 0 ? 'counts' : 'full'),
    modelDir: e.HYPERSYNC_MODEL_DIR,
    modelFile: e.HYPERSYNC_MODEL_FILE,
    requireServices: e.HYPERSYNC_REQUIRE_SERVICES === '1',
    queuePrefix: e.HYPERSYNC_QUEUE_PREFIX,
    verifyIntervalMs: e.HYPERSYNC_VERIFY_INTERVAL_MS,
    compactIntervalMs: e.HYPERSYNC_COMPACT_INTERVAL_MS,
    jobLockMs: e.HYPERSYNC_JOB_LOCK_MS,
    jobDrainMs: e.HYPERSYNC_JOB_DRAIN_MS,
    logLevel: e.LOG_LEVEL,
  };
}
