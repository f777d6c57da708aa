import { z } from 'zod';
import { InvalidArgumentError } from '../core/errors.js';
import { checkMetadata } from '../core/filter.js';
import { LIMITS } from '../core/limits.js';
import { randomUUID } from 'node:crypto';
import { type AddJobOptions, checkKey, jobId, JOB_TYPES, type JobType } from './job-queue.js';

const collection = z.string().min(1).max(63);

/**
 * An item's metadata, checked as the write path checks it: a job never carries what the store
 * would refuse, nor a nesting too deep to serialise into the queue (that overflowed the stack).
 */
const itemMetadata = z.record(z.string(), z.unknown()).superRefine((metadata, ctx) => {
  try {
    checkMetadata(metadata, 'metadata');
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message });
  }
});

/**
 * A backup's name in the service's backup directory: a file name, never a path (no separators,
 * no `..`, not hidden), so a job can only read and write there.
 */
export const backupName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, _ . - only (1 to 128, not starting with . _ -)')
  .refine((n) => !n.includes('..'), 'may not contain ".."')
  .refine((n) => !n.includes('.partial-'), 'may not contain ".partial-" (names of backups being written)');

/** The data each job type takes (HTTP bodies and processors check it with these). */
export const JOB_DATA = {
  sync: z.strictObject({
    collection: collection.optional(),
    direction: z.enum(['both', 'hvs-to-nvm', 'nvm-to-hvs']).default('both'),
  }),
  rebuild: z.strictObject({ collection }),
  verify: z.strictObject({
    /** Unset: every collection (the repeatable schedule). */
    collection: collection.optional(),
    repair: z.boolean().default(false),
    limit: z.number().int().min(1).max(LIMITS.itemsPerCall).optional(),
  }),
  reindex: z.strictObject({
    collection,
    m: z.number().int().min(2).max(100).optional(),
    efConstruction: z.number().int().min(4).max(1000).optional(),
  }),
  embed: z.strictObject({
    collection,
    items: z
      .array(
        z.strictObject({
          id: z.string().min(1).max(LIMITS.idLength).optional(),
          text: z.string().max(LIMITS.textChars),
          content: z.string().max(LIMITS.textChars).nullable().optional(),
          metadata: itemMetadata.optional(),
        }),
      )
      .min(1)
      .max(LIMITS.itemsPerCall),
    /** Texts encoded and written per step (default 256). */
    batchSize: z.number().int().min(1).max(10_000).default(256),
  }),
  compact: z.strictObject({ collection: collection.optional() }),
  /** Trains the collection's IVF index in every HVS process (then snapshots it there). */
  index: z.strictObject({
    collection,
    /** Inverted lists (default ≈ 4·√rows). */
    nlist: z
      .number()
      .int()
      .min(1)
      .max(1 << 20)
      .optional(),
    /** Recall@10 the calibrated default nprobe must reach (default 0.95). */
    targetRecall: z.number().gt(0).lt(1).optional(),
  }),
  /** A point-in-time copy of one collection, some, or (unset) every one, as `name` in the backup directory. */
  backup: z.strictObject({
    name: backupName,
    collection: collection.optional(),
    collections: z.array(collection).min(1).max(10_000).optional(),
  }),
  /** Restores the backup `name` into collections that do not exist yet (all in it, or those named). */
  restore: z.strictObject({
    name: backupName,
    collections: z.array(collection).min(1).max(10_000).optional(),
  }),
} as const satisfies Record<JobType, z.ZodType>;

export type JobData<T extends JobType> = z.output<(typeof JOB_DATA)[T]>;

/** Checks a job's data; throws {@link InvalidArgumentError} listing what is wrong. */
export function parseJobData<T extends JobType>(type: T, data: unknown): JobData<T> {
  const r = JOB_DATA[type].safeParse(data);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : type}: ${i.message}`);
    throw new InvalidArgumentError(`${type} job: ${lines.join('; ')}`, { details: { issues: lines } });
  }
  return r.data as JobData<T>;
}

/**
 * What both queues check before a job is added: its type, its data, its attempts and key; returns
 * the job's id (from the key, else random), its parsed data and its attempts.
 */
export function prepareJob(
  type: JobType,
  data: unknown,
  opts: AddJobOptions,
): { id: string; data: Record<string, unknown>; attempts: number } {
  if (!(JOB_TYPES as readonly string[]).includes(type)) {
    throw new InvalidArgumentError(`unknown job type ${JSON.stringify(type)}; one of ${JOB_TYPES.join(', ')}`);
  }
  const parsed = parseJobData(type, data) as Record<string, unknown>;
  const attempts = opts.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100)
    throw new InvalidArgumentError(`attempts must be an integer between 1 and 100, got ${String(attempts)}`);
  checkKey(opts.key);
  return { id: jobId(type, opts.key ?? randomUUID()), data: parsed, attempts };
}
