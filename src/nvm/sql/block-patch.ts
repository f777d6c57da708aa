import { assertCollectionName } from '../../core/collection-name.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { checkMetadata } from '../../core/filter.js';
import { assertId } from '../../core/ids.js';
import { LIMITS } from '../../core/limits.js';
import type { BlockPatch } from '../nvm-store.js';
import type { SqlExecutor } from '../sql-driver.js';

/** A patch checked in full, ready for {@link patchInTx}. */
export interface PreparedPatch {
  collection: string;
  id: string;
  /** The new metadata as JSON text, or null to keep it. */
  metadata: string | null;
  setContent: boolean;
  content: string | null;
}

/** Checks a patch before any of it reaches the database. */
export function preparePatch(collection: string, id: string, patch: BlockPatch): PreparedPatch {
  assertCollectionName(collection);
  assertId(id, 'id');
  if (typeof patch !== 'object' || patch === null) throw new InvalidArgumentError('patch must be an object');
  const { metadata, content } = patch;
  if (metadata === undefined && content === undefined) throw new InvalidArgumentError('patch: give metadata, content or both');
  if (content !== undefined && content !== null) {
    if (typeof content !== 'string') throw new InvalidArgumentError('patch.content must be a string or null');
    if (content.length > LIMITS.textChars) {
      throw new InvalidArgumentError(`patch.content holds at most ${LIMITS.textChars} characters`);
    }
    if (content.includes('\u0000')) throw new InvalidArgumentError('patch.content may not contain NUL characters');
  }
  return {
    collection,
    id,
    metadata: metadata === undefined ? null : JSON.stringify(checkMetadata(metadata, 'patch.metadata')),
    setContent: content !== undefined,
    content: content ?? null,
  };
}

/**
 * The SQL of a patch, inside a transaction that holds the write lock and the collection's row:
 * the block row only (its vectors stay), with the next version and a fresh lsn, logged as an
 * `upsert`. Undefined when the block does not exist.
 */
export async function patchInTx(tx: SqlExecutor, p: PreparedPatch): Promise<{ version: number; lsn: number } | undefined> {
  const { rows } = await tx.query<{ version: string; lsn: string }>(
    `WITH up AS (
       UPDATE hs_blocks SET
         metadata = coalesce($3::jsonb, metadata),
         content = CASE WHEN $4::boolean THEN $5::text ELSE content END,
         version = version + 1,
         lsn = nextval('hs_changes_lsn_seq')
        WHERE collection = $1 AND id = $2
       RETURNING id, version, lsn),
     logged AS (
       INSERT INTO hs_changes (lsn, collection, block_id, op, version)
       SELECT lsn, $1, id, 'upsert', version FROM up)
     SELECT version, lsn FROM up`,
    [p.collection, p.id, p.metadata, p.setContent, p.content],
  );
  if (rows.length === 0) return undefined;
  return { version: Number(rows[0].version), lsn: Number(rows[0].lsn) };
}
