/**
 * Binds a protocol's listeners (e.g. `imap` + `imaps`) from their `listeners.*` config with one TLS
 * certificate, and gives them one lifecycle: a failure to bind closes those already bound, a
 * reload re-reads the certificate files for all of them, and close drains them together. Part of
 * the composition root (SMTP, IMAP and POP3 all start this way).
 */
import type { ListenerCore } from '../protocols/net/listener-core.js';
import { loadTlsSettings, type TlsSettings } from '../protocols/net/tls.js';
import type { AppContext } from './context.js';

export interface ListenerGroup {
  /** name → bound port */
  ports: Record<string, number>;
  reloadTls(): Promise<void>;
  close(drainMs: number): Promise<void>;
}

export interface ListenerSpec {
  name: string;
  /** The `listeners.<name>` config entry; disabled ones are not started. */
  config: { enabled: boolean; host: string; port: number };
  create(tls: TlsSettings, bind: { host: string; port: number }): ListenerCore;
}

export async function startListenerGroup(app: AppContext, specs: ListenerSpec[]): Promise<ListenerGroup> {
  const tlsOptions = { dataDir: app.config.server.data_dir, hostname: app.config.server.hostname };
  const tls = await loadTlsSettings(app.config.tls, tlsOptions);
  const listeners: ListenerCore[] = [];
  const ports: Record<string, number> = {};
  try {
    for (const spec of specs.filter((s) => s.config.enabled)) {
      const listener = spec.create(tls, { host: spec.config.host, port: spec.config.port });
      ports[spec.name] = (await listener.listen()).port;
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
