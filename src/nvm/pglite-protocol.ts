/** Messages between {@link PgliteDriver} and its database thread (`pglite-worker.ts`). */

/** A request; `tx` names an open transaction (from `begin`), none: a statement of its own. */
export type PgliteRequest = { id: number } & (
  | { op: 'query'; tx?: number; text: string; params: readonly unknown[] }
  | { op: 'exec'; tx?: number; script: string }
  | { op: 'copy'; tx: number; target: string; payload: Uint8Array }
  | { op: 'begin'; begin?: string }
  | { op: 'end'; tx: number; commit: boolean; notify?: string }
  | { op: 'listen'; listenId: number; channel: string }
  | { op: 'unlisten'; listenId: number }
  | { op: 'close' }
);

/** A database error's fields that callers look at (SQLSTATE `code`, `constraint`, …). */
export interface SerializedDbError {
  message: string;
  name: string;
  code?: string;
  detail?: string;
  hint?: string;
  constraint?: string;
  table?: string;
  column?: string;
  schema?: string;
  severity?: string;
}

/** The answer to request `id` (0: the database opened), or a notification (`id` −1). */
export type PgliteReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: SerializedDbError }
  | { id: -1; notify: { listenId: number; payload: string } };
