/**
 * Builds the POP3 listeners (SPEC §5.4) from the AppContext: `pop3` with STLS and `pop3s` with
 * implicit TLS, whichever `listeners.*` enables. Part of the composition root: limits come from the
 * `pop3` config section, TLS from the `tls` section (the same material as SMTP), and the sessions
 * reach mail only through the MailAccessServices seam (mail-access.ts).
 *
 * Both listeners share one connection limiter (the per-client limit covers the client, not one
 * port) and one set of maildrop locks (one POP3 session per mailbox on this node, either port).
 */
import type { Pop3Config } from '../config/sections/pop3.js';
import { ConnectionLimiter } from '../protocols/net/connection-limiter.js';
import { createPop3Listener } from '../protocols/pop3/listener.js';
import { MaildropLocks } from '../protocols/pop3/maildrop-locks.js';
import type { Pop3Limits } from '../protocols/pop3/session-context.js';
import type { AppContext } from './context.js';
import { startListenerGroup, type ListenerGroup, type ListenerSpec } from './listener-group.js';
import { buildMailAccessServices } from './mail-access.js';

export type Pop3Listeners = ListenerGroup;

export function pop3LimitsFromConfig(config: Pop3Config): Pop3Limits {
  return {
    maxLineBytes: config.max_line_bytes,
    idleTimeoutMs: config.idle_timeout_minutes * 60_000,
    maxBadCommands: config.max_bad_commands,
  };
}

export async function startPop3Listeners(app: AppContext): Promise<Pop3Listeners> {
  const config = app.config;
  const logger = app.logger.child({ component: 'pop3' });
  const services = buildMailAccessServices(app, logger);
  const limits = pop3LimitsFromConfig(config.pop3);
  // Shared by both listeners: the connection limit is per client address, the maildrop lock per mailbox.
  const connectionLimiter = new ConnectionLimiter(config.pop3.max_connections_per_ip);
  const locks = new MaildropLocks();
  const spec = (name: 'pop3' | 'pop3s'): ListenerSpec => ({
    name,
    config: config.listeners[name],
    create: (tls, bind) =>
      createPop3Listener({ implicitTls: name === 'pop3s', ...bind, hostname: config.server.hostname, services, tls, limits, logger: app.logger, connectionLimiter, locks }),
  });
  return startListenerGroup(app, [spec('pop3'), spec('pop3s')]);
}
