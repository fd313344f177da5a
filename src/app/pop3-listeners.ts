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
import { createPop3Listener, type Pop3Listener } from '../protocols/pop3/listener.js';
import { MaildropLocks } from '../protocols/pop3/maildrop-locks.js';
import type { Pop3Limits } from '../protocols/pop3/session-context.js';
import { loadTlsSettings } from '../protocols/net/tls.js';
import type { AppContext } from './context.js';
import { buildMailAccessServices } from './mail-access.js';

export interface Pop3Listeners {
  /** name (`pop3`, `pop3s`) → bound port */
  ports: Record<string, number>;
  reloadTls(): Promise<void>;
  close(drainMs: number): Promise<void>;
}

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
  const tlsOptions = { dataDir: config.server.data_dir, hostname: config.server.hostname };
  const tls = await loadTlsSettings(config.tls, tlsOptions);
  const limits = pop3LimitsFromConfig(config.pop3);
  const connectionLimiter = new ConnectionLimiter(config.pop3.max_connections_per_ip);
  const locks = new MaildropLocks();

  const specs = [
    { name: 'pop3', implicitTls: false, l: config.listeners.pop3 },
    { name: 'pop3s', implicitTls: true, l: config.listeners.pop3s },
  ].filter((s) => s.l.enabled);

  const listeners: Pop3Listener[] = [];
  const ports: Record<string, number> = {};
  try {
    for (const s of specs) {
      const listener = createPop3Listener({
        implicitTls: s.implicitTls,
        host: s.l.host,
        port: s.l.port,
        hostname: config.server.hostname,
        services,
        tls,
        limits,
        logger: app.logger,
        connectionLimiter,
        locks,
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
