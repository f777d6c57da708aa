import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HyperSync } from '../integration/hyper-sync.js';
import { redisNames } from './bullmq-job-queue.js';
import { handleNodeOp, NODE_NAME } from './node-ops.js';
import type { HvsFleet, NodeOp, NodeReply } from './processor.js';

interface ControlMessage {
  id: string;
  op: NodeOp;
  replyTo: string;
}

/** How long replies wait in Redis for a caller that went away (s). */
const REPLY_TTL_S = 3600;
/** Idle BLPOP connections a fleet keeps (one per op in flight is opened when more are needed). */
const MAX_IDLE_REPLY_CONNECTIONS = 16;

/**
 * The HVS processes as a worker sees them: every serving process subscribed to the control
 * channel. An op is published once; PUBLISH answers how many processes received it, and that many
 * replies are awaited on a list of the op's own.
 */
export class RedisFleet implements HvsFleet {
  private readonly pub: Redis;
  private readonly names: ReturnType<typeof redisNames>;
  /** Connections for BLPOP (which blocks its connection), kept between ops instead of one opened per op. */
  private readonly idle: Redis[] = [];
  private closed = false;

  constructor(
    redisUrl: string,
    private readonly prefix = 'hypersync',
  ) {
    this.names = redisNames(prefix);
    this.pub = new Redis(redisUrl, { maxRetriesPerRequest: null });
    this.pub.on('error', () => undefined);
  }

  async run(op: NodeOp, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<NodeReply[]> {
    const id = randomUUID();
    const replyTo = `${this.prefix}:reply:${id}`;
    const msg: ControlMessage = { id, op, replyTo };
    const receivers = await this.pub.publish(this.names.controlChannel, JSON.stringify(msg));
    const replies: NodeReply[] = [];
    if (receivers === 0) return replies;
    const conn = this.takeBlocking();
    let reusable = false;
    try {
      const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
      while (replies.length < receivers) {
        opts.signal?.throwIfAborted();
        const left = deadline - Date.now();
        if (left <= 0) break;
        const r = await conn.blpop(replyTo, Math.min(1, left / 1000));
        if (r) replies.push(JSON.parse(r[1]) as NodeReply);
      }
      // Only a connection whose last command finished cleanly goes back to the pool.
      reusable = true;
    } finally {
      this.giveBack(conn, reusable);
      await this.pub.del(replyTo).catch(() => undefined);
    }
    for (let i = replies.length; i < receivers; i++) {
      replies.push({ node: 'unknown', ok: false, error: `no answer to ${op.op} within the timeout` });
    }
    return replies;
  }

  private takeBlocking(): Redis {
    const conn = this.idle.pop();
    if (conn) return conn;
    const fresh = this.pub.duplicate();
    fresh.on('error', () => undefined);
    return fresh;
  }

  private giveBack(conn: Redis, reusable: boolean): void {
    if (reusable && !this.closed && this.idle.length < MAX_IDLE_REPLY_CONNECTIONS && conn.status === 'ready') {
      this.idle.push(conn);
    } else {
      conn.disconnect();
    }
  }

  close(): Promise<void> {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.disconnect();
    this.pub.disconnect();
    return Promise.resolve();
  }
}

/**
 * The serving side of the control channel: runs the ops jobs ask of this HVS process and
 * replies. ioredis re-subscribes by itself after Redis comes back.
 */
export class NodeListener {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly sub: Redis,
    private readonly pub: Redis,
    private readonly inFlight: Set<Promise<void>>,
  ) {}

  static async start(hs: HyperSync, redisUrl: string, prefix: string, log: Logger): Promise<NodeListener> {
    const names = redisNames(prefix);
    const sub = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const pub = new Redis(redisUrl, { maxRetriesPerRequest: null });
    for (const c of [sub, pub]) c.on('error', (err: Error) => log.debug({ err: err.message }, 'control channel: Redis error'));
    const inFlight = new Set<Promise<void>>();
    sub.on('message', (_channel: string, raw: string) => {
      let msg: ControlMessage;
      try {
        msg = JSON.parse(raw) as ControlMessage;
      } catch {
        return;
      }
      const work = (async () => {
        let reply: NodeReply;
        try {
          reply = { node: NODE_NAME, ok: true, result: await handleNodeOp(hs, msg.op) };
        } catch (err) {
          log.warn({ op: msg.op.op, err: (err as Error).message }, 'control op failed');
          reply = { node: NODE_NAME, ok: false, error: (err as Error).message };
        }
        await pub.multi().rpush(msg.replyTo, JSON.stringify(reply)).expire(msg.replyTo, REPLY_TTL_S).exec();
      })()
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'control reply failed'))
        .finally(() => inFlight.delete(work));
      inFlight.add(work);
    });
    await sub.subscribe(names.controlChannel);
    return new NodeListener(sub, pub, inFlight);
  }

  /** Stops taking ops; lets the ones running reply; safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.sub.disconnect();
      await Promise.allSettled([...this.inFlight]);
      this.pub.disconnect();
    })();
    return this.closing;
  }
}
