/**
 * Composition of outbound mail (SPEC §3.2, §3.3, §8): the pipeline's submission stages (rate
 * limiter + policy engine, pre_send hooks, DKIM signing, the retry schedule of new queue records)
 * and the delivery side (destination resolver with MTA-STS, SMTP client pool, DSN sender, the
 * `outbound` queue worker). Built once per process by `mairust serve`; the pipeline part is also
 * what tests build.
 */
import type { AppContext } from './context.js';
import type { HookSystem } from './hooks.js';
import type { SecretStore } from '../security/secrets/types.js';
import type { EventPublisher } from '../webhooks/types.js';
import type { InboundPipelineDeps } from '../pipeline/inbound/deps.js';
import type { RateCounter } from '../http/api/rate-limit/types.js';
import { DkimKeyService } from '../emailauth/dkim-keys.js';
import { createOutboundPolicy } from '../outbound/policy/engine.js';
import { createDkimSigner } from '../outbound/dkim-sign.js';
import { preSendHookFrom } from '../pipeline/inbound/pre-send.js';
import { createDestinationResolver } from '../outbound/routing/resolve-destination.js';
import { createMtaStsCache } from '../outbound/routing/mta-sts.js';
import { createSmtpClientPool } from '../protocols/smtp/client/pool.js';
import { createDsnSender, statusOf, type DsnSender } from '../outbound/dsn.js';
import type { Logger } from 'pino';
import { startOutboundWorker } from '../outbound/delivery/worker.js';
import { createOutboundMetrics } from '../outbound/delivery/metrics.js';
import { OutboundRecords } from '../outbound/records.js';
import { systemScope } from '../core/scope.js';

export interface OutboundStagesOptions {
  secrets: SecretStore;
  counter: RateCounter;
  events?: EventPublisher;
  hookSystem?: HookSystem;
}

/** The `outbound` deps of the inbound pipeline (they act on submissions only). */
export function outboundStages(app: AppContext, opts: OutboundStagesOptions): NonNullable<InboundPipelineDeps['outbound']> {
  const logger = app.logger.child({ component: 'outbound' });
  return {
    policy: createOutboundPolicy({
      db: app.db,
      counter: opts.counter,
      tenancy: app.tenancy,
      config: () => app.config.outbound,
      events: opts.events,
      logger,
      metrics: app.metrics.registry,
    }),
    signer: createDkimSigner({ db: app.db, dkim: new DkimKeyService({ db: app.db, secrets: opts.secrets }), tenancy: app.tenancy }),
    preSend: opts.hookSystem ? preSendHookFrom(opts.hookSystem.runner, opts.hookSystem.hooks, { logger: app.logger.child({ component: 'hooks' }) }) : null,
    retry: () => app.config.outbound,
  };
}

export interface OutboundDelivery {
  stop(): Promise<void>;
}

/** The DSN sender of this app (bounces go to the envelope sender; never for `<>`). */
export function outboundDsnSender(app: AppContext, logger: Logger): DsnSender {
  return createDsnSender({
    db: app.db,
    mailboxState: app.mailboxState,
    tenancy: app.tenancy,
    queue: app.queue,
    hostname: app.config.server.hostname,
    retry: () => app.config.outbound,
    logger,
  });
}

/** The outbound queue records, with DSNs for `delete … bounce` (the API's and the CLI's). */
export function outboundRecords(app: AppContext, logger: Logger, dsn: DsnSender = outboundDsnSender(app, logger)): OutboundRecords {
  return new OutboundRecords({
    db: app.db,
    queue: app.queue,
    config: () => app.config.outbound,
    bounce: async (rec, rcpts) => {
      await dsn.send({
        tenantId: rec.tenantId,
        outboundId: rec.id,
        messageId: rec.messageId,
        mailFrom: rec.mailFrom,
        arrivedAt: rec.createdAt,
        recipients: rcpts.map((r) => ({ address: r.address, action: 'failed', status: statusOf(r.lastReply, '5.0.0'), diagnostic: r.lastReply })),
      });
    },
  });
}

/** Starts the `outbound` queue worker of this node. */
export function startOutboundDelivery(app: AppContext): OutboundDelivery {
  const logger = app.logger.child({ component: 'outbound' });
  const cfg = () => app.config.outbound;
  const pool = createSmtpClientPool({
    idleMs: () => cfg().connection_idle_seconds * 1000,
    maxPerDestination: () => cfg().max_connections_per_destination,
    logger,
  });
  const resolver = createDestinationResolver({ resolver: app.resolver, config: cfg, mtaSts: createMtaStsCache({ resolver: app.resolver }) });
  const dsn = outboundDsnSender(app, logger);
  const records = outboundRecords(app, logger, dsn);
  startOutboundWorker({
    queue: app.queue,
    db: app.db,
    mailboxState: app.mailboxState,
    resolver,
    pool,
    config: cfg,
    hostname: app.config.server.hostname,
    dsn,
    logger,
    metrics: createOutboundMetrics(app.metrics.registry, () => records.stats(systemScope)),
  });
  return {
    async stop() {
      await pool.close();
    },
  };
}
