/**
 * The purge job (SPEC §2 "Deleted messages", §4 "Lifecycle"): logically deleted folder entries
 * are removed for good once they are older than the tenant's retention (`tenants.retention_days`,
 * else `retention.deleted_messages_days`), unless the tenant or the entry's mailbox is under legal
 * hold (SPEC §9). A message row goes when no folder entry refers to it any more, and its blob when
 * no message row of any tenant refers to that blob.
 *
 * Crash safety — the order is: entries + messages (+ text index) in one transaction per batch,
 * then blobs. A crash between the two leaves an orphan blob (found and removed by
 * `mairust db check --fix`), never a message row whose blob is gone. Entries and their messages
 * share a transaction so a crash can never strand a message row with no entry left to find it by.
 *
 * Quotas are not touched here: `used_bytes` already went down at expunge time (expunge.ts).
 */
import type { Expression, ExpressionBuilder, SqlBool } from 'kysely';
import type { Database } from '../../store/db/database.js';
import type { DB } from '../../store/db/types.js';
import type { BlobStore } from '../../store/blob/blob-store.js';
import { deleteTextIndex } from '../search/text-index.js';
import { inScope, type Scope } from '../scope.js';
import { systemActor, writeAudit, type AuditActor } from '../../security/audit.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_BATCH_SIZE = 500;
/** Ids per IN (...) list stay far below SQLite's and PostgreSQL's bound-parameter limits. */
const MAX_BATCH_SIZE = 5000;

export interface PurgeLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface PurgeDeps {
  db: Database;
  blobs: BlobStore;
  logger?: PurgeLogger;
}

export interface PurgeOptions {
  /** The clock (ms); tests move it. */
  now?: number;
  /** `retention.deleted_messages_days`, used for tenants without their own `retention_days`. */
  defaultRetentionDays: number;
  /** Folder entries per transaction (default 500, at most 5000). */
  batchSize?: number;
}

export interface PurgeResult {
  entriesPurged: number;
  messagesPurged: number;
  blobsDeleted: number;
  /** Blobs whose rows are gone but whose delete failed (store down): orphans for `db check --fix`. */
  blobsFailed: number;
}

export class LegalHoldTargetNotFoundError extends Error {
  readonly code = 'NOT_FOUND';
  constructor(what: string) {
    super(`${what} not found`);
    this.name = 'LegalHoldTargetNotFoundError';
  }
}

type EntryRef = ExpressionBuilder<DB, 'folder_entries'>;

/** Neither the entry's tenant nor its mailbox is on legal hold (checked again at delete time). */
function notOnHold(eb: EntryRef): Expression<SqlBool> {
  return eb.and([
    eb.not(eb.exists(eb.selectFrom('tenants').select('tenants.id').whereRef('tenants.id', '=', 'folder_entries.tenant_id').where('tenants.legal_hold', '<>', 0))),
    eb.not(eb.exists(eb.selectFrom('mailboxes').select('mailboxes.id').whereRef('mailboxes.id', '=', 'folder_entries.mailbox_id').where('mailboxes.legal_hold', '<>', 0))),
  ]);
}

/** Logically deleted before `cutoff`. */
function expiredBefore(cutoff: number) {
  return (eb: EntryRef): Expression<SqlBool> => eb.and([eb('folder_entries.deleted_at', 'is not', null), eb('folder_entries.deleted_at', '<', cutoff)]);
}

function validate(opts: PurgeOptions): { now: number; batchSize: number } {
  const days = opts.defaultRetentionDays;
  if (!Number.isInteger(days) || days < 0) throw new RangeError(`purge: defaultRetentionDays must be a whole number ≥ 0 (got ${days})`);
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw new RangeError(`purge: batchSize must be between 1 and ${MAX_BATCH_SIZE} (got ${batchSize})`);
  }
  return { now: opts.now ?? Date.now(), batchSize };
}

/** Runs one full purge round over every tenant; safe to run on several nodes at once. */
export async function purgeDeleted(deps: PurgeDeps, opts: PurgeOptions): Promise<PurgeResult> {
  const { now, batchSize } = validate(opts);
  const result: PurgeResult = { entriesPurged: 0, messagesPurged: 0, blobsDeleted: 0, blobsFailed: 0 };
  const tenants = await deps.db.kysely.selectFrom('tenants').select(['id', 'legal_hold', 'retention_days']).execute();
  for (const tenant of tenants) {
    // A tenant on hold is skipped here for speed; the delete re-checks in case a hold is set meanwhile.
    if (tenant.legal_hold) continue;
    const days = tenant.retention_days ?? opts.defaultRetentionDays;
    const cutoff = now - days * DAY_MS;
    for (;;) {
      const batch = await purgeBatch(deps, tenant.id, cutoff, batchSize);
      result.entriesPurged += batch.entries;
      result.messagesPurged += batch.messages;
      const blobs = await deleteUnreferencedBlobs(deps, batch.blobKeys);
      result.blobsDeleted += blobs.deleted;
      result.blobsFailed += blobs.failed;
      // Fewer candidates than a full batch: this tenant is done. None deleted: everything left
      // changed under us (hold set, entry restored) and the next round will look again.
      if (batch.candidates < batchSize || batch.entries === 0) break;
    }
  }
  if (result.entriesPurged > 0 || result.blobsFailed > 0) {
    deps.logger?.info({ component: 'purge', ...result }, 'purged deleted messages');
  }
  return result;
}

interface BatchResult {
  candidates: number;
  entries: number;
  messages: number;
  blobKeys: string[];
}

async function purgeBatch(deps: PurgeDeps, tenantId: string, cutoff: number, batchSize: number): Promise<BatchResult> {
  const { db } = deps;
  const candidates = await db.kysely
    .selectFrom('folder_entries')
    .select(['folder_entries.id', 'folder_entries.message_id'])
    .where('folder_entries.tenant_id', '=', tenantId)
    .where(expiredBefore(cutoff))
    .where(notOnHold)
    .limit(batchSize)
    .execute();
  if (candidates.length === 0) return { candidates: 0, entries: 0, messages: 0, blobKeys: [] };

  // The transaction starts with a write, so SQLite takes its write lock first (busy_timeout waits
  // for other writers) instead of failing on a stale read snapshot later.
  return db.kysely.transaction().execute(async (trx) => {
    const deleted = await trx
      .deleteFrom('folder_entries')
      .where('folder_entries.id', 'in', candidates.map((c) => c.id))
      // Same conditions again: a hold set or an entry restored since the SELECT wins.
      .where(expiredBefore(cutoff))
      .where(notOnHold)
      .executeTakeFirst();
    const entries = Number(deleted.numDeletedRows);

    const messageIds = [...new Set(candidates.map((c) => c.message_id))];
    const unreferenced = await trx
      .selectFrom('messages')
      .select(['messages.id', 'messages.blob_key'])
      .where('messages.id', 'in', messageIds)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('folder_entries').select('folder_entries.id').whereRef('folder_entries.message_id', '=', 'messages.id'))))
      .execute();
    let messages = 0;
    if (unreferenced.length > 0) {
      const ids = unreferenced.map((m) => m.id);
      await deleteTextIndex(trx, db.dialect, ids);
      const res = await trx.deleteFrom('messages').where('id', 'in', ids).executeTakeFirst();
      messages = Number(res.numDeletedRows);
    }
    return { candidates: candidates.length, entries, messages, blobKeys: [...new Set(unreferenced.map((m) => m.blob_key))] };
  });
}

/**
 * Deletes the blobs that no message row (of any tenant) refers to any more. Runs after the rows'
 * transaction committed. A failed delete only leaves an orphan, so it is logged, not thrown:
 * the rows are already gone and the next `db check --fix` removes it.
 */
async function deleteUnreferencedBlobs(deps: PurgeDeps, keys: string[]): Promise<{ deleted: number; failed: number }> {
  if (keys.length === 0) return { deleted: 0, failed: 0 };
  const stillUsed = await deps.db.kysely.selectFrom('messages').select('blob_key').distinct().where('blob_key', 'in', keys).execute();
  const used = new Set(stillUsed.map((r) => r.blob_key));
  let deleted = 0;
  let failed = 0;
  for (const key of keys) {
    if (used.has(key)) continue;
    try {
      await deps.blobs.delete(key);
      deleted++;
    } catch (err) {
      failed++;
      deps.logger?.warn({ component: 'purge', blob_key: key, err }, 'could not delete blob; it stays as an orphan for db check --fix');
    }
  }
  return { deleted, failed };
}

export type LegalHoldTarget = { tenantId: string } | { mailboxId: string };

/**
 * Sets or lifts legal hold on a tenant or one mailbox (SPEC §9): while set, nothing of it is purged.
 * Tenancy is enforced by `scope`; who may do this (role) is the caller's check. The change is
 * audited in the same transaction.
 */
export async function setLegalHold(
  db: Database,
  scope: Scope,
  target: LegalHoldTarget,
  on: boolean,
  opts: { actor?: AuditActor } = {},
): Promise<void> {
  const value = on ? 1 : 0;
  const at = Date.now();
  await db.kysely.transaction().execute(async (trx) => {
    let tenantId: string;
    let audited: { type: string; id: string };
    if ('tenantId' in target) {
      const res = await trx
        .updateTable('tenants')
        .set({ legal_hold: value, updated_at: at })
        .where('id', '=', target.tenantId)
        .where(inScope(scope, 'id'))
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) throw new LegalHoldTargetNotFoundError(`tenant ${target.tenantId}`);
      tenantId = target.tenantId;
      audited = { type: 'tenant', id: target.tenantId };
    } else {
      const row = await trx
        .updateTable('mailboxes')
        .set({ legal_hold: value, updated_at: at })
        .where('id', '=', target.mailboxId)
        .where(inScope(scope))
        .returning('tenant_id')
        .executeTakeFirst();
      if (!row) throw new LegalHoldTargetNotFoundError(`mailbox ${target.mailboxId}`);
      tenantId = row.tenant_id;
      audited = { type: 'mailbox', id: target.mailboxId };
    }
    await writeAudit(trx, {
      tenantId,
      eventType: on ? 'legal_hold.set' : 'legal_hold.lifted',
      actor: opts.actor ?? systemActor,
      target: audited,
    });
  });
}
