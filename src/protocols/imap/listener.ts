/**
 * One IMAP listener (SPEC §5.3): `imap` speaks clear text and offers STARTTLS (RFC 9051 §6.2.1;
 * nothing can log in before TLS), `imaps` speaks TLS from the first byte (RFC 8314 §3.3).
 *
 * Like the SMTP and POP3 listeners, it runs on the shared accept loop (src/protocols/net/listener-core.ts):
 * - a client over its connection limit (per address, IPv6 per /64, shared by both listeners) is
 *   greeted with `* BYE` and closed before a session exists (RFC 9051 §7.1.5 allows BYE as greeting);
 * - it does the implicit-TLS handshake with the current certificate (reloadable);
 * - it knows every session, so a graceful close can end idle ones at once and the rest after
 *   `drainMs`, each with `* BYE`.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ConnectionLimiter } from '../net/connection-limiter.js';
import { createListenerCore, writeLineAndClose, type ListenerCore } from '../net/listener-core.js';
import type { TlsSettings } from '../net/tls.js';
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

/**
 * `close(drainMs)` stops accepting; idle sessions (between commands or in IDLE) get `* BYE` at
 * once, busy ones when their command ends, and any left after `drainMs` regardless.
 */
export type ImapListener = ListenerCore;

export function createImapListener(opts: ImapListenerOptions): ImapListener {
  const log = opts.logger.child({ component: 'imap', listener: opts.name });
  const labels = { protocol: 'imap', listener: opts.name };
  return createListenerCore<ImapSession>({
    protocol: 'IMAP',
    host: opts.host,
    port: opts.port,
    implicitTls: opts.implicitTls,
    tls: opts.tls,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? opts.limits.preAuthTimeoutMs,
    limiter: opts.connectionLimiter,
    log,
    lingerMs: LINGER_MS,
    // `* BYE` as the greeting (RFC 9051 §7.1.5), then close.
    refuse: (socket, reason) =>
      writeLineAndClose(socket, `* BYE ${reason === 'too-many-connections' ? TEXT.TOO_MANY_CONNECTIONS : TEXT.SHUTTING_DOWN}`, LINGER_MS),
    open(socket, c) {
      const metrics = opts.services.metrics;
      metrics?.mailAccessConnections.inc(labels);
      metrics?.mailAccessSessions.inc(labels);
      const session = new ImapSession(socket, randomUUID(), {
        listener: opts.name,
        services: opts.services,
        limits: opts.limits,
        commands: opts.commands,
        secureContext: c.secureContext,
        userSessions: opts.userSessions,
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
    shutdown: (s) => s.end(TEXT.SHUTTING_DOWN),
  });
}
