/**
 * Audit-log retention (SPEC §10: 180 days): deletes rows older than `audit.retention_days`.
 *
 * The table is append-only; a database trigger (migration 0008) refuses to delete rows younger than
 * 180 days, so this job can never shorten the legal minimum even when misconfigured. Rows are
 * deleted in small batches so that neither SQLite's single writer nor a PostgreSQL table lock is
 * held for long, and the cut-off keeps a safety margin so that a clock difference between this node
 * and the database (the PostgreSQL trigger compares with the *database's* clock) cannot make a
 * boundary row trip the trigger and fail the batch.
 */
import type { Logger } from 'pino';
import type { Database } from '../store/db/database.js';
import { AUDIT_MIN_RETENTION_MS } from '../store/db/migrations/0008_api_auth.js';

const DAY_MS = 86_400_000;
/** Rows this close to the cut-off wait for the next round (tolerates clock skew with the DB). */
export const RETENTION_MARGIN_MS = 10 * 60_000;
const BATCH = 1000;
/** Upper bound per call, so one maintenance round stays short; the next round continues. */
const MAX_BATCHES = 500;

export interface PurgeOptions {
  now?: number;
  batchSize?: number;
}

/**
 * Deletes audit rows older than `retentionDays` (never fewer than 180) and returns how many were
 * deleted.
 */
export async function purgeAuditLog(db: Database, retentionDays: number, opts: PurgeOptions = {}): Promise<number> {
  const retentionMs = Math.max(retentionDays * DAY_MS, AUDIT_MIN_RETENTION_MS);
  const cutoff = (opts.now ?? Date.now()) - retentionMs - RETENTION_MARGIN_MS;
  const batch = Math.max(1, Math.min(opts.batchSize ?? BATCH, 10_000));
  let total = 0;
  for (let i = 0; i < MAX_BATCHES; i++) {
    // `id in (select … limit n)`: DELETE … LIMIT is not portable (PostgreSQL has none).
    const res = await db.kysely
      .deleteFrom('audit_log')
      .where('id', 'in', (eb) => eb.selectFrom('audit_log').select('id').where('timestamp', '<', cutoff).orderBy('id').limit(batch))
      .executeTakeFirst();
    const n = Number(res.numDeletedRows ?? 0);
    total += n;
    if (n < batch) break;
  }
  return total;
}

/**
 * One retention round with the configured retention, for the maintenance job
 * (src/app/maintenance.ts): `await auditRetentionRound(app.db, app.config.audit.retention_days, log)`.
 */
export async function auditRetentionRound(db: Database, retentionDays: number, log?: Logger): Promise<number> {
  const deleted = await purgeAuditLog(db, retentionDays);
  if (deleted > 0) log?.info({ deleted, retention_days: retentionDays }, 'old audit rows deleted');
  return deleted;
}
