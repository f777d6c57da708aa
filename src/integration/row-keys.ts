/**
 * A block's chunk vectors are HVS rows keyed `id` (chunk 0) and `id␀chunk` (the rest). NUL cannot
 * occur in a block id, which PostgreSQL stores as text, so keys never collide.
 */
const SEP = '\u0000';

export function rowKey(id: string, chunk: number): string {
  return chunk === 0 ? id : `${id}${SEP}${chunk}`;
}

/** The block id of a row key. */
export function blockIdOf(key: string): string {
  const i = key.indexOf(SEP);
  return i < 0 ? key : key.slice(0, i);
}

/** The chunk number of a row key. */
export function chunkOf(key: string): number {
  const i = key.indexOf(SEP);
  return i < 0 ? 0 : Number(key.slice(i + 1));
}
