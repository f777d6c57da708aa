/**
 * Where a live id's row is: the segment id and the row packed into one number,
 * `segment * 2^24 + row` (exact below 2^53), so the id map holds plain numbers.
 */
export const ROW_BITS = 2 ** 24;

export const loc = (segment: number, row: number): number => segment * ROW_BITS + row;
export const locSegment = (l: number): number => Math.floor(l / ROW_BITS);
export const locRow = (l: number): number => l % ROW_BITS;
