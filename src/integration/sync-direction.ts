/** Which way {@link HyperSync.sync} moves writes. */
export const SYNC_DIRECTIONS = ['both', 'hvs-to-nvm', 'nvm-to-hvs'] as const;
export type SyncDirection = (typeof SYNC_DIRECTIONS)[number];
