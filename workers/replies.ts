import type { NodeReply } from '../src/jobs/processor.js';

/** Throws (so the job is retried) when an HVS process answered with an error. */
export function requireReplies(what: string, nodes: readonly NodeReply[]): void {
  const failed = nodes.filter((n) => !n.ok);
  if (failed.length > 0) {
    throw new Error(
      `${what} failed on ${failed.length} of ${nodes.length} HVS processes: ${failed.map((n) => `${n.node}: ${n.error}`).join('; ')}`,
    );
  }
}
