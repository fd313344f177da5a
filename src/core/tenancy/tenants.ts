/**
 * Tenants (SPEC §9): the unit of isolation and billing. Only the system scope (super-admin, CLI)
 * creates tenants, sees all of them, changes plans and limits, and suspends or deletes; a tenant
 * scope sees its own tenant only.
 *
 * Deletion is soft (`status = 'deleted'`, `deleted_at` set): a later purge removes the data after
 * the 30-day grace period; until then `activate` restores the tenant.
 */
import { inScope, type Scope } from '../scope.js';
import { newId } from '../../store/db/database.js';
import type { TenantsTable } from '../../store/db/types.js';
import { writeAudit, systemActor, type AuditActor } from '../../security/audit.js';
import type { Plan } from '../../config/schema.js';
import { isId, pageSize, type TenancyContext } from './context.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError, isUniqueViolation } from './errors.js';
import { applyLimitPatch, parseLimitOverrides } from './limits.js';
import { toTenant } from './rows.js';
import type { ListOptions, Tenant, TenantStatus } from './types.js';

export const MAX_TENANT_NAME = 64;
// A readable slug-like name used on the command line (`--tenant acme`); never UUID-shaped, so a
// reference is unambiguously either an id or a name.
const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]*$/;

export interface CreateTenantInput {
  name: string;
  /** Default: config `default_plan`. */
  plan?: string;
  /** Limit overrides (plan keys); null removes an override. */
  limits?: Record<string, number | null>;
}

export interface UpdateTenantInput {
  name?: string;
  plan?: string;
  limits?: Record<string, number | null>;
  /** Per-tenant retention of deleted messages in days; null = config default. */
  retentionDays?: number | null;
  legalHold?: boolean;
}

export interface TenantUsage {
  users: number;
  domains: number;
  mailboxes: number;
  aliases: number;
  usedBytes: number;
  limits: Plan;
}

const STATUS_EVENT: Record<TenantStatus, string> = {
  active: 'tenant.activated',
  suspended: 'tenant.suspended',
  deleted: 'tenant.deleted',
};

function checkName(input: string): string {
  const name = input.trim();
  if (name === '' || name.length > MAX_TENANT_NAME || !TENANT_NAME.test(name) || isId(name)) {
    throw new ValidationError(
      `invalid tenant name "${name.slice(0, 80)}": use 1–${MAX_TENANT_NAME} letters, digits, spaces, ".", "_" or "-", starting with a letter or digit`,
      { field: 'name' },
    );
  }
  return name;
}

function requireSystem(scope: Scope, action: string): void {
  if (scope.kind !== 'system') throw new ForbiddenError(`only a super-admin may ${action}`);
}

export class Tenants {
  constructor(private readonly ctx: TenancyContext) {}

  private checkPlan(plan: string): string {
    if (!this.ctx.plans[plan]) {
      throw new ValidationError(`unknown plan "${plan}" (configured: ${Object.keys(this.ctx.plans).join(', ')})`, { field: 'plan' });
    }
    return plan;
  }

  async create(scope: Scope, input: CreateTenantInput, actor: AuditActor = systemActor): Promise<Tenant> {
    requireSystem(scope, 'create tenants');
    const name = checkName(input.name);
    const plan = this.checkPlan(input.plan ?? this.ctx.defaultPlan);
    const limits = applyLimitPatch({}, input.limits ?? {});
    const t = Date.now();
    const row: TenantsTable = {
      id: newId(),
      name,
      status: 'active',
      plan,
      limits_json: JSON.stringify(limits),
      legal_hold: 0,
      retention_days: null,
      used_bytes: 0,
      created_at: t,
      updated_at: t,
      deleted_at: null,
      mfa_required: 0,
    };
    try {
      await this.ctx.transaction(async (trx) => {
        await trx.insertInto('tenants').values(row).execute();
        await writeAudit(trx, {
          tenantId: row.id,
          eventType: 'tenant.created',
          actor,
          target: { type: 'tenant', id: row.id },
          metadata: { name, plan, limits },
        });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a tenant named "${name}" already exists`, { field: 'name' });
      throw err;
    }
    return toTenant(row);
  }

  /** System scope: every tenant (deleted ones only on request); tenant scope: its own tenant. */
  async list(scope: Scope, opts: ListOptions & { includeDeleted?: boolean; status?: TenantStatus } = {}): Promise<Tenant[]> {
    const rows = await this.ctx.kysely
      .selectFrom('tenants')
      .selectAll()
      .where(inScope(scope, 'id'))
      .$if(opts.status !== undefined, (q) => q.where('status', '=', opts.status!))
      .$if(!opts.includeDeleted && opts.status === undefined, (q) => q.where('status', '!=', 'deleted'))
      .$if(opts.after !== undefined, (q) => q.where('name', '>', opts.after!))
      .orderBy('name')
      .limit(pageSize(opts))
      .execute();
    return rows.map(toTenant);
  }

  /** By id or name. */
  async get(scope: Scope, ref: string): Promise<Tenant> {
    return toTenant(await this.row(scope, ref));
  }

  private async row(scope: Scope, ref: string): Promise<TenantsTable> {
    const row = await this.ctx.kysely
      .selectFrom('tenants')
      .selectAll()
      .where(inScope(scope, 'id'))
      .where(isId(ref) ? 'id' : 'name', '=', isId(ref) ? ref : ref.trim())
      .executeTakeFirst();
    if (!row) throw new NotFoundError(`tenant "${ref}" not found`);
    return row;
  }

  async update(scope: Scope, ref: string, patch: UpdateTenantInput, actor: AuditActor = systemActor): Promise<Tenant> {
    const before = await this.row(scope, ref);
    requireSystem(scope, 'change a tenant\'s name, plan, limits or retention');
    const changes: Partial<TenantsTable> = {};
    const metadata: Record<string, unknown> = {};
    if (patch.name !== undefined) changes.name = metadata.name = checkName(patch.name);
    if (patch.plan !== undefined) changes.plan = metadata.plan = this.checkPlan(patch.plan);
    if (patch.limits !== undefined) {
      const limits = applyLimitPatch(parseLimitOverrides(before.limits_json), patch.limits);
      changes.limits_json = JSON.stringify(limits);
      metadata.limits = limits;
    }
    if (patch.retentionDays !== undefined) {
      const d = patch.retentionDays;
      if (d !== null && (!Number.isInteger(d) || d < 0 || d > 3650)) {
        throw new ValidationError('retention days must be an integer from 0 to 3650, or null for the default', { field: 'retentionDays' });
      }
      changes.retention_days = metadata.retention_days = d;
    }
    if (patch.legalHold !== undefined) {
      changes.legal_hold = patch.legalHold ? 1 : 0;
      metadata.legal_hold = patch.legalHold;
    }
    if (Object.keys(changes).length === 0) return toTenant(before);
    changes.updated_at = Date.now();
    try {
      await this.ctx.transaction(async (trx) => {
        await trx.updateTable('tenants').set(changes).where('id', '=', before.id).where(inScope(scope, 'id')).execute();
        await writeAudit(trx, { tenantId: before.id, eventType: 'tenant.updated', actor, target: { type: 'tenant', id: before.id }, metadata });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a tenant named "${changes.name}" already exists`, { field: 'name' });
      throw err;
    }
    return this.get(scope, before.id);
  }

  /**
   * active ⇄ suspended, → deleted (soft, `deleted_at` set), deleted → active (restore in grace).
   * Suspended tenants cannot log in or send (SPEC §9); mail to them is still accepted.
   */
  async setStatus(scope: Scope, ref: string, status: TenantStatus, actor: AuditActor = systemActor): Promise<Tenant> {
    const before = await this.row(scope, ref);
    requireSystem(scope, 'suspend, activate or delete tenants');
    if (!(status in STATUS_EVENT)) throw new ValidationError(`unknown tenant status "${status}"`, { field: 'status' });
    if (before.status === status) return toTenant(before);
    const t = Date.now();
    await this.ctx.transaction(async (trx) => {
      await trx
        .updateTable('tenants')
        .set({ status, updated_at: t, deleted_at: status === 'deleted' ? t : null })
        .where('id', '=', before.id)
        .where(inScope(scope, 'id'))
        .execute();
      await writeAudit(trx, {
        tenantId: before.id,
        eventType: STATUS_EVENT[status],
        actor,
        target: { type: 'tenant', id: before.id },
        metadata: { from: before.status, to: status },
      });
    });
    return this.get(scope, before.id);
  }

  /**
   * The tenant's MFA policy: when on, every user must sign in with TOTP (SPEC §10). Unlike the
   * plan and limits, a tenant admin sets this for their own tenant, so a tenant scope may call it.
   */
  async setMfaRequired(scope: Scope, ref: string, required: boolean, actor: AuditActor = systemActor): Promise<Tenant> {
    const before = await this.row(scope, ref);
    if (Number(before.mfa_required) === (required ? 1 : 0)) return toTenant(before);
    await this.ctx.transaction(async (trx) => {
      await trx
        .updateTable('tenants')
        .set({ mfa_required: required ? 1 : 0, updated_at: Date.now() })
        .where('id', '=', before.id)
        .where(inScope(scope, 'id'))
        .execute();
      await writeAudit(trx, { tenantId: before.id, eventType: 'tenant.mfa_policy_changed', actor, target: { type: 'tenant', id: before.id }, metadata: { mfa_required: required } });
    });
    return this.get(scope, before.id);
  }

  /** Plan ⊕ overrides. */
  effectiveLimits(tenant: Pick<Tenant, 'plan' | 'limits'>): Plan {
    return { ...this.ctx.planOf(tenant.plan), ...tenant.limits };
  }

  /** Counts against the effective limits (`/api/v1/tenant/usage`). */
  async usage(scope: Scope, ref: string): Promise<TenantUsage> {
    const t = await this.row(scope, ref);
    const count = async (table: 'users' | 'domains' | 'mailboxes' | 'aliases') => {
      const r = await this.ctx.kysely
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('tenant_id', '=', t.id)
        .where(inScope(scope))
        .executeTakeFirstOrThrow();
      return Number(r.n);
    };
    return {
      users: await count('users'),
      domains: await count('domains'),
      mailboxes: await count('mailboxes'),
      aliases: await count('aliases'),
      usedBytes: Number(t.used_bytes),
      limits: this.ctx.effectiveLimits(t),
    };
  }
}
