/**
 * The composition root (ARCHITECTURE §1.4): the one place that turns validated config into
 * adapters and services. The embedded and cluster shapes differ only in which adapters are built
 * here. Nothing else reads config files or environment variables.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { loadConfig } from '../config/loader.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { openDatabase, type Database } from '../store/db/database.js';
import { createResolver, type DnsResolver } from '../dns/index.js';
import { migrateUp } from '../store/db/migrator.js';
import { createBlobStore, type BlobStore } from '../store/blob/index.js';
import { createChangeBus } from '../store/events/index.js';
import type { ChangeBus } from '../store/events/change-bus.js';
import type { DatabaseQueue } from '../queue/db-queue.js';
import { NatsQueue } from '../queue/nats-queue.js';
import { createQueue } from '../queue/index.js';
import type { QueueMetricEvent } from '../queue/options.js';
import type { Queue } from '../queue/queue.js';
import { MailboxStateService } from '../core/mailbox-state/service.js';
import { tenantStorageLimitFromPlans } from '../core/mailbox-state/index.js';
import { TenancyService } from '../core/tenancy/service.js';

export interface OpenNeeds {
  /** Use the configured change bus (PostgreSQL LISTEN in a cluster); default: in-process only. */
  sharedBus?: boolean;
  /** Run pending migrations even when database.auto_migrate is false (`mairust migrate`). */
  forceMigrate?: boolean;
  /** Skip migrations entirely (`mairust migrate status`/`rollback`). */
  noMigrate?: boolean;
}

export interface OpenOptions extends OpenNeeds {
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  logFormat?: 'json' | 'text';
  /** Where logs go (default stdout); CLI commands log to stderr so stdout stays for results. */
  logDestination?: number;
}

export interface AppContext {
  /** The configuration in force; after a reload, with the reloadable keys updated. */
  readonly config: Config;
  /** Makes `next` the configuration in force (the reload applies only reloadable keys to it). */
  updateConfig(next: Config): void;
  readonly configSource: string | null;
  readonly nodeId: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly db: Database;
  /** Every DNS lookup goes through this resolver (configurable servers: tests use a loopback DNS). */
  readonly resolver: DnsResolver;
  readonly blobs: BlobStore;
  readonly bus: ChangeBus;
  /** `queue.backend`: jobs in the database, or NATS JetStream (with a transactional outbox in the database). */
  readonly queue: (DatabaseQueue | NatsQueue) & Queue;
  readonly mailboxState: MailboxStateService;
  readonly tenancy: TenancyService;
  close(): Promise<void>;
}

export function blobStoreConfig(config: Config) {
  const s3 = config.storage.s3;
  return {
    backend: config.storage.backend,
    fs: { path: config.storage.fs.path || resolve(config.server.data_dir, 'blobs') },
    s3: {
      endpoint: s3.endpoint || undefined,
      bucket: s3.bucket,
      region: s3.region,
      accessKeyId: s3.access_key_id || undefined,
      secretAccessKey: s3.secret_access_key || undefined,
      forcePathStyle: s3.force_path_style,
      multipartThresholdBytes: s3.multipart_threshold_bytes,
      partSizeBytes: s3.part_size_bytes,
      checksumMode: s3.checksum,
      createBucket: s3.create_bucket,
    },
  } as const;
}

export async function openApp(opts: OpenOptions = {}): Promise<AppContext> {
  const { config, source } = await loadConfig({ configPath: opts.configPath, env: opts.env ?? process.env });
  const logger = createLogger({
    level: config.log.level,
    format: opts.logFormat ?? config.log.format,
    destination: opts.logDestination,
  });
  let currentConfig = config;
  const metrics = createMetrics();
  const nodeId = config.server.node_id ?? `${hostname()}-${process.pid}`;

  const db = await openDatabase(config.database.url, {
    dataDir: config.server.data_dir,
    poolMax: config.database.pool_max,
    statementTimeoutMs: config.database.statement_timeout_ms,
  });
  const closers: (() => Promise<void>)[] = [() => db.close()];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch((err) => logger.warn({ err }, 'error while closing'));
  };
  try {
    if (!opts.noMigrate && (config.database.auto_migrate || opts.forceMigrate)) {
      const applied = await migrateUp(db);
      if (applied.length) logger.info({ component: 'db', migrations: applied.map((m) => `${m.version}_${m.name}`) }, 'migrations applied');
    }
    const blobs = createBlobStore(blobStoreConfig(config));
    closers.push(() => blobs.close());
    const bus = await createChangeBus(opts.sharedBus ? config.events.backend : 'memory', db, { nodeId, logger });
    closers.push(() => bus.close());
    const queue = createQueue(db, {
      nodeId,
      config: config.queue,
      natsServers: config.nats.servers,
      logger: logger.child({ component: 'queue' }),
      onMetrics: (event: QueueMetricEvent, queueName: string) => metrics.queueJobs.inc({ queue: queueName, result: event }),
    });
    closers.push(() => queue.stop(0));
    // Fail at start, not at the first message, when NATS is unreachable.
    if (queue instanceof NatsQueue) await queue.start();
    const mailboxState = new MailboxStateService({
      db,
      blobs,
      bus,
      previewBytes: config.mail.preview_bytes,
      nodeId,
      // Read through a function so a reloaded plan takes effect without rebuilding the service.
      tenantStorageLimit: tenantStorageLimitFromPlans(() => ({ plans: currentConfig.plans, defaultPlan: currentConfig.default_plan })),
      logger: logger.child({ component: 'mailbox-state' }),
    });
    const tenancy = new TenancyService({
      db,
      plans: config.plans,
      defaultPlan: config.default_plan,
      createDefaultFolders: async (trx, scope, mailboxId) => {
        await mailboxState.createDefaultFolders(scope, mailboxId, trx);
      },
      logger: logger.child({ component: 'tenancy' }),
    });
    return {
      get config() {
        return currentConfig;
      },
      updateConfig(next: Config) {
        currentConfig = next;
        tenancy.setPlans(next.plans, next.default_plan);
      },
      configSource: source,
      nodeId,
      logger,
      metrics,
      db,
      resolver: createResolver(config.dns),
      blobs,
      bus,
      queue,
      mailboxState,
      tenancy,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
