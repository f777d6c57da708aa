import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { encodersFromConfig, type ConfiguredEncoders } from './encoder/from-config.js';
import { createApp } from './http/app.js';
import { HyperSync } from './integration/hyper-sync.js';
import { optionsFromConfig } from './integration/options.js';
import { serviceJobs, type ServiceJobs } from '../workers/from-config.js';
import type { JobQueue } from './jobs/job-queue.js';
import { VERSION } from './core/version.js';

/** A running service: the HTTP server and the store it serves. */
export class Service {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly server: Server,
    readonly hs: HyperSync,
    readonly log: Logger,
    private readonly encoders: ConfiguredEncoders,
    private readonly jobsSide: ServiceJobs,
  ) {}

  /** Where jobs go: BullMQ with `REDIS_URL`, inline otherwise. */
  get jobs(): JobQueue {
    return this.jobsSide.queue;
  }

  /**
   * Opens both tiers (PostgreSQL when `DATABASE_URL` is set, embedded PGlite otherwise) and listens
   * on `config.port` (0 for an ephemeral port); collections load into the HVS in the background.
   */
  static async start(config: Config, log: Logger = pino({ level: config.logLevel })): Promise<Service> {
    const encoders = await encodersFromConfig(config);
    let hs: HyperSync;
    try {
      hs = await HyperSync.open(optionsFromConfig(config, { log, encoder: encoders.encoder, encoders: encoders.encoders }));
    } catch (err) {
      await encoders.close();
      throw err;
    }
    hs.on('error', (err) => log.error({ err }, 'background failure'));
    const info = hs.hvs.deviceInfo;
    log.info(
      { device: info, nvm: hs.nvm.backend, encoder: encoders.encoder.name },
      'HVS device: %s (%s); NVM: %s; encoder: %s',
      info.device,
      info.reason,
      hs.nvm.backend,
      encoders.encoder.name,
    );
    let jobs: ServiceJobs;
    try {
      jobs = await serviceJobs(config, hs, log);
    } catch (err) {
      await hs.close();
      await encoders.close();
      throw err;
    }
    try {
      const app = createApp({
        hs,
        jobs: jobs.queue,
        log,
        apiKeys: config.apiKeys,
        version: VERSION,
        rateLimit: config.rateLimit,
        probeDetail: config.probeDetail,
      });
      const server = await new Promise<Server>((resolve, reject) => {
        const s = app.listen(config.port, config.host, (err?: Error) => (err ? reject(err) : resolve(s)));
      });
      const svc = new Service(server, hs, log, encoders, jobs);
      log.info({ port: svc.port }, 'hypersync listening on %s:%d', config.host, svc.port);
      return svc;
    } catch (err) {
      await jobs.close();
      await hs.close();
      await encoders.close();
      throw err;
    }
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops accepting, lets in-flight requests finish, then closes every resource; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeIdleConnections();
      });
      // Inline jobs use the store: they finish (or stop) first.
      await this.jobsSide.close();
      await this.hs.close();
      await this.encoders.close();
      this.log.info('hypersync stopped');
    })();
    return this.closing;
  }
}
