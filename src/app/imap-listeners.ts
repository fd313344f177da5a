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
import { createImapListener, type ImapListener } from '../protocols/imap/listener.js';
import { imapLimitsFromConfig } from '../protocols/imap/session/limits.js';
import { UserSessionCounter } from '../protocols/imap/session/user-sessions.js';
import { ConnectionLimiter } from '../protocols/net/connection-limiter.js';
import { loadTlsSettings } from '../protocols/net/tls.js';
import type { AppContext } from './context.js';
import { buildMailAccessServices } from './mail-access.js';

export interface ImapListeners {
  /** name (`imap`, `imaps`) → bound port */
  ports: Record<string, number>;
  reloadTls(): Promise<void>;
  close(drainMs: number): Promise<void>;
}

export async function startImapListeners(app: AppContext): Promise<ImapListeners> {
  const config = app.config;
  const logger = app.logger.child({ component: 'imap' });
  const services = buildMailAccessServices(app, logger);
  const tlsOptions = { dataDir: config.server.data_dir, hostname: config.server.hostname };
  const tls = await loadTlsSettings(config.tls, tlsOptions);
  const limits = imapLimitsFromConfig(config.imap, config.mail.max_message_bytes);
  const commands = await loadCommandModules();
  const connectionLimiter = new ConnectionLimiter(config.imap.max_connections_per_ip);
  const userSessions = new UserSessionCounter(config.imap.max_connections_per_user);

  const specs = [
    { name: 'imap', implicitTls: false, l: config.listeners.imap },
    { name: 'imaps', implicitTls: true, l: config.listeners.imaps },
  ].filter((s) => s.l.enabled);

  const listeners: ImapListener[] = [];
  const ports: Record<string, number> = {};
  try {
    for (const s of specs) {
      const listener = createImapListener({
        name: s.name,
        implicitTls: s.implicitTls,
        host: s.l.host,
        port: s.l.port,
        services,
        tls,
        limits,
        commands,
        connectionLimiter,
        userSessions,
        logger: app.logger,
      });
      ports[s.name] = (await listener.listen()).port;
      listeners.push(listener);
    }
  } catch (err) {
    for (const listener of listeners) await listener.close(0).catch(() => {});
    throw err;
  }

  return {
    ports,
    async reloadTls() {
      const next = await loadTlsSettings(app.config.tls, tlsOptions);
      for (const listener of listeners) listener.reloadTls(next);
    },
    async close(drainMs: number) {
      await Promise.all(listeners.map((listener) => listener.close(drainMs)));
    },
  };
}
