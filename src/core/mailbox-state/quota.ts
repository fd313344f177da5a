/**
 * Storage quotas (SPEC §4 "Quotas"): per mailbox (`mailboxes.quota_bytes`) and per tenant (its
 * plan's `storage_bytes`, overridable in `tenants.limits_json`); 0 means unlimited.
 *
 * Accounting: every live folder entry counts its message size against its mailbox, even when
 * several entries share one stored message (as IMAP QUOTA and most servers count); the tenant's
 * `used_bytes` is the sum over its mailboxes. An expunged entry stops counting at once (the bytes
 * are physically freed later by the purge job).
 *
 * Exactness under concurrency: usage changes are single `UPDATE … SET used_bytes = used_bytes + n`
 * statements, and an increase carries its limit check in the same statement's WHERE clause, so
 * two concurrent deliveries can never both squeeze under the limit.
 */
import { sql, type SqlBool } from 'kysely';
import type { Plan } from '../../config/schema.js';
import { inScope, type Scope } from '../scope.js';
import { readMailbox, stateDb, type Tx } from './db.js';
import { NotFoundError, QuotaExceededError } from './errors.js';
import type { Ctx } from './context.js';
import type { Quota, TenantStorageLimit } from './types.js';

function limitsOverride(limitsJson: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(limitsJson);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Default resolver: the tenant row's own `limits_json.storage_bytes`, else unlimited. */
export const tenantStorageLimitFromRow: TenantStorageLimit = (tenant) => {
  const v = limitsOverride(tenant.limitsJson).storage_bytes;
  return typeof v === 'number' && v >= 0 ? v : 0;
};

/**
 * Resolver for the composition root: per-tenant override, else the tenant's plan, else the default
 * plan (config `plans` / `default_plan`). A getter so a config reload takes effect at once.
 */
export function tenantStorageLimitFromPlans(get: () => { plans: Record<string, Plan>; defaultPlan: string }): TenantStorageLimit {
  return (tenant) => {
    const override = limitsOverride(tenant.limitsJson).storage_bytes;
    if (typeof override === 'number' && override >= 0) return override;
    const { plans, defaultPlan } = get();
    return (plans[tenant.plan] ?? plans[defaultPlan])?.storage_bytes ?? 0;
  };
}

async function tenantLimit(ctx: Ctx, trx: Tx, tenantId: string): Promise<{ limit: number; used: number }> {
  const t = await trx.selectFrom('tenants').select(['id', 'plan', 'limits_json', 'used_bytes']).where('id', '=', tenantId).executeTakeFirst();
  if (!t) throw new NotFoundError('tenant', tenantId);
  return { limit: ctx.tenantStorageLimit({ id: t.id, plan: t.plan, limitsJson: t.limits_json }), used: Number(t.used_bytes) };
}

/** `used_bytes + delta`, never below zero (a release can never make usage negative). */
function addClamped(delta: number) {
  return sql<number>`CASE WHEN used_bytes + ${delta} < 0 THEN 0 ELSE used_bytes + ${delta} END`;
}

/**
 * Applies usage changes of one tenant: mailboxes in ascending id order, then the tenant (the lock
 * order of db.ts). Increases are refused with QuotaExceededError, which rolls back the caller's
 * transaction so nothing of the change is written.
 */
export async function applyUsage(ctx: Ctx, trx: Tx, tenantId: string, deltas: Map<string, number>): Promise<void> {
  let tenantDelta = 0;
  for (const mailboxId of [...deltas.keys()].sort()) {
    const delta = deltas.get(mailboxId)!;
    if (delta === 0) continue;
    tenantDelta += delta;
    let q = trx.updateTable('mailboxes').set({ used_bytes: addClamped(delta) }).where('id', '=', mailboxId);
    if (delta > 0) q = q.where((eb) => eb.or([eb('quota_bytes', '=', 0), eb(eb('used_bytes', '+', delta), '<=', eb.ref('quota_bytes'))]));
    const done = await q.returning('used_bytes').executeTakeFirst();
    if (!done) {
      const m = await trx.selectFrom('mailboxes').select(['used_bytes', 'quota_bytes']).where('id', '=', mailboxId).executeTakeFirst();
      if (!m) throw new NotFoundError('mailbox', mailboxId);
      throw new QuotaExceededError('mailbox', mailboxId, Number(m.used_bytes), Number(m.quota_bytes), delta);
    }
  }
  if (tenantDelta === 0) return;
  const { limit } = tenantDelta > 0 ? await tenantLimit(ctx, trx, tenantId) : { limit: 0 };
  let q = trx.updateTable('tenants').set({ used_bytes: addClamped(tenantDelta) }).where('id', '=', tenantId);
  if (tenantDelta > 0 && limit > 0) q = q.where(sql<SqlBool>`used_bytes + ${tenantDelta} <= ${limit}`);
  const done = await q.returning('used_bytes').executeTakeFirst();
  if (!done) {
    const { used } = await tenantLimit(ctx, trx, tenantId);
    throw new QuotaExceededError('tenant', tenantId, used, limit, tenantDelta);
  }
}

/**
 * Early, non-locking check that `bytes` more would fit (SMTP RCPT/SIZE, APPEND before upload).
 * The binding check happens again inside the delivering transaction.
 */
export async function checkQuota(ctx: Ctx, scope: Scope, mailboxId: string, bytes: number): Promise<void> {
  const trx = stateDb(ctx.db);
  const m = await readMailbox(trx, scope, mailboxId);
  const quota = Number(m.quota_bytes);
  if (quota > 0 && Number(m.used_bytes) + bytes > quota) {
    throw new QuotaExceededError('mailbox', mailboxId, Number(m.used_bytes), quota, bytes);
  }
  const t = await tenantLimit(ctx, trx, m.tenant_id);
  if (t.limit > 0 && t.used + bytes > t.limit) throw new QuotaExceededError('tenant', m.tenant_id, t.used, t.limit, bytes);
}

export async function getQuota(ctx: Ctx, scope: Scope, mailboxId: string): Promise<Quota> {
  const m = await readMailbox(stateDb(ctx.db), scope, mailboxId);
  return { usedBytes: Number(m.used_bytes), limitBytes: Number(m.quota_bytes) };
}

export async function getTenantQuota(ctx: Ctx, scope: Scope, tenantId: string): Promise<Quota> {
  const trx = stateDb(ctx.db);
  const row = await trx.selectFrom('tenants').select('id').where('id', '=', tenantId).where(inScope(scope, 'id')).executeTakeFirst();
  if (!row) throw new NotFoundError('tenant', tenantId);
  const t = await tenantLimit(ctx, trx, tenantId);
  return { usedBytes: t.used, limitBytes: t.limit };
}
