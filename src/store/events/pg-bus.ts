/**
 * `ChangeBus` over PostgreSQL LISTEN/NOTIFY (cluster shape, SPEC §3.4).
 *
 * - publish: local subscribers get the event at once (asynchronously, see memory-bus.ts), then
 *   `SELECT pg_notify(channel, payload)` tells every other node. NOTIFY payloads must be shorter
 *   than 8000 bytes (PostgreSQL docs, NOTIFY), so oversized events are refused with a clear error.
 * - One dedicated connection per node LISTENs. PostgreSQL also delivers a node's own NOTIFY back to
 *   it; that echo is dropped by its envelope (`origin` = node id, `seq` = boot tag + counter), so
 *   local subscribers see each event exactly once.
 * - LISTEN/NOTIFY is not durable: when the listener connection drops, notifications sent meanwhile
 *   are lost. The bus reconnects with backoff and then sends every subscriber a synthetic `resync`
 *   event, so IMAP IDLE sessions re-read "changes since MODSEQ" instead of silently missing changes.
 *
 * The listener is a separate `pg.Client` built from the pool's settings (not a pooled client), so
 * it never shrinks the pool and its LISTEN state can never leak into a pooled connection.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { ChangeBus, ChangeEvent, ChangeHandler } from './change-bus.js';
import {
  ChangeBusClosedError,
  ChangeEventTooLargeError,
  LocalSubscribers,
  resyncEvent,
  validateChangeEvent,
  type BusLogger,
  type ChangeFilter,
} from './memory-bus.js';

export const DEFAULT_CHANGE_CHANNEL = 'mairust_changes';

/** PostgreSQL: "the payload string must be shorter than 8000 bytes" (default configuration). */
export const MAX_NOTIFY_PAYLOAD_BYTES = 7999;

const DEFAULT_RECONNECT_DELAYS_MS = [100, 250, 500, 1000, 2000, 5000];
const DEFAULT_HEALTH_CHECK_MS = 30_000;
const HEALTH_CHECK_TIMEOUT_MS = 10_000;
// An unquoted identifier that needs no escaping, within NAMEDATALEN (63 bytes).
const CHANNEL_RE = /^[a-z_][a-z0-9_]{0,62}$/;
const MAX_NODE_ID_LENGTH = 128;

export interface PgChangeBusOptions {
  nodeId: string;
  /** NOTIFY channel; every node of one cluster must use the same. */
  channel?: string;
  logger?: BusLogger;
  /** Waits between reconnect attempts; the last one repeats (±20 % jitter). */
  reconnectDelaysMs?: number[];
  /** How often the listener is probed, so a silently dead TCP connection is noticed. 0 = never. */
  healthCheckIntervalMs?: number;
  maxSubscribers?: number;
}

/** What travels in a NOTIFY payload. */
interface Envelope {
  v: 1;
  /** Node id of the publisher. */
  o: string;
  /** Sequence id: the publisher's boot tag + counter; identifies this node's own echoes. */
  s: string;
  e: ChangeEvent;
}

export class PgChangeBus implements ChangeBus {
  readonly kind = 'postgres' as const;
  private readonly channel: string;
  private readonly nodeId: string;
  private readonly logger?: BusLogger;
  private readonly subscribers: LocalSubscribers;
  private readonly reconnectDelays: number[];
  private readonly healthCheckMs: number;
  /** Random per instance: a restarted node (same node id) never mistakes old sequence ids for its own. */
  private readonly bootTag = randomBytes(6).toString('hex');
  private seq = 0;
  private listener: pg.Client | null = null;
  private started = false;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private healthTimer: NodeJS.Timeout | null = null;
  private warnedDuplicateNodeId = false;

  constructor(
    private readonly pool: pg.Pool,
    opts: PgChangeBusOptions,
  ) {
    if (!opts.nodeId || opts.nodeId.length > MAX_NODE_ID_LENGTH) {
      throw new Error(`PgChangeBus: nodeId must be 1..${MAX_NODE_ID_LENGTH} characters`);
    }
    const channel = opts.channel ?? DEFAULT_CHANGE_CHANNEL;
    if (!CHANNEL_RE.test(channel)) throw new Error(`PgChangeBus: channel ${JSON.stringify(channel)} must match ${CHANNEL_RE}`);
    const delays = opts.reconnectDelaysMs ?? DEFAULT_RECONNECT_DELAYS_MS;
    if (delays.length === 0 || delays.some((d) => !(d >= 0))) throw new Error('PgChangeBus: reconnectDelaysMs must be non-negative numbers');
    this.channel = channel;
    this.nodeId = opts.nodeId;
    this.logger = opts.logger;
    this.reconnectDelays = delays;
    this.healthCheckMs = opts.healthCheckIntervalMs ?? DEFAULT_HEALTH_CHECK_MS;
    this.subscribers = new LocalSubscribers(opts.logger, opts.maxSubscribers);
  }

  /** True while the LISTEN connection is up (for health output). */
  get listening(): boolean {
    return this.listener !== null;
  }

  /** The application_name of the listener connection, so operators can find it in pg_stat_activity. */
  get applicationName(): string {
    return `mairust-changes:${this.nodeId}`.slice(0, 63);
  }

  /** Opens the LISTEN connection; rejects when PostgreSQL cannot be reached. Idempotent. */
  async start(): Promise<void> {
    if (this.closed) throw new ChangeBusClosedError();
    if (this.started) return;
    this.started = true;
    try {
      await this.connectListener();
    } catch (err) {
      this.started = false;
      throw new Error(`change bus: cannot LISTEN on PostgreSQL channel ${this.channel}: ${(err as Error).message}`, { cause: err });
    }
    if (this.healthCheckMs > 0) {
      this.healthTimer = setInterval(() => void this.probeListener(), this.healthCheckMs);
      this.healthTimer.unref();
    }
  }

  async publish(event: ChangeEvent): Promise<void> {
    if (this.closed) throw new ChangeBusClosedError();
    validateChangeEvent(event);
    const stamped: ChangeEvent = event.origin ? event : { ...event, origin: this.nodeId };
    const envelope: Envelope = { v: 1, o: this.nodeId, s: `${this.bootTag}-${++this.seq}`, e: stamped };
    const payload = JSON.stringify(envelope);
    const bytes = Buffer.byteLength(payload, 'utf8');
    if (bytes > MAX_NOTIFY_PAYLOAD_BYTES) throw new ChangeEventTooLargeError(bytes, MAX_NOTIFY_PAYLOAD_BYTES);
    // Local sessions first: they must not wait for (or lose the event to) a database round trip.
    this.subscribers.deliver(stamped);
    // Rejects when PostgreSQL is unreachable: other nodes then miss this change, and the caller
    // (which has already committed) decides whether to log or retry.
    await this.pool.query('SELECT pg_notify($1, $2)', [this.channel, payload]);
  }

  subscribe(handler: ChangeHandler, filter?: ChangeFilter): () => void {
    if (this.closed) throw new ChangeBusClosedError();
    return this.subscribers.add(handler, filter);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.reconnectTimer = this.healthTimer = null;
    const l = this.listener;
    this.listener = null;
    this.subscribers.clear();
    if (l) await l.end().catch(() => {});
  }

  private async connectListener(): Promise<void> {
    const base = this.pool.options;
    const client = new pg.Client({
      ...base,
      // pg-pool keeps the password as a non-enumerable property, so the spread above drops it.
      password: base.password,
      application_name: this.applicationName,
      keepAlive: true,
    });
    client.on('notification', (msg) => {
      if (client === this.listener && msg.channel === this.channel) this.onNotification(msg.payload);
    });
    client.on('error', (err) => this.onListenerLost(client, err));
    client.on('end', () => this.onListenerLost(client, null));
    try {
      await client.connect();
      // The channel is validated against CHANNEL_RE, so it is a plain identifier needing no quoting.
      await client.query(`LISTEN ${this.channel}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.listener = client;
  }

  private onNotification(payload: string | undefined): void {
    let env: Envelope;
    try {
      env = JSON.parse(payload ?? '') as Envelope;
      if (env?.v !== 1 || typeof env.o !== 'string' || typeof env.s !== 'string') throw new Error('bad envelope');
      validateChangeEvent(env.e);
    } catch (err) {
      this.logger?.warn({ component: 'change-bus', err, bytes: payload?.length ?? 0 }, 'ignoring malformed change notification');
      return;
    }
    if (env.o === this.nodeId) {
      // Our own echo: local subscribers already had it at publish time.
      if (env.s.startsWith(`${this.bootTag}-`)) return;
      // Same node id, different process: a configuration error worth one warning; deliver anyway.
      if (!this.warnedDuplicateNodeId) {
        this.warnedDuplicateNodeId = true;
        this.logger?.warn({ component: 'change-bus', node_id: this.nodeId }, 'another process publishes with this node id; server.node_id must be unique per node');
      }
    }
    this.subscribers.deliver(env.e);
  }

  private onListenerLost(client: pg.Client, err: Error | null): void {
    if (client !== this.listener || this.closed) return;
    this.listener = null;
    this.logger?.warn({ component: 'change-bus', err: err ?? undefined, channel: this.channel }, 'change listener connection lost; reconnecting');
    client.end().catch(() => {});
    this.scheduleReconnect(0);
  }

  private scheduleReconnect(attempt: number): void {
    if (this.closed) return;
    const base = this.reconnectDelays[Math.min(attempt, this.reconnectDelays.length - 1)];
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connectListener().then(
        () => {
          if (this.closed) return;
          this.logger?.info({ component: 'change-bus', attempts: attempt + 1 }, 'change listener reconnected');
          // Notifications sent while we were away are gone: tell every session to re-read.
          this.subscribers.deliver(resyncEvent(this.nodeId));
        },
        (err) => {
          this.logger?.warn({ component: 'change-bus', err, attempt: attempt + 1 }, 'change listener reconnect failed');
          this.scheduleReconnect(attempt + 1);
        },
      );
    }, delay);
    // The bus alone must not keep a process (e.g. a CLI command) alive.
    this.reconnectTimer.unref();
  }

  private async probeListener(): Promise<void> {
    const client = this.listener;
    if (!client) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.query('SELECT 1'),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`listener did not answer within ${HEALTH_CHECK_TIMEOUT_MS} ms`)), HEALTH_CHECK_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      this.onListenerLost(client, err as Error);
    } finally {
      clearTimeout(timer);
    }
  }
}
