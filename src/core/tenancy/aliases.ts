/**
 * Aliases (SPEC §1): extra addresses that deliver into one or more existing mailboxes of the same
 * tenant. An address is either a mailbox or an alias, never both.
 */
import type { Kysely } from 'kysely';
import { inScope, type Scope } from '../scope.js';
import { newId } from '../../store/db/database.js';
import type { AliasesTable, DB } from '../../store/db/types.js';
import { writeAudit, systemActor, type AuditActor } from '../../security/audit.js';
import { isId, pageSize, type TenancyContext } from './context.js';
import { parseAddress, tryParseAddress } from './addresses.js';
import { ConflictError, NotFoundError, ValidationError, isUniqueViolation } from './errors.js';
import type { Alias, AliasTarget, ListOptions } from './types.js';

/** Bounded fan-out: one inbound message never becomes more than this many deliveries per alias. */
export const MAX_ALIAS_TARGETS = 100;

export interface AddAliasInput {
  address: string;
  /** Mailbox addresses (or ids) of the same tenant; 1–100. */
  targets: string[];
}

function checkTargetList(targets: unknown): string[] {
  if (!Array.isArray(targets) || targets.length === 0) throw new ValidationError('an alias needs at least one target mailbox', { field: 'targets' });
  if (targets.length > MAX_ALIAS_TARGETS) {
    throw new ValidationError(`an alias has at most ${MAX_ALIAS_TARGETS} targets (got ${targets.length})`, { field: 'targets' });
  }
  const keys = targets.map((t) => {
    if (typeof t !== 'string') throw new ValidationError('alias targets must be mailbox addresses', { field: 'targets' });
    return isId(t) ? t : parseAddress(t, 'target').address;
  });
  return [...new Set(keys)];
}

async function resolveTargets(trx: Kysely<DB>, scope: Scope, tenantId: string, keys: string[]): Promise<AliasTarget[]> {
  const ids = keys.filter(isId);
  const addresses = keys.filter((k) => !isId(k));
  const rows = await trx
    .selectFrom('mailboxes')
    .select(['id', 'address'])
    .where(inScope(scope))
    .where('tenant_id', '=', tenantId)
    .where((eb) => eb.or([...(ids.length ? [eb('id', 'in', ids)] : []), ...(addresses.length ? [eb('address', 'in', addresses)] : [])]))
    .execute();
  // A mailbox of another tenant is reported exactly like a missing one.
  const unknown = keys.filter((k) => !rows.some((r) => r.id === k || r.address === k));
  if (unknown.length) throw new ValidationError(`unknown target mailbox(es): ${unknown.join(', ')}`, { field: 'targets', unknown });
  const byId = new Map(rows.map((r) => [r.id, { mailboxId: r.id, address: r.address }]));
  return [...byId.values()].sort((a, b) => (a.address < b.address ? -1 : 1));
}

export class Aliases {
  constructor(private readonly ctx: TenancyContext) {}

  async add(scope: Scope, input: AddAliasInput, actor: AuditActor = systemActor): Promise<Alias> {
    const { domain, address } = parseAddress(input.address);
    const keys = checkTargetList(input.targets);
    const exists = () => new ConflictError(`alias "${address}" already exists`, { field: 'address' });
    try {
      return await this.ctx.transaction(async (trx) => {
        const d = await trx.selectFrom('domains').selectAll().where(inScope(scope)).where('name', '=', domain).executeTakeFirst();
        if (!d) throw new NotFoundError(`domain "${domain}" not found`, { field: 'address' });
        await this.ctx.lockTenant(trx, scope, d.tenant_id);
        if (await trx.selectFrom('mailboxes').select('id').where(inScope(scope)).where('address', '=', address).executeTakeFirst()) {
          throw new ConflictError(`"${address}" is already a mailbox`, { field: 'address' });
        }
        if (await trx.selectFrom('aliases').select('id').where(inScope(scope)).where('address', '=', address).executeTakeFirst()) throw exists();
        const targets = await resolveTargets(trx, scope, d.tenant_id, keys);
        const row: AliasesTable = { id: newId(), tenant_id: d.tenant_id, domain_id: d.id, address, created_at: Date.now() };
        await trx.insertInto('aliases').values(row).execute();
        await trx
          .insertInto('alias_targets')
          .values(targets.map((t) => ({ alias_id: row.id, tenant_id: d.tenant_id, mailbox_id: t.mailboxId })))
          .execute();
        await writeAudit(trx, {
          tenantId: d.tenant_id,
          eventType: 'alias.created',
          actor,
          target: { type: 'alias', id: row.id },
          metadata: { address, targets: targets.map((t) => t.address) },
        });
        return { id: row.id, tenantId: row.tenant_id, domainId: row.domain_id, address, targets, createdAt: row.created_at };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw exists();
      throw err;
    }
  }

  /** Replaces the target list (1–100 mailboxes of the alias's tenant). */
  async setTargets(scope: Scope, ref: string, targets: string[], actor: AuditActor = systemActor): Promise<Alias> {
    const keys = checkTargetList(targets);
    return this.ctx.transaction(async (trx) => {
      const a = await this.row(trx, scope, ref);
      await this.ctx.lockTenant(trx, scope, a.tenant_id);
      const resolved = await resolveTargets(trx, scope, a.tenant_id, keys);
      await trx.deleteFrom('alias_targets').where(inScope(scope)).where('alias_id', '=', a.id).execute();
      await trx
        .insertInto('alias_targets')
        .values(resolved.map((t) => ({ alias_id: a.id, tenant_id: a.tenant_id, mailbox_id: t.mailboxId })))
        .execute();
      await writeAudit(trx, {
        tenantId: a.tenant_id,
        eventType: 'alias.updated',
        actor,
        target: { type: 'alias', id: a.id },
        metadata: { address: a.address, targets: resolved.map((t) => t.address) },
      });
      return { id: a.id, tenantId: a.tenant_id, domainId: a.domain_id, address: a.address, targets: resolved, createdAt: Number(a.created_at) };
    });
  }

  async list(scope: Scope, opts: ListOptions & { tenantId?: string; domainId?: string } = {}): Promise<Alias[]> {
    const rows = await this.ctx.kysely
      .selectFrom('aliases')
      .selectAll()
      .where(inScope(scope))
      .$if(opts.tenantId !== undefined, (q) => q.where('tenant_id', '=', opts.tenantId!))
      .$if(opts.domainId !== undefined, (q) => q.where('domain_id', '=', opts.domainId!))
      .$if(opts.after !== undefined, (q) => q.where('address', '>', opts.after!))
      .orderBy('address')
      .limit(pageSize(opts))
      .execute();
    return this.withTargets(this.ctx.kysely, scope, rows);
  }

  /** By id or address. */
  async get(scope: Scope, ref: string): Promise<Alias> {
    const row = await this.row(this.ctx.kysely, scope, ref);
    return (await this.withTargets(this.ctx.kysely, scope, [row]))[0];
  }

  async remove(scope: Scope, ref: string, actor: AuditActor = systemActor): Promise<void> {
    await this.ctx.transaction(async (trx) => {
      const a = await this.row(trx, scope, ref);
      await trx.deleteFrom('alias_targets').where(inScope(scope)).where('alias_id', '=', a.id).execute();
      await trx.deleteFrom('aliases').where(inScope(scope)).where('id', '=', a.id).execute();
      await writeAudit(trx, { tenantId: a.tenant_id, eventType: 'alias.removed', actor, target: { type: 'alias', id: a.id }, metadata: { address: a.address } });
    });
  }

  private async row(db: Kysely<DB>, scope: Scope, ref: string): Promise<AliasesTable> {
    const key = isId(ref) ? ref : tryParseAddress(ref)?.address ?? null;
    const row =
      key === null
        ? undefined
        : await db.selectFrom('aliases').selectAll().where(inScope(scope)).where(isId(ref) ? 'id' : 'address', '=', key).executeTakeFirst();
    if (!row) throw new NotFoundError(`alias "${ref}" not found`);
    return row;
  }

  private async withTargets(db: Kysely<DB>, scope: Scope, rows: AliasesTable[]): Promise<Alias[]> {
    if (rows.length === 0) return [];
    const targets = await db
      .selectFrom('alias_targets')
      .innerJoin('mailboxes', 'mailboxes.id', 'alias_targets.mailbox_id')
      .select(['alias_targets.alias_id', 'mailboxes.id', 'mailboxes.address'])
      .where(inScope(scope, 'alias_targets.tenant_id'))
      .where('alias_targets.alias_id', 'in', rows.map((r) => r.id))
      .orderBy('mailboxes.address')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      tenantId: r.tenant_id,
      domainId: r.domain_id,
      address: r.address,
      targets: targets.filter((t) => t.alias_id === r.id).map((t) => ({ mailboxId: t.id, address: t.address })),
      createdAt: Number(r.created_at),
    }));
  }
}
