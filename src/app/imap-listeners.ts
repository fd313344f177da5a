/**
 * Builds the IMAP listeners (SPEC §5.3) from the AppContext: `imap` with STARTTLS and `imaps` with
 * implicit TLS, whichever `listeners.*` enables. Part of the composition root: limits come from the
 * `imap` config section (APPENDLIMIT from `mail.max_message_bytes`), TLS from the `tls` section (the
 * same material as SMTP and POP3), and the sessions reach mail only through the MailAccessServices
 * seam (mail-access.ts).
 *
 * Both listeners share the connection limiter (per client address) and the per-user session
 * counter, so the limits cover the node, not one port. The command modules are loaded once.
 */
import { loadCommandModules } from '../protocols/imap/commands/index.js';
import { createImapListener } from '../protocols/imap/listener.js';
import { imapLimitsFromConfig } from '../protocols/imap/session/limits.js';
import { UserSessionCounter } from '../protocols/imap/session/user-sessions.js';
import { ConnectionLimiter } from '../protocols/net/connection-limiter.js';
import type { AppContext } from './context.js';
import { startListenerGroup, type ListenerGroup, type ListenerSpec } from './listener-group.js';
import { buildMailAccessServices } from './mail-access.js';

export type ImapListeners = ListenerGroup;

export async function startImapListeners(app: AppContext): Promise<ImapListeners> {
  const config = app.config;
  const logger = app.logger.child({ component: 'imap' });
  const services = buildMailAccessServices(app, logger);
  const limits = imapLimitsFromConfig(config.imap, config.mail.max_message_bytes);
  const commands = await loadCommandModules();
  // Shared by both listeners: the limits are per client address and per user on this node.
  const connectionLimiter = new ConnectionLimiter(config.imap.max_connections_per_ip);
  const userSessions = new UserSessionCounter(config.imap.max_connections_per_user);
  const spec = (name: 'imap' | 'imaps'): ListenerSpec => ({
    name,
    config: config.listeners[name],
    create: (tls, bind) =>
      createImapListener({ name, implicitTls: name === 'imaps', ...bind, services, tls, limits, commands, connectionLimiter, userSessions, logger: app.logger }),
  });
  return startListenerGroup(app, [spec('imap'), spec('imaps')]);
}
