import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { createApp } from './http/app.js';
import { Hvs } from './hvs/hvs.js';

/** A running service: the HTTP server and what it serves. */
export class Service {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly server: Server,
    readonly hvs: Hvs,
    readonly log: Logger,
  ) {}

  /** Opens the tiers and listens on `config.port` (0 for an ephemeral port). */
  static async start(config: Config, log: Logger = pino({ level: config.logLevel })): Promise<Service> {
    const hvs = await Hvs.open({ dataDir: config.dataDir, device: config.device });
    log.info({ device: hvs.deviceInfo }, 'HVS device: %s (%s)', hvs.deviceInfo.device, hvs.deviceInfo.reason);
    const app = createApp({ hvs, log, ready: () => true });
    const server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(config.port, config.host, (err?: Error) => (err ? reject(err) : resolve(s)));
    });
    const svc = new Service(server, hvs, log);
    log.info({ port: svc.port }, 'hypersync listening on %s:%d', config.host, svc.port);
    return svc;
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
      await this.hvs.close();
      this.log.info('hypersync stopped');
    })();
    return this.closing;
  }
}
