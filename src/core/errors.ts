/**
 * Typed errors. Callers branch with `instanceof`, never on message text; each class maps to one
 * HTTP status, used by the service's single error middleware.
 */

/** Stable, machine-readable error codes (the `code` field of HTTP error bodies). */
export type ErrorCode =
  | 'invalid_argument'
  | 'dimension_mismatch'
  | 'invalid_vector'
  | 'not_found'
  | 'collection_not_found'
  | 'collection_exists'
  | 'encoder_mismatch'
  | 'unauthorized'
  | 'snapshot_corrupt'
  | 'backup_corrupt'
  | 'backup_exists'
  | 'wal_corrupt'
  | 'device_unavailable'
  | 'unavailable'
  | 'insufficient_storage'
  | 'locked'
  | 'closed'
  | 'config_invalid'
  | 'payload_too_large'
  | 'rate_limited'
  | 'cancelled'
  | 'internal';

export interface HyperSyncErrorOptions {
  cause?: unknown;
  /** Structured context for callers and the HTTP `details` field. */
  details?: Record<string, unknown>;
}

/** Base class of every error hypersync throws on purpose. */
export class HyperSyncError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, code: ErrorCode, httpStatus: number, opts: HyperSyncErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.httpStatus = httpStatus;
    this.details = opts.details;
  }
}

/** Bad input from the caller (400). */
export class InvalidArgumentError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'invalid_argument', 400, opts);
  }
}

/** A vector whose length differs from the collection's dimension (400). */
export class DimensionMismatchError extends HyperSyncError {
  constructor(expected: number, actual: number, where: string, opts: HyperSyncErrorOptions = {}) {
    super(`${where}: expected dimension ${expected}, got ${actual}`, 'dimension_mismatch', 400, {
      ...opts,
      details: { expected, actual, ...opts.details },
    });
  }
}

/** A vector holding NaN or ±Infinity, or a zero vector where cosine needs a direction (400). */
export class InvalidVectorError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'invalid_vector', 400, opts);
  }
}

/** Something addressed by name or id does not exist (404). */
export class NotFoundError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'not_found', 404, opts);
  }
}

/** The named collection does not exist (404). */
export class CollectionNotFoundError extends HyperSyncError {
  constructor(collection: string, opts?: HyperSyncErrorOptions) {
    super(`collection "${collection}" does not exist`, 'collection_not_found', 404, opts);
  }
}

/** A collection of that name exists already (409). */
export class CollectionExistsError extends HyperSyncError {
  constructor(collection: string, opts?: HyperSyncErrorOptions) {
    super(`collection "${collection}" already exists`, 'collection_exists', 409, opts);
  }
}

/** A snapshot file is missing, truncated or fails its checksum; it is never loaded (500). */
export class SnapshotCorruptError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'snapshot_corrupt', 500, opts);
  }
}

/**
 * A backup file that is not one, or is truncated, fails a checksum or is of a format this build
 * cannot read; nothing of it is restored (400).
 */
export class BackupCorruptError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'backup_corrupt', 400, opts);
  }
}

/** A backup of that name or file exists already; backups are never overwritten (409). */
export class BackupExistsError extends HyperSyncError {
  constructor(what: string, opts?: HyperSyncErrorOptions) {
    super(`backup ${what} exists already`, 'backup_exists', 409, opts);
  }
}

/** The write-ahead log file is not one this build can read (wrong magic or format version); it is left untouched (500). */
export class WalCorruptError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'wal_corrupt', 500, opts);
  }
}

/** The requested compute device cannot be used (503). */
export class DeviceUnavailableError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'device_unavailable', 503, opts);
  }
}

/**
 * The compute device lacks the memory for a request (a segment past the HVS device budget or past
 * the GPU's free memory): refused before anything is allocated (507).
 */
export class DeviceMemoryError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'insufficient_storage', 507, opts);
  }
}

/** A tier cannot be reached (the database is down or restarting); retry later (503). */
export class UnavailableError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'unavailable', 503, opts);
  }
}

/**
 * The disk under the write-ahead log is full: the write was not stored; it is accepted again once
 * space is freed (507).
 */
export class InsufficientStorageError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'insufficient_storage', 507, opts);
  }
}

/**
 * The change log was pruned past the position a reader asked to read from: the rows it needs
 * are gone, so it must rebuild from the tables instead of catching up (503: retrying after a
 * rebuild succeeds).
 */
export class ChangeLogGapError extends HyperSyncError {
  constructor(
    readonly from: number,
    readonly prunedThrough: number,
  ) {
    super(
      `the change log is pruned through lsn ${prunedThrough}; changes after ${from} cannot be replayed (rebuild from the NVM)`,
      'unavailable',
      503,
      { details: { from, prunedThrough } },
    );
  }
}

/** The embedded database's directory is in use by another store or process (409). */
export class StoreLockedError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'locked', 409, opts);
  }
}

/** Use of a resource after its `close()` (503). */
export class ClosedError extends HyperSyncError {
  constructor(what: string) {
    super(`${what} is closed`, 'closed', 503);
  }
}

/** A bad configuration value, reported once at start (500 if it ever reaches HTTP). */
export class ConfigError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'config_invalid', 500, opts);
  }
}

/**
 * A collection's texts must be encoded by the encoder (and version) it was created with, and this
 * process has a different one or none of that name (409).
 */
export class EncoderMismatchError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'encoder_mismatch', 409, opts);
  }
}

/** Missing or unknown API key (401). */
export class UnauthorizedError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'unauthorized', 401, opts);
  }
}

/** A request body or batch larger than the service takes (413). */
export class PayloadTooLargeError extends HyperSyncError {
  constructor(message: string, opts?: HyperSyncErrorOptions) {
    super(message, 'payload_too_large', 413, opts);
  }
}

/** A stored migration's text differs from the one this build ships (500). */
export class MigrationMismatchError extends HyperSyncError {
  constructor(version: number, name: string) {
    super(`migration ${version} (${name}) was changed after it was applied; add a new migration instead`, 'internal', 500);
  }
}

/** A failure reported by a kernel worker thread (503: the device tier is unavailable). */
export class KernelWorkerError extends HyperSyncError {
  constructor(message: string) {
    super(message, 'device_unavailable', 503);
  }
}

/** The abort reason of a cancelled job (409: never retried). */
export class JobCancelledError extends HyperSyncError {
  constructor(readonly jobId: string) {
    super(`job ${jobId} was cancelled`, 'cancelled', 409, { details: { jobId } });
  }
}

/** The abort reason of a job stopped because its worker shuts down: it is handed back, not failed (503). */
export class WorkerShutdownError extends HyperSyncError {
  constructor() {
    super('the worker is shutting down', 'unavailable', 503);
  }
}
