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
import type { Logger } from 'pino';
import type { InboundPipeline, ListenerKind } from '../../pipeline/inbound/contract.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Lockout } from '../../security/lockout.js';
import type { Authenticate } from './auth.js';
import { ConnectionLimiter } from '../net/connection-limiter.js';
import { LINGER_MS, SmtpSession } from './engine/session.js';
import type { SmtpLimits } from './limits.js';
import { REPLIES, formatReply } from './replies.js';
import { createListenerCore, writeLineAndClose, type ListenerCore } from '../net/listener-core.js';
import type { TlsSettings } from '../net/tls.js';

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

/**
 * `close(drainMs)` stops accepting, lets sessions finish their transaction for up to `drainMs`,
 * answers the rest `421 4.3.2` and closes them; idle sessions are closed at once.
 */
export type SmtpListener = ListenerCore;

export function createSmtpListener(opts: SmtpListenerOptions): SmtpListener {
  if (opts.kind === 'mx' && opts.implicitTls) throw new Error('an MX listener speaks STARTTLS, not implicit TLS (RFC 3207)');
  const metricLabel = opts.kind === 'mx' ? 'mx' : opts.implicitTls ? 'submissions' : 'submission';
  const log = opts.logger.child({ component: 'smtp', listener: metricLabel });
  return createListenerCore<SmtpSession>({
    protocol: 'SMTP',
    host: opts.host,
    port: opts.port,
    implicitTls: opts.implicitTls,
    tls: opts.tls,
    handshakeTimeoutMs: opts.limits.commandTimeoutMs,
    limiter: opts.connectionLimiter ?? new ConnectionLimiter(opts.limits.maxConnectionsPerIp),
    log,
    lingerMs: LINGER_MS,
    refuse: (socket, reason) =>
      writeLineAndClose(socket, formatReply(reason === 'too-many-connections' ? REPLIES.TOO_MANY_CONNECTIONS : REPLIES.SHUTTING_DOWN), LINGER_MS),
    open(socket, c) {
      opts.metrics?.smtpConnections.inc({ listener: metricLabel });
      const session = new SmtpSession(socket, randomUUID(), {
        kind: opts.kind,
        hostname: opts.hostname,
        limits: opts.limits,
        pipeline: opts.pipeline,
        auth: { lockout: opts.lockout, authenticate: opts.authenticate },
        secureContext: c.secureContext,
        log,
        metrics: opts.metrics,
        metricLabel,
        draining: c.draining,
        onClose: (s) => {
          opts.metrics?.smtpDuration.observe({ listener: metricLabel }, (performance.now() - s.startedAt) / 1000);
          c.closed();
        },
      }, c.secure);
      session.start();
      return session;
    },
    isIdle: (s) => s.idle,
    shutdown(s) {
      if (s.ended) return;
      s.log.info('session ended by shutdown');
      s.end(REPLIES.SHUTTING_DOWN);
    },
  });
}
