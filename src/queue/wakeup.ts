/**
 * "A job became due" hints that let idle workers skip the rest of their poll interval: in this process
 * through an in-memory signal, on other nodes through PostgreSQL `NOTIFY mairust_queue, '<queue>'`
 * received on one `LISTEN` connection per database pool.
 *
 * A hint is never needed for correctness: a lost one costs at most one poll interval. The payload is
 * the queue name; `null` means "any queue" (sent after the listener reconnected and may have missed
 * hints).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type pg from 'pg';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/db/database.js';
import type { DB } from '../store/db/types.js';
import { errorText } from './errors.js';

/** PostgreSQL channel for "a job became due" hints; the payload is the queue name. */
export const NOTIFY_CHANNEL = 'mairust_queue';
/** Shown in pg_stat_activity, so operators (and tests) can find the listening connection. */
export const LISTENER_APPLICATION_NAME = 'mairust-queue-listener';

export type DueListener = (queue: string | null) => void;

/**
 * In-process wake-ups, shared by every DatabaseQueue over the same Database object (several queue
 * instances in one process, e.g. tests or a CLI enqueue next to a worker).
 */
const localBuses = new WeakMap<Database, EventEmitter>();

function localBus(db: Database): EventEmitter {
  let bus = localBuses.get(db);
  if (!bus) {
    bus = new EventEmitter();
    bus.setMaxListeners(0);
    localBuses.set(db, bus);
  }
  return bus;
}

export function onDue(db: Database, listener: DueListener): void {
  localBus(db).on('due', listener);
}

export function offDue(db: Database, listener: DueListener): void {
  localBus(db).off('due', listener);
}

/** Wakes this process's workers for `queue` (every worker for `null`). */
export function emitDue(db: Database, queue: string | null): void {
  localBus(db).emit('due', queue);
}

/**
 * Wakes idle workers for `queue` here and, on PostgreSQL, on other nodes, for a change that is already
 * committed. Best effort: a failed NOTIFY is logged and the job is found at the next poll.
 */
export async function announce(db: Database, queue: string, log: Logger | undefined): Promise<void> {
  emitDue(db, queue);
  if (db.dialect !== 'postgres') return;
  try {
    await sql`SELECT pg_notify(${NOTIFY_CHANNEL}, ${queue})`.execute(db.kysely);
  } catch (err) {
    log?.warn({ queue, err: errorText(err) }, 'queue NOTIFY failed; workers will find the job at their next poll');
  }
}

/**
 * PostgreSQL only (a no-op on SQLite): queues the NOTIFY inside the caller's transaction. PostgreSQL
 * delivers it when that transaction commits and drops it when it rolls back (NOTIFY docs: "if a
 * NOTIFY is executed inside a transaction, the notify events are not delivered until and unless the
 * transaction is committed"), so no worker is woken for a job that is not there yet — or never will
 * be. Every listening node, this one included, gets it through its LISTEN connection.
 *
 * Unlike `announce` a failure is not swallowed: a failed statement has already aborted the caller's
 * PostgreSQL transaction, so hiding it would only move the error to the caller's next statement.
 */
export async function notifyInTransaction(db: Database, trx: Kysely<DB>, queue: string): Promise<void> {
  if (db.dialect !== 'postgres') return;
  await sql`SELECT pg_notify(${NOTIFY_CHANNEL}, ${queue})`.execute(trx);
}

type ListenerClient = pg.PoolClient & { mairustReleased?: boolean };

/** Returns a broken or unneeded connection for destruction, once (pg throws on a second release). */
function destroyClient(client: ListenerClient): boolean {
  if (client.mairustReleased) return false;
  client.mairustReleased = true;
  client.release(true); // `true` destroys it: a LISTEN connection must not go back to the pool
  return true;
}

/**
 * A dedicated PostgreSQL connection that LISTENs for due-job hints from other nodes and passes them to
 * the in-process bus. If it drops (server restart, network), workers keep polling and the listener
 * reconnects with a growing pause.
 */
class PgWakeListener {
  private client: ListenerClient | null = null;
  private closed = false;
  private retryMs = 250;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly onWake: DueListener,
    private readonly log: Logger | undefined,
  ) {}

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    this.timer = null;
    if (this.closed) return;
    let client: ListenerClient | null = null;
    try {
      client = await this.pool.connect();
      const c = client;
      c.on('error', (err) => this.drop(c, err));
      c.on('end', () => this.drop(c, new Error('connection ended')));
      c.on('notification', (msg) => {
        if (msg.channel === NOTIFY_CHANNEL) this.onWake(msg.payload ?? null);
      });
      await c.query(`SET application_name = '${LISTENER_APPLICATION_NAME}'`);
      await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
      if (this.closed) {
        destroyClient(c);
        return;
      }
      this.client = c;
      this.retryMs = 250;
      // Hints sent while we were disconnected are lost: look once now instead of waiting a poll.
      this.onWake(null);
    } catch (err) {
      if (client) this.drop(client, err);
      else this.scheduleReconnect(err);
    }
  }

  private drop(client: ListenerClient, err: unknown): void {
    if (this.client === client) this.client = null;
    if (destroyClient(client)) this.scheduleReconnect(err);
  }

  private scheduleReconnect(err: unknown): void {
    if (this.closed || this.timer) return;
    this.log?.warn({ err: errorText(err), retryMs: this.retryMs }, 'queue listener lost its PostgreSQL connection; polling until it reconnects');
    this.timer = setTimeout(() => void this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 10_000);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const c = this.client;
    this.client = null;
    if (c) destroyClient(c);
  }
}

/**
 * One LISTEN connection per Database (pool), however many queue instances use it: each would
 * otherwise hold a pool connection for good. Reference-counted by the queues that run workers.
 */
const pgListeners = new WeakMap<Database, { refs: number; listener: PgWakeListener }>();

/** Starts (or shares) the LISTEN connection for `db`; a no-op on SQLite. Pair with `releasePgListener`. */
export function acquirePgListener(db: Database, log: Logger | undefined): void {
  if (db.dialect !== 'postgres' || !db.pgPool) return;
  let shared = pgListeners.get(db);
  if (!shared) {
    shared = { refs: 0, listener: new PgWakeListener(db.pgPool, (queue) => emitDue(db, queue), log) };
    pgListeners.set(db, shared);
    shared.listener.start();
  }
  shared.refs++;
}

export function releasePgListener(db: Database): void {
  const shared = pgListeners.get(db);
  if (!shared) return;
  if (--shared.refs > 0) return;
  pgListeners.delete(db);
  shared.listener.close();
}
