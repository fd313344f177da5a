/**
 * Builds the inbound pipeline and the SMTP listeners (MX, submission with STARTTLS, submission
 * with implicit TLS) from the AppContext, then the IMAP and POP3 listeners (imap-listeners.ts,
 * pop3-listeners.ts). Part of the composition root: the only place that decides which spam
 * checker, resolver and TLS material the listeners get.
 */
import type { EventPublisher } from '../webhooks/types.js';
import { resolve } from 'node:path';
import { systemScope } from '../core/scope.js';
import { verifyMessage } from '../emailauth/index.js';
import { InboundPipelineImpl, removeStaleSpoolFiles } from '../pipeline/inbound/index.js';
import { createSmtpListener, type SmtpListener } from '../protocols/smtp/listener.js';
import { ConnectionLimiter } from '../protocols/net/connection-limiter.js';
import { smtpLimitsFromConfig } from '../protocols/smtp/limits.js';
import { loadTlsSettings } from '../protocols/net/tls.js';
import { writeAudit } from '../security/audit.js';
import { Lockout } from '../security/lockout.js';
import { createSpamChecker } from '../spam/index.js';
import type { AppContext } from './context.js';
import { startImapListeners, type ImapListeners } from './imap-listeners.js';
import { startPop3Listeners, type Pop3Listeners } from './pop3-listeners.js';

export interface MailListeners {
  /** name → bound port */
  ports: Record<string, number>;
  reloadTls(): Promise<void>;
  close(drainMs: number): Promise<void>;
}

export async function startMailListeners(app: AppContext, extra: { events?: EventPublisher } = {}): Promise<MailListeners> {
  const config = app.config;
  const log = app.logger.child({ component: 'smtp' });
  const lockout = new Lockout(app.db);
  const emailAuth = config.emailauth.enabled
    ? { verify: (input: Parameters<typeof verifyMessage>[0]) => verifyMessage(input, { resolver: app.resolver, config: app.config.emailauth, logger: log }) }
    : null;
  const spoolDir = resolve(config.server.data_dir, 'spool');
  // Spool files left by a crash are copies of messages that were never acknowledged.
  await removeStaleSpoolFiles(spoolDir);
  const pipeline = new InboundPipelineImpl({
    tenancy: app.tenancy,
    mailboxState: app.mailboxState,
    queue: app.queue,
    blobs: app.blobs,
    db: app.db,
    emailAuth,
    spam: createSpamChecker(config.spam, { logger: app.logger.child({ component: 'spam' }), metrics: app.metrics }),
    config: () => app.config.inbound,
    maxMessageBytes: () => app.config.mail.max_message_bytes,
    previewBytes: config.mail.preview_bytes,
    hostname: config.server.hostname,
    spoolDir,
    logger: app.logger.child({ component: 'pipeline' }),
    metrics: app.metrics,
    events: extra.events,
  });

  const tlsOptions = { dataDir: config.server.data_dir, hostname: config.server.hostname };
  const tls = await loadTlsSettings(config.tls, tlsOptions);
  const limits = smtpLimitsFromConfig(config.smtp, config.mail.max_message_bytes);
  // One limiter for all SMTP ports: the per-client limit covers the client, not one port.
  const connectionLimiter = new ConnectionLimiter(config.smtp.max_connections_per_ip);

  const authenticate = async (username: string, password: string, session: { remoteAddress: string; listener: string }) => {
    const user = await app.tenancy.authenticate(systemScope, username, password);
    // SPEC §10 audit: logins, success and failure, without the password.
    await writeAudit(app.db.kysely, {
      tenantId: user?.tenantId ?? null,
      eventType: user ? 'auth.login' : 'auth.login_failed',
      actor: { type: 'user', id: user?.id, email: username.slice(0, 320), ip: session.remoteAddress },
      target: { type: 'smtp', id: session.listener },
      metadata: { protocol: 'smtp' },
    }).catch((err) => log.warn({ err: { message: (err as Error).message } }, 'could not write the login audit entry'));
    if (!user) return null;
    await app.tenancy.users.recordLogin(systemScope, user.id).catch(() => {});
    return { id: user.id, tenantId: user.tenantId, email: user.email, role: user.role };
  };

  const specs = [
    { name: 'smtp', kind: 'mx' as const, implicitTls: false, l: config.listeners.smtp },
    { name: 'submission', kind: 'submission' as const, implicitTls: false, l: config.listeners.submission },
    { name: 'smtps', kind: 'submission' as const, implicitTls: true, l: config.listeners.smtps },
  ].filter((s) => s.l.enabled);

  const listeners: { name: string; listener: SmtpListener }[] = [];
  const ports: Record<string, number> = {};
  try {
    for (const s of specs) {
      const listener = createSmtpListener({
        kind: s.kind,
        implicitTls: s.implicitTls,
        host: s.l.host,
        port: s.l.port,
        hostname: config.server.hostname,
        pipeline,
        authenticate,
        lockout,
        tls,
        limits,
        logger: app.logger,
        metrics: app.metrics,
        connectionLimiter,
      });
      ports[s.name] = (await listener.listen()).port;
      listeners.push({ name: s.name, listener });
    }
  } catch (err) {
    for (const { listener } of listeners) await listener.close(0).catch(() => {});
    throw err;
  }

  // Mail access (IMAP, POP3): only started once mail can be received, and stopped with it.
  let access: (ImapListeners | Pop3Listeners)[] = [];
  try {
    access.push(await startImapListeners(app));
    access.push(await startPop3Listeners(app));
  } catch (err) {
    for (const a of access) await a.close(0).catch(() => {});
    for (const { listener } of listeners) await listener.close(0).catch(() => {});
    throw err;
  }
  for (const a of access) Object.assign(ports, a.ports);

  return {
    ports,
    async reloadTls() {
      const next = await loadTlsSettings(app.config.tls, tlsOptions);
      for (const { listener } of listeners) listener.reloadTls(next);
      for (const a of access) await a.reloadTls();
    },
    async close(drainMs: number) {
      await Promise.all([...listeners.map(({ listener }) => listener.close(drainMs)), ...access.map((a) => a.close(drainMs))]);
      access = [];
    },
  };
}
