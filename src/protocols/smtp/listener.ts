/**
 * One SMTP listener: inbound MX (port 25, STARTTLS offered, no AUTH) or submission (587 with
 * STARTTLS, 465 with implicit TLS; AUTH required, offered only under TLS) — SPEC §3.1, §3.2, §5.1.
 *
 * The listener owns the accept loop; each connection becomes an SmtpSession of MaiRust's own protocol
 * engine (engine/, docs/adr/0007-smtp-server-library.md). The listener
 * - refuses a client over its connection limit with `421 4.7.0` before a session exists,
 * - does the implicit-TLS handshake itself with the current certificate (reloadable),
 * - knows every session, so a graceful close can answer `421 4.3.2` to the ones still open.
 * Every reply comes from the reply table (replies.ts).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { Logger } from 'pino';
import type { InboundPipeline, ListenerKind } from '../../pipeline/inbound/contract.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Lockout } from '../../security/lockout.js';
import type { Authenticate } from './auth.js';
import { ConnectionLimiter } from './connection-limiter.js';
import { LINGER_MS, SmtpSession } from './engine/session.js';
import type { SmtpLimits } from './limits.js';
import { REPLIES, formatReply, type SmtpReply } from './replies.js';
import { acceptTls } from './tls-handshake.js';
import { createSecureContext, type TlsSettings } from './tls.js';

export interface SmtpListenerOptions {
  kind: ListenerKind;
  /** TLS from the first byte (465); otherwise STARTTLS is offered (25, 587). */
  implicitTls: boolean;
  host: string;
  /** 0 = any free port (tests). */
  port: number;
  /** The name in the greeting and EHLO reply (`server.hostname`). */
  hostname: string;
  pipeline: InboundPipeline;
  /** Checks a login; null for any failure. Used on submission only. */
  authenticate: Authenticate;
  lockout: Lockout;
  tls: TlsSettings;
  limits: SmtpLimits;
  logger: Logger;
  metrics?: Metrics;
  /** Share one limiter between listeners so that the per-client limit covers all SMTP ports. */
  connectionLimiter?: ConnectionLimiter;
}

export interface SmtpListener {
  /** Starts accepting; resolves with the bound port. */
  listen(): Promise<{ port: number }>;
  /**
   * Stops accepting, lets sessions finish their transaction for up to `drainMs`, answers the rest
   * `421 4.3.2` and closes them. Idle sessions are closed at once.
   */
  close(drainMs: number): Promise<void>;
  /** New connections (and STARTTLS) use this certificate from now on; open ones keep theirs. */
  reloadTls(tls: TlsSettings): void;
  /** Sessions open now. */
  readonly openSessions: number;
}

/** While draining, how often sessions are looked at for having become idle (after RSET, NOOP…). */
const DRAIN_POLL_MS = 100;

export function createSmtpListener(opts: SmtpListenerOptions): SmtpListener {
  if (opts.kind === 'mx' && opts.implicitTls) throw new Error('an MX listener speaks STARTTLS, not implicit TLS (RFC 3207)');
  const metricLabel = opts.kind === 'mx' ? 'mx' : opts.implicitTls ? 'submissions' : 'submission';
  const log = opts.logger.child({ component: 'smtp', listener: metricLabel });
  const sessions = new Set<SmtpSession>();
  const limiter = opts.connectionLimiter ?? new ConnectionLimiter(opts.limits.maxConnectionsPerIp);
  let secureContext = createSecureContext(opts.tls);
  let draining = false;
  let closing: Promise<void> | null = null;
  /** Resolved when the last session has closed (see sessionsClosed). */
  const emptied: (() => void)[] = [];
  const sessionsClosed = () => (sessions.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => emptied.push(resolve)));
  /** Sockets still in the implicit-TLS handshake: not yet sessions. */
  const handshaking = new Set<net.Socket>();

  const endSession = (session: SmtpSession) => {
    if (session.ended) return;
    session.log.info('session ended by shutdown');
    session.end(REPLIES.SHUTTING_DOWN);
  };

  const startSession = (socket: net.Socket, release: (() => void) | null, secure: boolean) => {
    if (!release) {
      log.info({ remote_addr: socket.remoteAddress }, 'connection refused: too many connections from this client');
      return writeAndClose(socket, REPLIES.TOO_MANY_CONNECTIONS);
    }
    if (draining) {
      release();
      return writeAndClose(socket, REPLIES.SHUTTING_DOWN);
    }
    const session = new SmtpSession(socket, randomUUID(), {
      kind: opts.kind,
      hostname: opts.hostname,
      limits: opts.limits,
      pipeline: opts.pipeline,
      auth: { lockout: opts.lockout, authenticate: opts.authenticate },
      // Implicit TLS sessions are encrypted already; the others are offered STARTTLS.
      secureContext: () => (secure ? null : secureContext),
      log,
      metrics: opts.metrics,
      metricLabel,
      draining: () => draining,
      onClose: (s) => {
        sessions.delete(s);
        release();
        opts.metrics?.smtpDuration.observe({ listener: metricLabel }, (performance.now() - s.startedAt) / 1000);
        if (sessions.size === 0) emptied.splice(0).forEach((resolve) => resolve());
      },
    }, secure);
    sessions.add(session);
    session.start();
  };

  const server = net.createServer((raw) => {
    // Until a session owns the socket, nobody else listens for its errors.
    raw.on('error', (err) => log.debug({ err: { message: err.message } }, 'socket error before the session started'));
    // Replies are small and answer a whole command group at once: send them without delay.
    raw.setNoDelay(true);
    opts.metrics?.smtpConnections.inc({ listener: metricLabel });
    const release = limiter.acquire(raw.remoteAddress ?? '');
    if (!opts.implicitTls) return startSession(raw, release, false);
    handshaking.add(raw);
    acceptTls(raw, secureContext, opts.limits.commandTimeoutMs).then(
      (socket) => {
        handshaking.delete(raw);
        startSession(socket, release, true);
      },
      (err: Error) => {
        handshaking.delete(raw);
        release?.();
        log.info({ remote_addr: raw.remoteAddress, err: { message: err.message } }, 'TLS handshake failed');
      },
    );
  });

  const drain = async (drainMs: number) => {
    draining = true;
    const stopped = new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    for (const raw of handshaking) raw.destroy();
    const endIdle = () => [...sessions].forEach((s) => s.idle && endSession(s));
    endIdle();
    const poll = setInterval(endIdle, DRAIN_POLL_MS);
    await within(sessionsClosed(), drainMs);
    clearInterval(poll);
    [...sessions].forEach((s) => endSession(s));
    // Every socket is ended now and destroyed within LINGER_MS.
    await stopped;
    await within(sessionsClosed(), LINGER_MS + 500);
    log.info('listener closed');
  };

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          server.off('error', reject);
          server.on('error', (err) => log.error({ err }, 'listener error'));
          const { port } = server.address() as net.AddressInfo;
          log.info({ host: opts.host, port, implicit_tls: opts.implicitTls }, 'SMTP listener started');
          resolve({ port });
        });
      });
    },
    close(drainMs: number) {
      closing ??= drain(Math.max(0, drainMs));
      return closing;
    },
    reloadTls(tls: TlsSettings) {
      secureContext = createSecureContext(tls);
      log.info('TLS certificate reloaded');
    },
    get openSessions() {
      return sessions.size;
    },
  };
}

/** Waits for `promise`, but no longer than `ms`. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Writes one final reply and closes; the socket is destroyed if the client does not close in time. */
function writeAndClose(socket: net.Socket, reply: SmtpReply): void {
  if (socket.destroyed) return;
  socket.end(`${formatReply(reply)}\r\n`);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
