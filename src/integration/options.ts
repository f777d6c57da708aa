import type { Logger } from 'pino';
import { InvalidArgumentError } from '../core/errors.js';
import type { Config } from '../config.js';
import type { DevicePreference } from '../core/device-preference.js';
import type { Encoder } from '../encoder/encoder.js';

/** Options of {@link HyperSync.open}. */
export interface HyperSyncOptions {
  /** HVS snapshots, the write-ahead log and (without `databaseUrl`) the embedded NVM live here. */
  dataDir: string;
  /** PostgreSQL with pgvector; unset: embedded PGlite under `<dataDir>/nvm`. */
  databaseUrl?: string;
  /** Where the HVS kernels run (default `auto`). */
  device?: DevicePreference;
  /** TF32 tensor cores for the CUDA addon's score GEMM (default false: FP32). */
  cudaTf32?: boolean;
  /** Byte budget of the read cache in MiB (default 1024; 0 disables it). */
  cacheMb?: number;
  /**
   * Byte budget in MiB of the result cache, which answers a repeated identical query until its
   * collection changes (default 64; 0 disables it).
   */
  resultCacheMb?: number;
  /**
   * The default encoder: turns texts into vectors for collections that name none (when the
   * dimensions match) and for `encode()`; without one, such items and queries must carry vectors.
   */
  encoder?: Encoder;
  /** More encoders, by name, that collections may name at creation. */
  encoders?: readonly Encoder[];
  /** Default: silent. */
  log?: Logger;
  /** Rows a growing HVS segment holds before it seals (default 32,768). */
  sealThreshold?: number;
  /**
   * Sealed rows at which a collection's IVF index is trained in the background by itself
   * (default 50,000; 0: only by `trainIndex`). Below it, and until trained, search is exact.
   */
  ivfMinRows?: number;
  /** `worker` (default): sealed HVS indexes live in worker threads; `main`: on the calling thread. */
  kernelThread?: 'worker' | 'main';
  /** How long a query waits for the HVS to reach its `minLsn` before the NVM answers (ms, default 1000). */
  minLsnWaitMs?: number;
  /** Change-log polling besides LISTEN/NOTIFY (ms, default 1000). */
  pollIntervalMs?: number;
  /**
   * Wake the change-log tailer on PostgreSQL's LISTEN/NOTIFY (default true). False: polling only,
   * for a connection pooler in transaction mode, which does not carry LISTEN.
   */
  listen?: boolean;
  /** How often WAL-only writes are persisted (ms, default 1000; 0: only by `sync()` and at close). */
  walSyncIntervalMs?: number;
  /** Write HVS snapshots at close (default true), so the next open loads them instead of rebuilding. */
  snapshotOnClose?: boolean;
}

/** Options from the validated environment (`src/config.ts`). */
export function optionsFromConfig(config: Config, extra: Partial<HyperSyncOptions> = {}): HyperSyncOptions {
  const { dataDir, device, cudaTf32, cacheMb, resultCacheMb, ivfMinRows } = config;
  const o: HyperSyncOptions = { dataDir, device, cudaTf32, cacheMb, resultCacheMb, ivfMinRows, ...extra };
  if (config.databaseUrl !== undefined) o.databaseUrl = config.databaseUrl;
  return o;
}

/** Throws {@link InvalidArgumentError} for options {@link HyperSync.open} cannot run with. */
export function checkOptions(options: HyperSyncOptions): void {
  if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) throw new InvalidArgumentError('dataDir is required');
  for (const k of ['minLsnWaitMs', 'pollIntervalMs', 'walSyncIntervalMs', 'cacheMb', 'resultCacheMb', 'ivfMinRows'] as const) {
    const v = options[k];
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new InvalidArgumentError(`${k} must be a number ≥ 0, got ${v}`);
  }
}
