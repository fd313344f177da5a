/**
 * One POP3 listener (SPEC §5.4): `pop3` (110; STLS offered, RFC 2595 §4) or `pop3s` (995; TLS from
 * the first byte, RFC 8314 §3.3). Modelled on the SMTP listener (src/protocols/smtp/listener.ts):
 *
 * - a client over its connection limit (per address, IPv6 per /64, shared by both POP3 ports when
 *   the caller passes one limiter) gets `-ERR [SYS/TEMP] …` before a session exists;
 * - the listener does the implicit-TLS handshake itself with the current certificate (reloadable);
 * - it knows every session, so a graceful close can end them: sessions not logged in at once,
 *   logged-in ones (downloading) after `drainMs`, and a RETR still in flight by dropping the
 *   connection (a response cannot be cut short any other way). A session ended like this never
 *   enters UPDATE, so nothing is deleted (RFC 1939 §3).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { Logger } from 'pino';
import type { MailAccessServices } from '../imap/services.js';
import { ConnectionLimiter } from '../smtp/connection-limiter.js';
import { acceptTls } from '../smtp/tls-handshake.js';
import { createSecureContext, type TlsSettings } from '../smtp/tls.js';
import { MaildropLocks } from './maildrop-locks.js';
import { REPLIES } from './replies.js';
import type { Pop3Limits } from './session-context.js';
import { LINGER_MS, Pop3Session } from './session.js';

export interface Pop3ListenerOptions {
  /** TLS from the first byte (`pop3s`); otherwise STLS is offered (`pop3`). */
  implicitTls: boolean;
  host: string;
  /** 0 = any free port (tests). */
  port: number;
  /** The name in the greeting's timestamp (`server.hostname`). */
  hostname: string;
  services: MailAccessServices;
  tls: TlsSettings;
  limits: Pop3Limits;
  logger: Logger;
  /** Share one limiter between the POP3 listeners so the per-client limit covers both ports. */
  connectionLimiter?: ConnectionLimiter;
  /** Share the maildrop locks between the POP3 listeners of a node (one session per mailbox). */
  locks?: MaildropLocks;
  /** Longest implicit-TLS handshake; default the autologout time, at most 60 s. */
  tlsHandshakeTimeoutMs?: number;
  /** Maximum connections per client when no limiter is passed. */
  maxConnectionsPerIp?: number;
}

export interface Pop3Listener {
  /** Starts accepting; resolves with the bound port. */
  listen(): Promise<{ port: number }>;
  /** Stops accepting and ends every session (see the file comment); resolves when all are closed. */
  close(drainMs: number): Promise<void>;
  /** New connections (and STLS) use this certificate from now on; open ones keep theirs. */
  reloadTls(tls: TlsSettings): void;
  readonly openSessions: number;
}

/** While draining, how often sessions are looked at for having become idle. */
const DRAIN_POLL_MS = 100;

export function createPop3Listener(opts: Pop3ListenerOptions): Pop3Listener {
  const name = opts.implicitTls ? 'pop3s' : 'pop3';
  const log = opts.logger.child({ component: 'pop3', listener: name });
  const sessions = new Set<Pop3Session>();
  const limiter = opts.connectionLimiter ?? new ConnectionLimiter(opts.maxConnectionsPerIp ?? 20);
  const locks = opts.locks ?? new MaildropLocks();
  const handshakeMs = opts.tlsHandshakeTimeoutMs ?? Math.min(opts.limits.idleTimeoutMs, 60_000);
  let secureContext = createSecureContext(opts.tls);
  let draining = false;
  let closing: Promise<void> | null = null;
  const emptied: (() => void)[] = [];
  const sessionsClosed = () => (sessions.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => emptied.push(resolve)));
  /** Sockets still in the implicit-TLS handshake: not yet sessions. */
  const handshaking = new Set<net.Socket>();

  const startSession = (socket: net.Socket, release: (() => void) | null, secure: boolean) => {
    if (!release) {
      log.info({ remote_addr: socket.remoteAddress }, 'connection refused: too many connections from this client');
      return writeAndClose(socket, REPLIES.TOO_MANY_CONNECTIONS);
    }
    if (draining) {
      release();
      return writeAndClose(socket, REPLIES.SHUTTING_DOWN);
    }
    const session = new Pop3Session(socket, randomUUID(), {
      services: opts.services,
      limits: opts.limits,
      locks,
      listener: name,
      hostname: opts.hostname,
      // Implicit-TLS sessions are encrypted already; the others are offered STLS.
      secureContext: () => (secure ? null : secureContext),
      log,
      draining: () => draining,
      onClose: (s) => {
        sessions.delete(s);
        opts.services.metrics?.mailAccessSessions.dec({ protocol: 'pop3', listener: name });
        release();
        if (sessions.size === 0) emptied.splice(0).forEach((resolve) => resolve());
      },
    }, secure);
    sessions.add(session);
    opts.services.metrics?.mailAccessConnections.inc({ protocol: 'pop3', listener: name });
    opts.services.metrics?.mailAccessSessions.inc({ protocol: 'pop3', listener: name });
    session.start();
  };

  const server = net.createServer((raw) => {
    // Until a session owns the socket, nobody else listens for its errors.
    raw.on('error', (err) => log.debug({ err: { message: err.message } }, 'socket error before the session started'));
    raw.setNoDelay(true);
    const release = limiter.acquire(raw.remoteAddress ?? '');
    // On pop3s even a refusal goes through TLS (the client could not read it otherwise): handshake first.
    if (!opts.implicitTls) return startSession(raw, release, false);
    handshaking.add(raw);
    acceptTls(raw, secureContext, handshakeMs).then(
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
    const endIdle = () => [...sessions].forEach((s) => s.idle && s.shutdown());
    endIdle();
    const poll = setInterval(endIdle, DRAIN_POLL_MS);
    await within(sessionsClosed(), drainMs);
    clearInterval(poll);
    [...sessions].forEach((s) => s.shutdown());
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
          log.info({ host: opts.host, port, implicit_tls: opts.implicitTls }, 'POP3 listener started');
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

/** Writes one final line and closes; the socket is destroyed if the client does not close in time. */
function writeAndClose(socket: net.Socket, line: string): void {
  if (socket.destroyed) return;
  socket.end(`${line}\r\n`);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
