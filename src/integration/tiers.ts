import type { Logger } from 'pino';
import type { Hvs } from '../hvs/hvs.js';
import type { NvmStore } from '../nvm/nvm-store.js';
import type { EncoderSet } from './item-input.js';
import type { ResultCache } from './result-cache.js';
import type { TieredCache } from './tiered-cache.js';
import type { WriteAheadLog } from './write-ahead-log.js';

/**
 * What the parts of {@link HyperSync} share: both tiers, the write-ahead log, the read and result
 * caches and the encoders, opened by the facade and closed by it, plus its closing flag and error sink.
 */
export interface Tiers {
  nvm: NvmStore;
  hvs: Hvs;
  wal: WriteAheadLog;
  cache: TieredCache;
  /** Answers of repeated identical queries (the planner's `cache_result` step). */
  results: ResultCache;
  encoders: EncoderSet;
  log: Logger;
  /** True once close() has begun: background work stops. */
  closing(): boolean;
  /** A background failure nobody awaits: logged, and emitted as `error`. */
  fail(err: Error): void;
}
