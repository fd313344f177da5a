/**
 * Domains (SPEC §9): a mail domain belongs to exactly one tenant, so its name is unique across all
 * tenants. A second tenant claiming a hosted domain gets a CONFLICT that does not say who holds it.
 */
import { inScope, type Scope } from '../scope.js';
import { newId } from '../../store/db/database.js';
import type { DomainsTable } from '../../store/db/types.js';
import { writeAudit, systemActor, type AuditActor } from '../../security/audit.js';
import { pageSize, type TenancyContext } from './context.js';
import { normaliseDomain } from './addresses.js';
import { ConflictError, ValidationError, isUniqueViolation } from './errors.js';
import { assertBelowLimit } from './limits.js';
import { countWhere, findDomainRow, findMailboxRow } from './lookups.js';
import { jsonArray, toDomain } from './rows.js';
import type { Domain, ListOptions } from './types.js';

export interface AddDomainInput {
  /** Required in the system scope; a tenant scope always adds to its own tenant. */
  tenantId?: string;
  name: string;
}

function alreadyHosted(name: string): ConflictError {
  // Same words whether the holder is this tenant or another: the answer must not reveal ownership.
  return new ConflictError(`domain "${name}" is already registered`, { field: 'name' });
}

export class Domains {
  constructor(private readonly ctx: TenancyContext) {}

  async add(scope: Scope, input: AddDomainInput, actor: AuditActor = systemActor): Promise<Domain> {
    const tenantId = this.ctx.targetTenantId(scope, input.tenantId);
    const name = normaliseDomain(input.name, 'domain name');
    const t = Date.now();
    const row: DomainsTable = { id: newId(), tenant_id: tenantId, name, status: 'active', catch_all_mailbox_id: null, created_at: t, updated_at: t };
    try {
      await this.ctx.transaction(async (trx) => {
        const tenant = await this.ctx.lockTenant(trx, scope, tenantId);
        // Deliberately unscoped: global uniqueness is a property of all tenants together. Only
        // existence is read, never the owning row.
        const taken = await trx.selectFrom('domains').select('id').where('name', '=', name).executeTakeFirst();
        if (taken) throw alreadyHosted(name);
        const limits = this.ctx.effectiveLimits(tenant);
        assertBelowLimit('max_domains', limits.max_domains, await countWhere(trx, scope, 'domains', 'tenant_id', tenantId));
        await trx.insertInto('domains').values(row).execute();
        await writeAudit(trx, { tenantId, eventType: 'domain.created', actor, target: { type: 'domain', id: row.id }, metadata: { name } });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw alreadyHosted(name);
      throw err;
    }
    return toDomain(row);
  }

  async list(scope: Scope, opts: ListOptions & { tenantId?: string } = {}): Promise<Domain[]> {
    const rows = await this.ctx.kysely
      .selectFrom('domains')
      .selectAll()
      .where(inScope(scope))
      .$if(opts.tenantId !== undefined, (q) => q.where('tenant_id', '=', opts.tenantId!))
      .$if(opts.after !== undefined, (q) => q.where('name', '>', opts.after!))
      .orderBy('name')
      .limit(pageSize(opts))
      .execute();
    return rows.map(toDomain);
  }

  /** By id or name (Unicode names are converted to A-labels first). */
  async get(scope: Scope, ref: string): Promise<Domain> {
    return toDomain(await findDomainRow(this.ctx.kysely, scope, ref));
  }

  /** Refused while mailboxes or aliases use the domain: removing it would orphan their mail. */
  async remove(scope: Scope, ref: string, actor: AuditActor = systemActor): Promise<void> {
    await this.ctx.transaction(async (trx) => {
      const d = await findDomainRow(trx, scope, ref);
      await this.ctx.lockTenant(trx, scope, d.tenant_id, false);
      const mailboxes = await countWhere(trx, scope, 'mailboxes', 'domain_id', d.id);
      const aliases = await countWhere(trx, scope, 'aliases', 'domain_id', d.id);
      if (mailboxes > 0 || aliases > 0) {
        throw new ConflictError(
          `domain "${d.name}" still has ${mailboxes} mailbox(es) and ${aliases} alias(es); remove them first`,
          { mailboxes, aliases },
        );
      }
      // domain_admins keep no stale reference to the removed domain.
      const admins = await trx
        .selectFrom('users')
        .select(['id', 'domain_scope_json'])
        .where(inScope(scope))
        .where('tenant_id', '=', d.tenant_id)
        .where('role', '=', 'domain_admin')
        .execute();
      for (const u of admins) {
        const ids = jsonArray(u.domain_scope_json);
        if (!ids.includes(d.id)) continue;
        await trx
          .updateTable('users')
          .set({ domain_scope_json: JSON.stringify(ids.filter((x) => x !== d.id)), updated_at: Date.now() })
          .where('id', '=', u.id)
          .where(inScope(scope))
          .execute();
      }
      await trx.deleteFrom('domains').where('id', '=', d.id).where(inScope(scope)).execute();
      await writeAudit(trx, { tenantId: d.tenant_id, eventType: 'domain.removed', actor, target: { type: 'domain', id: d.id }, metadata: { name: d.name } });
    });
  }

  /** A disabled domain accepts no mail (its recipients resolve to nothing). */
  async setStatus(scope: Scope, ref: string, status: 'active' | 'disabled', actor: AuditActor = systemActor): Promise<Domain> {
    if (status !== 'active' && status !== 'disabled') throw new ValidationError(`unknown domain status "${status}"`, { field: 'status' });
    return this.ctx.transaction(async (trx) => {
      const d = await findDomainRow(trx, scope, ref);
      await this.ctx.lockTenant(trx, scope, d.tenant_id);
      if (d.status === status) return toDomain(d);
      const updated_at = Date.now();
      await trx.updateTable('domains').set({ status, updated_at }).where('id', '=', d.id).where(inScope(scope)).execute();
      await writeAudit(trx, { tenantId: d.tenant_id, eventType: status === 'active' ? 'domain.enabled' : 'domain.disabled', actor, target: { type: 'domain', id: d.id }, metadata: { name: d.name } });
      return toDomain({ ...d, status, updated_at });
    });
  }

  /**
   * Sets (or with null clears) the mailbox that receives mail for unknown addresses of the domain.
   * The mailbox must belong to the same tenant (it may be on another of its domains).
   */
  async setCatchAll(scope: Scope, ref: string, mailboxRef: string | null, actor: AuditActor = systemActor): Promise<Domain> {
    return this.ctx.transaction(async (trx) => {
      const d = await findDomainRow(trx, scope, ref);
      await this.ctx.lockTenant(trx, scope, d.tenant_id);
      let mailboxId: string | null = null;
      let mailboxAddress: string | null = null;
      if (mailboxRef !== null) {
        const m = await findMailboxRow(trx, scope, mailboxRef);
        if (m.tenant_id !== d.tenant_id) throw new ValidationError(`mailbox "${mailboxRef}" is not in the domain's tenant`, { field: 'mailbox' });
        mailboxId = m.id;
        mailboxAddress = m.address;
      }
      const updated_at = Date.now();
      await trx.updateTable('domains').set({ catch_all_mailbox_id: mailboxId, updated_at }).where('id', '=', d.id).where(inScope(scope)).execute();
      await writeAudit(trx, {
        tenantId: d.tenant_id,
        eventType: 'domain.catch_all_changed',
        actor,
        target: { type: 'domain', id: d.id },
        metadata: { name: d.name, mailbox_id: mailboxId, mailbox: mailboxAddress },
      });
      return toDomain({ ...d, catch_all_mailbox_id: mailboxId, updated_at });
    });
  }
}
