/**
 * Connection reuse and the per-destination concurrency limit of outbound delivery (SPEC §3.3).
 *
 * A destination is one (address, port, host, TLS mode, certificate check, AUTH user, EHLO name):
 * a connection opened for it is only ever used for sends with the same key, so a connection set up
 * without certificate checks or with another login never carries a send that needs something else.
 * - At most `maxPerDestination()` sends run at once per destination; the rest wait in FIFO order.
 *   Every running send holds exactly one connection and idle ones are taken before opening another,
 *   so the connections open to a destination never exceed the limit either.
 * - After a clean transaction the connection stays open for `idleMs()`; the next send to the same
 *   destination sends RSET (RFC 5321 §4.1.1.5) and reuses it. If RSET fails or the server has hung
 *   up meanwhile, a fresh connection is opened and the send does not suffer for it.
 * - `close()` sends QUIT on every idle connection; running sends QUIT when they finish.
 * The settings are read at each use, so a config reload applies without rebuilding the pool.
 */
import type { Logger } from 'pino';
import type { ClientSendInput, ClientSendResult, SmtpClientPool } from '../../../outbound/types.js';
import { connectionKey, failedBeforeTransaction, SmtpClientConnection } from './session.js';
import { Transcript } from './transcript.js';

export interface SmtpClientPoolOptions {
  /** How long a connection may stay unused before QUIT (`connection_idle_seconds`), in ms; 0 = no reuse. */
  idleMs: () => number;
  /** Concurrent connections per destination. */
  maxPerDestination: () => number;
  logger: Logger;
}

interface IdleConnection {
  conn: SmtpClientConnection;
  timer: NodeJS.Timeout;
}

interface Destination {
  active: number;
  idle: IdleConnection[];
  waiting: (() => void)[];
}

export function createSmtpClientPool(opts: SmtpClientPoolOptions): SmtpClientPool {
  const destinations = new Map<string, Destination>();
  const closing = new Set<Promise<void>>();
  let closed = false;
  const log = opts.logger.child({ component: 'smtp-client' });

  const destination = (key: string): Destination => {
    let d = destinations.get(key);
    if (!d) {
      d = { active: 0, idle: [], waiting: [] };
      destinations.set(key, d);
    }
    return d;
  };

  const forget = (key: string, d: Destination) => {
    if (d.active === 0 && d.idle.length === 0 && d.waiting.length === 0) destinations.delete(key);
  };

  const quit = (conn: SmtpClientConnection) => {
    const p = conn.close().finally(() => closing.delete(p));
    closing.add(p);
  };

  /** Waits for a free slot (FIFO); resolves false when the send was aborted while waiting. */
  const acquire = async (d: Destination, signal: AbortSignal | undefined): Promise<boolean> => {
    const max = Math.max(1, Math.floor(opts.maxPerDestination()));
    if (d.active < max && d.waiting.length === 0) {
      d.active++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const onAbort = () => {
        const i = d.waiting.indexOf(grant);
        if (i >= 0) d.waiting.splice(i, 1);
        resolve(false);
      };
      // The releasing send hands its slot over: `active` stays as it is.
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      };
      if (signal?.aborted) return resolve(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      d.waiting.push(grant);
    });
  };

  const release = (key: string, d: Destination) => {
    const max = Math.max(1, Math.floor(opts.maxPerDestination()));
    // A lowered limit (reload) takes effect as running sends finish.
    if (d.active <= max) {
      const next = d.waiting.shift();
      if (next) return next();
    }
    d.active--;
    forget(key, d);
  };

  /** An idle connection that answers RSET, or null. */
  const takeIdle = async (d: Destination, transcript: Transcript): Promise<SmtpClientConnection | null> => {
    for (;;) {
      // Most recently used first: the least likely to have been timed out by the server.
      const entry = d.idle.pop();
      if (!entry) return null;
      clearTimeout(entry.timer);
      entry.conn.onGone = null;
      transcript.note(`reusing an open connection (transaction ${entry.conn.transactions + 1} on it)`);
      if (await entry.conn.reset(transcript)) return entry.conn;
      transcript.note('the open connection failed RSET; opening a new one');
      entry.conn.destroy();
    }
  };

  const park = (key: string, d: Destination, conn: SmtpClientConnection) => {
    const idleMs = opts.idleMs();
    if (closed || idleMs <= 0 || !conn.reusable) return quit(conn);
    const entry: IdleConnection = {
      conn,
      timer: setTimeout(() => {
        remove();
        log.debug({ destination: key }, 'closing idle SMTP connection');
        quit(conn);
      }, idleMs),
    };
    entry.timer.unref();
    const remove = () => {
      clearTimeout(entry.timer);
      const i = d.idle.indexOf(entry);
      if (i >= 0) d.idle.splice(i, 1);
      forget(key, d);
    };
    conn.idle = true;
    conn.onGone = remove;
    d.idle.push(entry);
  };

  return {
    async send(input: ClientSendInput): Promise<ClientSendResult> {
      const transcript = new Transcript();
      if (closed) return failedBeforeTransaction(input, new Error('the SMTP client pool is closed'), transcript);
      const key = connectionKey(input);
      const d = destination(key);
      if (!(await acquire(d, input.signal))) {
        forget(key, d);
        return failedBeforeTransaction(input, new Error('aborted while waiting for a connection'), transcript);
      }
      try {
        let conn = await takeIdle(d, transcript);
        if (!conn) {
          try {
            conn = await SmtpClientConnection.open(input, transcript);
            log.debug({ host: input.host, address: input.address, port: input.port }, 'opened SMTP connection');
          } catch (err) {
            return failedBeforeTransaction(input, err, transcript);
          }
        }
        const result = await conn.transaction(input, transcript);
        result.transcript = transcript.lines();
        park(key, d, conn);
        return result;
      } finally {
        release(key, d);
      }
    },

    async close(): Promise<void> {
      closed = true;
      for (const [key, d] of destinations) {
        for (const entry of d.idle.splice(0)) {
          clearTimeout(entry.timer);
          entry.conn.onGone = null;
          quit(entry.conn);
        }
        forget(key, d);
      }
      await Promise.all([...closing]);
    },
  };
}
