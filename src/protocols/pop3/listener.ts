/**
 * One POP3 listener (SPEC §5.4): `pop3` (110; STLS offered, RFC 2595 §4) or `pop3s` (995; TLS from
 * the first byte, RFC 8314 §3.3), on the accept loop all mail listeners share
 * (src/protocols/net/listener-core.ts):
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
import type { Logger } from 'pino';
import type { MailAccessServices } from '../imap/services.js';
import { ConnectionLimiter } from '../net/connection-limiter.js';
import { createListenerCore, writeLineAndClose, type ListenerCore } from '../net/listener-core.js';
import type { TlsSettings } from '../net/tls.js';
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

/** `close(drainMs)` stops accepting and ends every session (see the file comment). */
export type Pop3Listener = ListenerCore;

export function createPop3Listener(opts: Pop3ListenerOptions): Pop3Listener {
  const name = opts.implicitTls ? 'pop3s' : 'pop3';
  const log = opts.logger.child({ component: 'pop3', listener: name });
  const labels = { protocol: 'pop3', listener: name };
  const locks = opts.locks ?? new MaildropLocks();
  return createListenerCore<Pop3Session>({
    protocol: 'POP3',
    host: opts.host,
    port: opts.port,
    implicitTls: opts.implicitTls,
    tls: opts.tls,
    handshakeTimeoutMs: opts.tlsHandshakeTimeoutMs ?? Math.min(opts.limits.idleTimeoutMs, 60_000),
    limiter: opts.connectionLimiter ?? new ConnectionLimiter(opts.maxConnectionsPerIp ?? 20),
    log,
    lingerMs: LINGER_MS,
    refuse: (socket, reason) =>
      writeLineAndClose(socket, reason === 'too-many-connections' ? REPLIES.TOO_MANY_CONNECTIONS : REPLIES.SHUTTING_DOWN, LINGER_MS),
    open(socket, c) {
      const metrics = opts.services.metrics;
      metrics?.mailAccessConnections.inc(labels);
      metrics?.mailAccessSessions.inc(labels);
      const session = new Pop3Session(socket, randomUUID(), {
        services: opts.services,
        limits: opts.limits,
        locks,
        listener: name,
        hostname: opts.hostname,
        secureContext: c.secureContext,
        log,
        draining: c.draining,
        onClose: () => {
          metrics?.mailAccessSessions.dec(labels);
          c.closed();
        },
      }, c.secure);
      session.start();
      return session;
    },
    isIdle: (s) => s.idle,
    shutdown: (s) => s.shutdown(),
  });
}
