/**
 * `mairust serve`: starts every listener and background worker from one AppContext, and owns the
 * process lifecycle — reload on SIGHUP, graceful stop on SIGTERM/SIGINT (SPEC §12).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../config/loader.js';
import { diffConfig } from '../config/reload.js';
import type { Config } from '../config/schema.js';
import { createHealth } from '../observability/health.js';
import { setLogLevel } from '../observability/logger.js';
import { createHttpServer } from '../http/server.js';
import { openApp, type AppContext, type OpenOptions } from './context.js';
import { bootstrapSuperAdmin } from './bootstrap.js';
import { startMaintenance, type Maintenance } from './maintenance.js';
import { startMailListeners, type MailListeners } from './mail-listeners.js';
import { buildApiDeps, eventPublisher, mountApi } from './api.js';
import { buildHookSystem } from './hooks.js';
import { startHookWorkers, type HookWorkers } from './hook-workers.js';
import { outboundStages, startOutboundDelivery, type OutboundDelivery } from './outbound.js';
import { createRateCounter } from '../http/api/rate-limit/index.js';
import type { ApiDeps } from '../http/api/deps.js';
import { openSecretStore } from '../security/secrets/index.js';
import { startWebhookWorker, WebhookStore } from '../webhooks/index.js';
import { startAuditFileSink } from '../security/audit-file-sink.js';
import { applyStoredOverrides, applyToApp } from '../settings/settings-service.js';

export interface RunningServer {
  app: AppContext;
  http: FastifyInstance;
  /** host:port the HTTP listener is bound to. */
  httpAddress: string;
  reload(): Promise<{ applied: string[]; restartRequired: string[] }>;
  stop(reason?: string): Promise<void>;
}

export class StartupError extends Error {}

export function pidFilePath(config: Config): string {
  return resolve(config.server.data_dir, 'mairust.pid');
}

export async function startServer(opts: OpenOptions & { installSignalHandlers?: boolean } = {}): Promise<RunningServer> {
  const app = await openApp({ ...opts, sharedBus: true });
  const log = app.logger.child({ component: 'server' });
  const config = app.config; // start-time values: listeners, storage, shutdown limits
  let http: FastifyInstance | undefined;
  let maintenance: Maintenance | undefined;
  let mail: MailListeners | undefined;
  let api: ApiDeps | undefined;
  let stopWebhooks: (() => Promise<void>) | undefined;
  let stopSettingsSync: (() => void) | undefined;
  let stopAuditSink: (() => Promise<void>) | undefined;
  let hookWorkers: HookWorkers | undefined;
  let outboundDelivery: OutboundDelivery | undefined;
  let outboundCounter: ReturnType<typeof createRateCounter> | undefined;
  try {
    // A blob store that is down at start is a configuration or infrastructure error: say so and stop,
    // rather than accepting mail that cannot be stored (SPEC §4 failure behaviour).
    try {
      await app.blobs.ping();
    } catch (err) {
      throw new StartupError(`blob store (${config.storage.backend}) is unreachable: ${(err as Error).message}`);
    }
    await bootstrapSuperAdmin(app, (line: string) => process.stdout.write(line + '\n'));
    // Settings changed through the API override the file, on every node; applied before anything
    // reads the reloadable keys. A changed TLS path re-reads the certificates like a SIGHUP does.
    const settings = await applyStoredOverrides(app, {
      apply: async (a, next, changed) => {
        await applyToApp(a, next, changed);
        if (changed.some((k) => k.startsWith('tls.'))) {
          await mail?.reloadTls().catch((err) => log.error({ err: { message: (err as Error).message } }, 'TLS reload failed; keeping the current certificate'));
        }
      },
    });
    stopSettingsSync = settings.startSync();
    stopAuditSink = startAuditFileSink(app);

    const { metrics } = app;
    metrics.setQueueStatsSource(() => app.queue.stats());
    metrics.setStorageBytesSource(async () => {
      const row = await app.db.kysely
        .selectFrom('tenants')
        .select((eb) => eb.fn.sum<number>('used_bytes').as('total'))
        .executeTakeFirst();
      return Number(row?.total ?? 0);
    });
    const health = createHealth({
      database: () => app.db.ping(),
      blob_store: () => app.blobs.ping(),
      queue: () => app.queue.ping(),
    });
    // The mail listeners are bound before HTTP answers: once /health/ready says 200, every
    // listener accepts connections.
    // Secrets first: without a usable master key the server must not start (ADR 0008).
    const secrets = await openSecretStore({ config: app.config, db: app.db, logger: app.logger });
    const events = eventPublisher(app);
    // One hook system for the mail pipeline and the API: one breaker view, one metrics registration.
    const hookSystem = buildHookSystem(app, { secrets, events });
    // Outbound rate counters: shared by every node (database or Redis, `api.rate_limit.backend`).
    outboundCounter = createRateCounter(app.config.api.rate_limit, app.db);
    const outbound = outboundStages(app, { secrets, counter: outboundCounter, events, hookSystem });
    mail = await startMailListeners(app, { events, hookSystem, outbound });
    http = createHttpServer({
      logger: app.logger,
      metrics,
      health,
      bodyLimitBytes: config.api.body_limit_bytes,
      trustProxy: config.api.trusted_proxies.length ? config.api.trusted_proxies : false,
    });
    api = await buildApiDeps(app, { events, secrets, hookSystem, pipeline: mail.pipeline });
    await mountApi(http, api);
    const { host, port } = config.listeners.http;
    await http.listen({ host, port });
    const addr = http.server.address();
    const httpAddress = typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : `${host}:${port}`;

    maintenance = startMaintenance(app, () => app.config, api, hookSystem.plugins);
    hookWorkers = startHookWorkers(app, hookSystem);
    outboundDelivery = startOutboundDelivery(app);
    const webhookLog = app.logger.child({ component: 'webhooks' });
    stopWebhooks = startWebhookWorker({
      queue: app.queue,
      store: new WebhookStore({ db: app.db, secrets, config: () => app.config.webhooks, logger: webhookLog }),
      resolver: app.resolver,
      config: () => app.config.webhooks,
      logger: webhookLog,
    });

    mkdirSync(config.server.data_dir, { recursive: true });
    writeFileSync(pidFilePath(config), `${process.pid}\n`);
    log.info({ http: httpAddress, mail: mail.ports, database: app.db.safeUrl, storage: config.storage.backend, node_id: app.nodeId }, 'MaiRust is ready');

    let stopping: Promise<void> | undefined;
    const server: RunningServer = {
      app,
      http,
      httpAddress,
      async reload() {
        const next = (await loadConfig({ configPath: opts.configPath, env: opts.env ?? process.env })).config;
        const diff = diffConfig(app.config, next);
        if (diff.reloadable.includes('log.level')) setLogLevel(app.logger, next.log.level);
        app.queue.setOptions({
          pollIntervalMs: next.queue.poll_interval_ms,
          defaultBackoffSeconds: next.queue.default_backoff_seconds,
          defaultMaxAttempts: next.queue.default_max_attempts,
        });
        // Certificates are re-read on every reload (renewed files, same paths).
        await mail!.reloadTls().catch((err) => log.error({ err: { message: (err as Error).message } }, 'TLS reload failed; keeping the current certificate'));
        // Keys that need a restart keep their running value, so the process never runs half-changed.
        app.updateConfig(applyReloadable(app.config, next, diff.reloadable));
        // The file changed; settings made through the API still take precedence over it.
        await settings.rebase(app.config);
        log.info({ applied: diff.reloadable, restart_required: diff.restartRequired }, 'configuration reloaded');
        if (diff.restartRequired.length) log.warn({ keys: diff.restartRequired }, 'changed keys need a restart to take effect');
        return { applied: diff.reloadable, restartRequired: diff.restartRequired };
      },
      stop(reason = 'stop requested') {
        stopping ??= (async () => {
          log.info({ reason }, 'shutting down');
          // 1. report not-ready so load balancers stop sending traffic, then stop accepting;
          //    in-flight HTTP requests finish.
          health.setDraining(true);
          await http!.close();
          // 2. SMTP sessions finish their transaction (≤ shutdown.smtp_drain_seconds), then 421;
          //    IMAP/POP3 sessions finish their command and get BYE.
          await mail?.close(app.config.shutdown.smtp_drain_seconds * 1000);
          // 3. drain queue workers; unfinished jobs are released for another node.
          maintenance?.stop();
          await stopWebhooks?.();
          await hookWorkers?.stop();
          stopSettingsSync?.();
          await stopAuditSink?.();
          await app.queue.stop(app.config.shutdown.queue_drain_seconds * 1000);
          await outboundDelivery?.stop();
          await outboundCounter?.close();
          await api?.rateCounter.close();
          // 4. close the database and the rest.
          await app.close();
          rmSync(pidFilePath(config), { force: true });
          log.info('stopped');
        })();
        return stopping;
      },
    };

    if (opts.installSignalHandlers) {
      process.on('SIGHUP', () => {
        server.reload().catch((err) => log.error({ err: { message: err.message, issues: err.issues } }, 'reload failed; keeping the running configuration'));
      });
      for (const sig of ['SIGTERM', 'SIGINT'] as const) {
        process.once(sig, () => {
          server.stop(sig).then(
            () => process.exit(0),
            (err) => {
              log.error({ err }, 'error during shutdown');
              process.exit(1);
            },
          );
        });
      }
    }
    return server;
  } catch (err) {
    maintenance?.stop();
    stopSettingsSync?.();
    await stopAuditSink?.().catch(() => {});
    await stopWebhooks?.().catch(() => {});
    await hookWorkers?.stop().catch(() => {});
    await outboundDelivery?.stop().catch(() => {});
    await outboundCounter?.close().catch(() => {});
    await mail?.close(0).catch(() => {});
    await http?.close().catch(() => {});
    await api?.rateCounter.close().catch(() => {});
    await app.close();
    throw err;
  }
}

/** A copy of `current` where only the reloadable paths take the value from `next`. */
function applyReloadable(current: Config, next: Config, paths: string[]): Config {
  const out = structuredClone(current) as Record<string, any>;
  for (const p of paths) {
    const keys = p.split('.');
    let src: any = next;
    let dst: any = out;
    for (let i = 0; i < keys.length - 1; i++) {
      src = src?.[keys[i]];
      dst[keys[i]] ??= {};
      dst = dst[keys[i]];
    }
    dst[keys[keys.length - 1]] = structuredClone(src?.[keys[keys.length - 1]]);
  }
  return out as Config;
}
