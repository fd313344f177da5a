/**
 * Builds the inbound pipeline and the SMTP listeners (MX, submission with STARTTLS, submission
 * with implicit TLS) from the AppContext, then the IMAP and POP3 listeners (imap-listeners.ts,
 * pop3-listeners.ts). Part of the composition root: the only place that decides which spam
 * checker, resolver and TLS material the listeners get.
 */
import type { EventPublisher } from '../webhooks/types.js';
import { resolve } from 'node:path';
import { verifyMessage } from '../emailauth/index.js';
import { InboundPipelineImpl, postReceiveEnqueuerFrom, preDeliveryHookFrom, preReceiveHookFrom, removeStaleSpoolFiles } from '../pipeline/inbound/index.js';
import type { HookSystem } from './hooks.js';
import type { InboundPipelineDeps } from '../pipeline/inbound/deps.js';
import type { InboundPipeline } from '../pipeline/inbound/contract.js';
import { createSmtpListener } from '../protocols/smtp/listener.js';
import { ConnectionLimiter } from '../protocols/net/connection-limiter.js';
import { smtpLimitsFromConfig } from '../protocols/smtp/limits.js';
import { Lockout } from '../security/lockout.js';
import { createSpamChecker } from '../spam/index.js';
import type { AppContext } from './context.js';
import { startImapListeners } from './imap-listeners.js';
import { startListenerGroup, type ListenerGroup, type ListenerSpec } from './listener-group.js';
import { buildMailAccessServices } from './mail-access.js';
import { startPop3Listeners } from './pop3-listeners.js';

/** The pipeline's hook slots (SPEC §6), served by the app's hook system. */
function pipelineHooks(app: AppContext, system: HookSystem) {
  const opts = {
    mailboxState: app.mailboxState,
    quarantineFolder: () => app.config.hooks.quarantine_folder,
    logger: app.logger.child({ component: 'hooks' }),
  };
  return {
    preReceive: [preReceiveHookFrom(system.runner, system.hooks, opts)],
    preDelivery: [preDeliveryHookFrom(system.runner, system.hooks, opts)],
    postReceive: postReceiveEnqueuerFrom(app.queue, system.hooks, { logger: opts.logger }),
  };
}

export interface MailListeners {
  /** The inbound pipeline the SMTP listeners use; the send API (POST /api/v1/send) uses it too. */
  pipeline: InboundPipeline;
  /** name → bound port */
  ports: Record<string, number>;
  reloadTls(): Promise<void>;
  close(drainMs: number): Promise<void>;
}

export interface MailListenerExtras {
  events?: EventPublisher;
  hookSystem?: HookSystem;
  /** Submission stages: rate limiter + policy, pre_send hooks, DKIM (src/app/outbound.ts). */
  outbound?: InboundPipelineDeps['outbound'];
}

export async function startMailListeners(app: AppContext, extra: MailListenerExtras = {}): Promise<MailListeners> {
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
    hooks: extra.hookSystem ? pipelineHooks(app, extra.hookSystem) : undefined,
    outbound: extra.outbound,
  });

  const limits = smtpLimitsFromConfig(config.smtp, config.mail.max_message_bytes);
  // One limiter for all SMTP ports: the per-client limit covers the client, not one port.
  const connectionLimiter = new ConnectionLimiter(config.smtp.max_connections_per_ip);

  // Logins are checked and audited (SPEC §10) exactly as for IMAP and POP3 (mail-access.ts).
  const logins = buildMailAccessServices(app, log, lockout);
  const authenticate = (username: string, password: string, session: { remoteAddress: string; listener: string }) =>
    logins.authenticate(username, password, { remoteAddress: session.remoteAddress, listener: session.listener, protocol: 'smtp' });

  const smtpSpec = (name: 'smtp' | 'submission' | 'smtps'): ListenerSpec => ({
    name,
    config: config.listeners[name],
    create: (tls, bind) =>
      createSmtpListener({
        kind: name === 'smtp' ? 'mx' : 'submission',
        implicitTls: name === 'smtps',
        ...bind,
        hostname: config.server.hostname,
        pipeline,
        authenticate,
        lockout,
        tls,
        limits,
        logger: app.logger,
        metrics: app.metrics,
        connectionLimiter,
      }),
  });
  const groups: ListenerGroup[] = [await startListenerGroup(app, [smtpSpec('smtp'), smtpSpec('submission'), smtpSpec('smtps')])];
  // Mail access (IMAP, POP3): only started once mail can be received, and stopped with it.
  try {
    groups.push(await startImapListeners(app));
    groups.push(await startPop3Listeners(app));
  } catch (err) {
    for (const g of groups) await g.close(0).catch(() => {});
    throw err;
  }

  return {
    pipeline,
    ports: Object.assign({}, ...groups.map((g) => g.ports)),
    async reloadTls() {
      for (const g of groups) await g.reloadTls();
    },
    async close(drainMs: number) {
      await Promise.all(groups.map((g) => g.close(drainMs)));
    },
  };
}
