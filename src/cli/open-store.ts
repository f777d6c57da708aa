import type { Config } from '../config.js';
import { StoreLockedError } from '../core/errors.js';
import { encodersFromConfig } from '../encoder/from-config.js';
import { HyperSync } from '../integration/hyper-sync.js';
import { optionsFromConfig } from '../integration/options.js';
import type { CliStore } from './cli-store.js';
import { LocalStore } from './local-store.js';
import { RemoteApi, type ServerAddress } from './remote-api.js';
import { RemoteStore } from './remote-store.js';
import { readServeFile } from './serve-file.js';

/**
 * The running service the CLI talks to instead of opening the store: `HYPERSYNC_URL`, else the
 * live `hypersync serve` that holds the embedded database of the data directory (its serve file).
 * With `DATABASE_URL` the CLI opens the store itself: PostgreSQL takes many processes.
 */
export async function findServer(config: Config): Promise<ServerAddress | undefined> {
  const key = config.clientApiKey !== undefined ? { apiKey: config.clientApiKey } : {};
  if (config.serverUrl !== undefined) return { url: config.serverUrl, from: 'HYPERSYNC_URL', ...key };
  if (config.databaseUrl !== undefined) return undefined;
  const found = await readServeFile(config.dataDir);
  if (found?.nvm !== 'pglite') return undefined;
  return { url: found.url, from: `found in ${found.path}, process ${found.pid}`, ...key };
}

/**
 * Runs `fn` on a HyperSync opened from the environment (as `serve` would), closed afterwards.
 * `command` runs in process only: with a server to talk to, it is refused with what to do instead.
 */
export async function withStore<T>(config: Config, command: string, fn: (hs: HyperSync) => Promise<T>): Promise<T> {
  const server = await findServer(config);
  if (server !== undefined) {
    throw new StoreLockedError(
      `\`hypersync ${command}\` runs in process only, and the server at ${server.url} (${server.from}) serves this store: ` +
        'ask the server (its job API, POST /v1/collections/:c/jobs) or stop it first' +
        (server.from === 'HYPERSYNC_URL' ? ', or unset HYPERSYNC_URL' : ''),
    );
  }
  return withStoreUnchecked(config, fn);
}

/**
 * Runs `fn` on the store: over HTTP when a server is running ({@link findServer}; a note on stderr
 * says which), else opened in this process.
 */
export async function withData<T>(config: Config, fn: (store: CliStore) => Promise<T>): Promise<T> {
  const server = await findServer(config);
  if (server === undefined) return withStoreUnchecked(config, (hs) => fn(new LocalStore(hs)));
  const store = new RemoteStore(await RemoteApi.connect(server));
  process.stderr.write(`hypersync: talking to ${store.where}\n`);
  return fn(store);
}

async function withStoreUnchecked<T>(config: Config, fn: (hs: HyperSync) => Promise<T>): Promise<T> {
  const encoders = await encodersFromConfig(config);
  try {
    const hs = await HyperSync.open(optionsFromConfig(config, { encoder: encoders.encoder, encoders: encoders.encoders }));
    try {
      return await fn(hs);
    } finally {
      await hs.close();
    }
  } finally {
    await encoders.close();
  }
}
