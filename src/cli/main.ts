#!/usr/bin/env node
import { Command } from 'commander';
import { resolveDevice } from '../../kernels/device.js';
import { loadConfig } from '../config.js';
import { HyperSyncError } from '../errors.js';
import { Service } from '../service.js';

const program = new Command();
program.name('hypersync').description('GPU-accelerated vector store service').version('0.1.0');

program
  .command('serve')
  .description('run the HTTP service (configured from the environment; see README)')
  .action(async () => {
    const svc = await Service.start(loadConfig());
    const stop = (signal: string): void => {
      svc.log.info({ signal }, 'shutting down');
      svc.close().then(
        () => process.exit(0),
        (err: unknown) => {
          svc.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

program
  .command('device')
  .description('print the compute device HYPERSYNC_DEVICE resolves to, and why')
  .action(async () => {
    const info = await resolveDevice(loadConfig().device);
    process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  });

program.parseAsync().catch((err: unknown) => {
  if (err instanceof HyperSyncError) {
    process.stderr.write(`hypersync: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`hypersync: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
