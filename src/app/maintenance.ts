/**
 * Periodic housekeeping run through the queue, so that in a cluster exactly one node does each
 * round: every node enqueues the round's job under the same dedupe key, and the queue runs it once.
 */
import type { Config } from '../config/schema.js';
import { purgeDeleted } from '../core/mailbox-state/purge.js';
import { Lockout } from '../security/lockout.js';
import type { AppContext } from './context.js';
import type { ApiDeps } from '../http/api/deps.js';
import { auditRetentionRound } from '../security/audit-retention.js';
import type { PluginRegistry } from '../plugins/registry.js';

export const MAINTENANCE_QUEUE = 'maintenance';
const DONE_JOB_RETENTION_MS = 7 * 24 * 3600 * 1000;

export interface Maintenance {
  /** Enqueues the current round now (idempotent per round). */
  tick(): Promise<void>;
  stop(): void;
}

/** `api`: the API's stores, whose expired sessions, tokens and rate counters are pruned each round. */
/** `plugins`: the registry, whose log lines older than `plugins.log_retention_days` are pruned each round. */
export function startMaintenance(
  app: AppContext,
  config: () => Config,
  api?: Pick<ApiDeps, 'sessions' | 'tokens' | 'rateCounter'>,
  plugins?: Pick<PluginRegistry, 'pruneLogs'>,
): Maintenance {
  const log = app.logger.child({ component: 'maintenance' });
  app.queue.work<{ task: 'purge' }>(MAINTENANCE_QUEUE, async (job) => {
    if (job.payload.task !== 'purge') throw new Error(`unknown maintenance task ${String(job.payload.task)}`);
    const result = await purgeDeleted(
      { db: app.db, blobs: app.blobs, logger: log },
      { defaultRetentionDays: config().retention.deleted_messages_days },
    );
    await app.queue.purgeDone(DONE_JOB_RETENTION_MS);
    await new Lockout(app.db).prune();
    await auditRetentionRound(app.db, config().audit.retention_days, log);
    if (api) {
      await api.sessions.prune();
      await api.tokens.prune();
      await api.rateCounter.prune();
    }
    await plugins?.pruneLogs();
    log.info(result, 'purge round finished');
  });

  const tick = async () => {
    const intervalMs = config().retention.purge_interval_minutes * 60_000;
    const round = Math.floor(Date.now() / intervalMs);
    await app.queue.enqueue(MAINTENANCE_QUEUE, { task: 'purge' }, { dedupeKey: `purge:${intervalMs}:${round}`, maxAttempts: 3 });
  };
  const safeTick = () => tick().catch((err) => log.warn({ err: { message: err.message } }, 'could not schedule maintenance'));
  safeTick();
  // Checked every minute so a reloaded purge_interval_minutes takes effect without a restart.
  const timer = setInterval(safeTick, 60_000);
  timer.unref();
  return { tick, stop: () => clearInterval(timer) };
}
