/**
 * One IMAP listener (SPEC §5.3): `imap` speaks clear text and offers STARTTLS (RFC 9051 §6.2.1;
 * nothing can log in before TLS), `imaps` speaks TLS from the first byte (RFC 8314 §3.3).
 *
 * Like the SMTP listener (src/protocols/smtp/listener.ts), it owns the accept loop:
 * - a client over its connection limit (per address, IPv6 per /64, shared by both listeners) is
 *   greeted with `* BYE` and closed before a session exists (RFC 9051 §7.1.5 allows BYE as greeting);
 * - it does the implicit-TLS handshake with the current certificate (reloadable);
 * - it knows every session, so a graceful close can end idle ones at once and the rest after
 *   `drainMs`, each with `* BYE`.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { Logger } from 'pino';
import type { ConnectionLimiter } from '../smtp/connection-limiter.js';
import { acceptTls } from '../smtp/tls-handshake.js';
import { createSecureContext, type TlsSettings } from '../smtp/tls.js';
import type { MailAccessServices } from './services.js';
import { TEXT } from './session/replies.js';
import { ImapSession, LINGER_MS } from './session/session.js';
import type { CommandModule, ImapLimits } from './session/types.js';
import type { UserSessionCounter } from './session/user-sessions.js';

export interface ImapListenerOptions {
  /** `imap` (STARTTLS) or `imaps` (implicit TLS); in logs and audit entries. */
  name: string;
  implicitTls: boolean;
  host: string;
  /** 0 = any free port (tests). */
  port: number;
  services: MailAccessServices;
  tls: TlsSettings;
  limits: ImapLimits;
  /** From loadCommandModules(), loaded once for both listeners. */
  commands: Map<string, CommandModule>;
  /** Shared by both IMAP listeners so the per-address limit covers the node. */
  connectionLimiter: ConnectionLimiter;
  userSessions: UserSessionCounter;
  logger: Logger;
  /** A client that does not finish the implicit-TLS handshake in time is dropped. Default: the pre-login autologout. */
  handshakeTimeoutMs?: number;
}

export interface ImapListener {
  listen(): Promise<{ port: number }>;
  /**
   * Stops accepting; idle sessions (between commands or in IDLE) get `* BYE` at once, busy ones when
   * their command ends, and any left after `drainMs` regardless.
   */
  close(drainMs: number): Promise<void>;
  /** New connections and STARTTLS use this certificate from now on; open ones keep theirs. */
  reloadTls(tls: TlsSettings): void;
  readonly openSessions: number;
}

/** While draining, how often sessions are looked at for having become idle. */
const DRAIN_POLL_MS = 100;

export function createImapListener(opts: ImapListenerOptions): ImapListener {
  const log = opts.logger.child({ component: 'imap', listener: opts.name });
  const sessions = new Set<ImapSession>();
  let secureContext = createSecureContext(opts.tls);
  let draining = false;
  let closing: Promise<void> | null = null;
  const emptied: (() => void)[] = [];
  const sessionsClosed = () => (sessions.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => emptied.push(resolve)));
  const handshaking = new Set<net.Socket>();

  const startSession = (socket: net.Socket, release: (() => void) | null, secure: boolean) => {
    if (!release) {
      log.info({ remote_addr: socket.remoteAddress }, 'connection refused: too many connections from this client');
      return byeAndClose(socket, TEXT.TOO_MANY_CONNECTIONS);
    }
    if (draining) {
      release();
      return byeAndClose(socket, TEXT.SHUTTING_DOWN);
    }
    const session = new ImapSession(socket, randomUUID(), {
      listener: opts.name,
      services: opts.services,
      limits: opts.limits,
      commands: opts.commands,
      // Implicit-TLS sessions are encrypted already; the others are offered STARTTLS.
      secureContext: () => (secure ? null : secureContext),
      userSessions: opts.userSessions,
      log,
      draining: () => draining,
      onClose: (s) => {
        sessions.delete(s);
        opts.services.metrics?.mailAccessSessions.dec({ protocol: 'imap', listener: opts.name });
        release();
        if (sessions.size === 0) emptied.splice(0).forEach((resolve) => resolve());
      },
    }, secure);
    sessions.add(session);
    opts.services.metrics?.mailAccessConnections.inc({ protocol: 'imap', listener: opts.name });
    opts.services.metrics?.mailAccessSessions.inc({ protocol: 'imap', listener: opts.name });
    session.start();
  };

  const server = net.createServer((raw) => {
    raw.on('error', (err) => log.debug({ err: { message: err.message } }, 'socket error before the session started'));
    raw.setNoDelay(true);
    const release = opts.connectionLimiter.acquire(raw.remoteAddress ?? '');
    if (!opts.implicitTls) return startSession(raw, release, false);
    handshaking.add(raw);
    acceptTls(raw, secureContext, opts.handshakeTimeoutMs ?? opts.limits.preAuthTimeoutMs).then(
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
    const endIdle = () => [...sessions].forEach((s) => s.idle && s.end(TEXT.SHUTTING_DOWN));
    endIdle();
    const poll = setInterval(endIdle, DRAIN_POLL_MS);
    await within(sessionsClosed(), drainMs);
    clearInterval(poll);
    [...sessions].forEach((s) => s.end(TEXT.SHUTTING_DOWN));
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
          log.info({ host: opts.host, port, implicit_tls: opts.implicitTls }, 'IMAP listener started');
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

async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** `* BYE` as the greeting (RFC 9051 §7.1.5), then close; destroyed if the client lingers. */
function byeAndClose(socket: net.Socket, text: string): void {
  if (socket.destroyed) return;
  socket.end(`* BYE ${text}\r\n`);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
