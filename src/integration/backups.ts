import { type BackupOptions, type BackupResult, writeBackup } from './backup.js';
import type { CollectionRegistry } from './collection-registry.js';
import { restoreBackup, type RestoreOptions, type RestoreResult } from './restore.js';
import type { SyncManager } from './sync-manager.js';
import type { Tiers } from './tiers.js';

export type { BackupOptions, BackupResult, RestoreOptions, RestoreResult };

/** Backups and restores of a serving process: {@link writeBackup} and {@link restoreBackup} with both tiers in step. */
export class Backups {
  constructor(
    private readonly tiers: Tiers,
    private readonly registry: CollectionRegistry,
    private readonly syncer: SyncManager,
  ) {}

  /** WAL-only writes are persisted first, so every write acknowledged before the call is in the copy. */
  async backup(file: string, opts: BackupOptions = {}): Promise<BackupResult> {
    await this.syncer.persistWal();
    return writeBackup(this.tiers.nvm, file, opts);
  }

  /** Restores into the NVM, then resolves once the HVS serves every collection restored, caught up. */
  async restore(file: string, opts: RestoreOptions = {}): Promise<RestoreResult> {
    const { nvm } = this.tiers;
    const r = await restoreBackup(nvm, file, opts, {
      // The change-log tail may have taken a collection up meanwhile: drop it from both tiers then.
      drop: (name) => (this.registry.all.has(name) ? this.registry.drop(name) : nvm.dropCollection(name)),
    });
    for (const c of r.collections) await this.registry.ready(c.name);
    await this.syncer.catchUp();
    return r;
  }
}
