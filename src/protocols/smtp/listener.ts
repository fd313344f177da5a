/**
 * One SMTP listener: inbound MX (port 25, STARTTLS offered, no AUTH) or submission (587 with
 * STARTTLS, 465 with implicit TLS; AUTH required, offered only under TLS) — SPEC §3.1, §3.2, §5.1.
 *
 * The protocol engine is `smtp-server` (ARCHITECTURE §3, docs/adr/0007-smtp-server-library.md). The
 * listener owns the accept loop and hands each connection to the engine with `SMTPServer.connect`,
 * which lets it
 * - refuse a client over its connection limit with `421 4.7.0` before the engine spends anything on it,
 * - do the implicit-TLS handshake itself with the current certificate (reloadable),
 * - know every session's socket, so a graceful close can answer `421 4.3.2` to the ones still open.
 *
 * The engine's callbacks are mapped onto the pipeline contract (src/pipeline/inbound/contract.ts) in
 * auth.ts, transaction.ts and data.ts; every reply they give comes from the reply table.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import type { InboundPipeline, ListenerKind } from '../../pipeline/inbound/contract.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Lockout } from '../../security/lockout.js';
import { createAuthHandler, type Authenticate } from './auth.js';
import { ConnectionLimiter } from './connection-limiter.js';
import { createDataHandler } from './data.js';
import { DISABLED_BEFORE_TLS, engineOptions } from './engine-options.js';
import type { HandlerContext } from './handler-context.js';
import type { SmtpLimits } from './limits.js';
import { replyError, replyLine } from './reply-error.js';
import { REPLIES, type SmtpReply } from './replies.js';
import { SessionRegistry, isIdle, type SessionState } from './session-info.js';
import { acceptTls } from './tls-handshake.js';
import { createSecureContext, secureContextOptions, type TlsSettings } from './tls.js';
import { createMailFromHandler, createRcptToHandler } from './transaction.js';

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

/** After the shutdown or refusal reply, how long the client has to close before the socket is destroyed. */
const LINGER_MS = 1000;
/** While draining, how often sessions are looked at for having become idle (after RSET, NOOP…). */
const DRAIN_POLL_MS = 100;

export function createSmtpListener(opts: SmtpListenerOptions): SmtpListener {
  if (opts.kind === 'mx' && opts.implicitTls) throw new Error('an MX listener speaks STARTTLS, not implicit TLS (RFC 3207)');
  const metricLabel = opts.kind === 'mx' ? 'mx' : opts.implicitTls ? 'submissions' : 'submission';
  const log = opts.logger.child({ component: 'smtp', listener: metricLabel });
  const registry = new SessionRegistry();
  const limiter = opts.connectionLimiter ?? new ConnectionLimiter(opts.limits.maxConnectionsPerIp);
  let secureContext = createSecureContext(opts.tls);
  let draining = false;
  let closing: Promise<void> | null = null;
  /** Resolved when the last session has closed (see sessionsClosed). */
  const emptied: (() => void)[] = [];
  const sessionsClosed = () => (registry.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => emptied.push(resolve)));
  /** Sockets still in the implicit-TLS handshake: not yet sessions. */
  const handshaking = new Set<net.Socket>();

  const endSession = (state: SessionState) => {
    if (state.closing) return;
    state.closing = true;
    state.log.info('session ended by shutdown');
    writeAndClose(state.socket, REPLIES.SHUTTING_DOWN);
  };

  const ctx: HandlerContext = {
    kind: opts.kind,
    limits: opts.limits,
    pipeline: opts.pipeline,
    registry,
    metrics: opts.metrics,
    metricLabel,
    draining: () => draining,
    settled: (state) => {
      if (draining && isIdle(state)) endSession(state);
    },
  };

  const engine = new SMTPServer({
    ...engineOptions({ kind: opts.kind, implicitTls: opts.implicitTls, hostname: opts.hostname, limits: opts.limits, tls: opts.tls }),
    onConnect(session, callback) {
      const state = registry.of(session);
      if (draining) return callback(replyError(REPLIES.SHUTTING_DOWN));
      if (opts.kind === 'submission' && !session.secure) session.disabledCommands = [...DISABLED_BEFORE_TLS];
      state.log.debug('session started');
      callback();
    },
    onSecure(socket, session, callback) {
      const state = registry.of(session);
      state.socket = socket;
      // RFC 3207 §4.2: after STARTTLS the server forgets everything the client said before.
      state.transaction = undefined;
      state.info.user = undefined;
      if (opts.kind === 'submission') session.disabledCommands = undefined;
      callback();
    },
    onAuth: createAuthHandler(ctx, { lockout: opts.lockout, authenticate: opts.authenticate }),
    onMailFrom: createMailFromHandler(ctx),
    onRcptTo: createRcptToHandler(ctx),
    onData: createDataHandler(ctx),
    onClose(session: SMTPServerSession) {
      const state = registry.delete(session.id);
      if (!state) return;
      state.release();
      opts.metrics?.smtpDuration.observe({ listener: metricLabel }, (performance.now() - state.startedAt) / 1000);
      state.log.debug('session closed');
      if (registry.size === 0) emptied.splice(0).forEach((resolve) => resolve());
    },
  });
  // Socket errors of single sessions (resets, TLS alerts) end up here; they concern one client only.
  engine.on('error', (err: Error & { code?: string }) => log.debug({ err: { message: err.message, code: err.code } }, 'SMTP connection error'));

  const startSession = (socket: net.Socket, release: (() => void) | null) => {
    if (!release) {
      log.info({ remote_addr: socket.remoteAddress }, 'connection refused: too many connections from this client');
      return writeAndClose(socket, REPLIES.TOO_MANY_CONNECTIONS);
    }
    if (draining) {
      release();
      return writeAndClose(socket, REPLIES.SHUTTING_DOWN);
    }
    const id = randomUUID();
    registry.add(id, opts.kind, socket, log, release);
    engine.connect(socket, { id });
  };

  const server = net.createServer((raw) => {
    // Until the engine has the socket, nobody else listens for its errors.
    raw.on('error', (err) => log.debug({ err: { message: err.message } }, 'socket error before the session started'));
    opts.metrics?.smtpConnections.inc({ listener: metricLabel });
    const release = limiter.acquire(raw.remoteAddress ?? '');
    if (!opts.implicitTls) return startSession(raw, release);
    handshaking.add(raw);
    acceptTls(raw, secureContext, opts.limits.commandTimeoutMs).then(
      (socket) => {
        handshaking.delete(raw);
        startSession(socket, release);
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
    const endIdle = () => registry.all().forEach((s) => isIdle(s) && endSession(s));
    endIdle();
    const poll = setInterval(endIdle, DRAIN_POLL_MS);
    await within(sessionsClosed(), drainMs);
    clearInterval(poll);
    registry.all().forEach((s) => endSession(s));
    // Every socket is ended now and destroyed within LINGER_MS; the engine reports each close a
    // moment after the socket's, so wait for both.
    await stopped;
    await within(sessionsClosed(), LINGER_MS);
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
      engine.updateSecureContext(secureContextOptions(tls));
      log.info('TLS certificate reloaded');
    },
    get openSessions() {
      return registry.size;
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
  socket.end(replyLine(reply));
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
