/**
 * Mailboxes (SPEC §1): deliverable addresses on a tenant's domains, each holding folders. A new
 * mailbox gets its special folders (INBOX, Sent, Drafts, Junk, Trash, Archive) in the same
 * transaction, so a mailbox without an INBOX can never be observed.
 */
import type { Kysely } from 'kysely';
import { inScope, tenantScope, type Scope } from '../scope.js';
import { newId } from '../../store/db/database.js';
import type { DB, MailboxesTable } from '../../store/db/types.js';
import { writeAudit, systemActor, type AuditActor } from '../../security/audit.js';
import { pageSize, type TenancyContext } from './context.js';
import { parseAddress } from './addresses.js';
import { ConflictError, NotFoundError, ValidationError, isUniqueViolation } from './errors.js';
import { findMailboxRow, findUserRow } from './lookups.js';
import { removeMailboxContent } from './mailbox-content.js';
import { toMailbox } from './rows.js';
import type { ListOptions, Mailbox } from './types.js';

export interface AddMailboxInput {
  address: string;
  /** Owning user (id or e-mail) of the same tenant; optional. */
  user?: string;
  /** Default: the tenant's `mailbox_storage_bytes`; 0 = unlimited. */
  quotaBytes?: number;
}

function checkQuota(bytes: number): number {
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) {
    throw new ValidationError('quota must be a non-negative whole number of bytes (0 = unlimited)', { field: 'quotaBytes' });
  }
  return bytes;
}

async function ownerId(trx: Kysely<DB>, scope: Scope, tenantId: string, ref: string | null | undefined): Promise<string | null> {
  if (ref === undefined || ref === null) return null;
  const u = await findUserRow(trx, scope, ref);
  if (u.tenant_id !== tenantId) throw new ValidationError(`user "${ref}" is not in the mailbox's tenant`, { field: 'user' });
  return u.id;
}

export class Mailboxes {
  constructor(private readonly ctx: TenancyContext) {}

  async add(scope: Scope, input: AddMailboxInput, actor: AuditActor = systemActor): Promise<Mailbox> {
    const { localPart, domain, address } = parseAddress(input.address);
    const exists = () => new ConflictError(`mailbox "${address}" already exists`, { field: 'address' });
    try {
      return await this.ctx.transaction(async (trx) => {
        const d = await trx.selectFrom('domains').selectAll().where(inScope(scope)).where('name', '=', domain).executeTakeFirst();
        if (!d) throw new NotFoundError(`domain "${domain}" not found`, { field: 'address' });
        const tenant = await this.ctx.lockTenant(trx, scope, d.tenant_id);
        // The domain is the tenant's, so any alias or mailbox with this address is too: scoped checks suffice.
        if (await trx.selectFrom('aliases').select('id').where(inScope(scope)).where('address', '=', address).executeTakeFirst()) {
          throw new ConflictError(`"${address}" is already an alias`, { field: 'address' });
        }
        if (await trx.selectFrom('mailboxes').select('id').where(inScope(scope)).where('address', '=', address).executeTakeFirst()) throw exists();
        const quota = checkQuota(input.quotaBytes ?? this.ctx.effectiveLimits(tenant).mailbox_storage_bytes);
        const t = Date.now();
        const row: MailboxesTable = {
          id: newId(),
          tenant_id: d.tenant_id,
          domain_id: d.id,
          user_id: await ownerId(trx, scope, d.tenant_id, input.user),
          address,
          local_part: localPart,
          quota_bytes: quota,
          used_bytes: 0,
          legal_hold: 0,
          status: 'active',
          created_at: t,
          updated_at: t,
        };
        await trx.insertInto('mailboxes').values(row).execute();
        // Least privilege: the folder factory only ever sees the mailbox's own tenant.
        await this.ctx.createDefaultFolders(trx, tenantScope(d.tenant_id), row.id);
        await writeAudit(trx, {
          tenantId: d.tenant_id,
          eventType: 'mailbox.created',
          actor,
          target: { type: 'mailbox', id: row.id },
          metadata: { address, user_id: row.user_id, quota_bytes: quota },
        });
        return toMailbox(row);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw exists();
      throw err;
    }
  }

  async list(scope: Scope, opts: ListOptions & { tenantId?: string; domainId?: string; userId?: string } = {}): Promise<Mailbox[]> {
    const rows = await this.ctx.kysely
      .selectFrom('mailboxes')
      .selectAll()
      .where(inScope(scope))
      .$if(opts.tenantId !== undefined, (q) => q.where('tenant_id', '=', opts.tenantId!))
      .$if(opts.domainId !== undefined, (q) => q.where('domain_id', '=', opts.domainId!))
      .$if(opts.userId !== undefined, (q) => q.where('user_id', '=', opts.userId!))
      .$if(opts.after !== undefined, (q) => q.where('address', '>', opts.after!))
      .orderBy('address')
      .limit(pageSize(opts))
      .execute();
    return rows.map(toMailbox);
  }

  /** By id or address. */
  async get(scope: Scope, ref: string): Promise<Mailbox> {
    return toMailbox(await findMailboxRow(this.ctx.kysely, scope, ref));
  }

  async setQuota(scope: Scope, ref: string, quotaBytes: number, actor: AuditActor = systemActor): Promise<Mailbox> {
    const quota = checkQuota(quotaBytes);
    return this.ctx.transaction(async (trx) => {
      const m = await findMailboxRow(trx, scope, ref);
      const updated_at = Date.now();
      await trx.updateTable('mailboxes').set({ quota_bytes: quota, updated_at }).where('id', '=', m.id).where(inScope(scope)).execute();
      await writeAudit(trx, {
        tenantId: m.tenant_id,
        eventType: 'mailbox.quota_changed',
        actor,
        target: { type: 'mailbox', id: m.id },
        metadata: { address: m.address, from: Number(m.quota_bytes), to: quota },
      });
      return toMailbox({ ...m, quota_bytes: quota, updated_at });
    });
  }

  /** Sets (or with null clears) the owning user. */
  async setOwner(scope: Scope, ref: string, user: string | null, actor: AuditActor = systemActor): Promise<Mailbox> {
    return this.ctx.transaction(async (trx) => {
      const m = await findMailboxRow(trx, scope, ref);
      const user_id = await ownerId(trx, scope, m.tenant_id, user);
      const updated_at = Date.now();
      await trx.updateTable('mailboxes').set({ user_id, updated_at }).where('id', '=', m.id).where(inScope(scope)).execute();
      await writeAudit(trx, {
        tenantId: m.tenant_id,
        eventType: 'mailbox.owner_changed',
        actor,
        target: { type: 'mailbox', id: m.id },
        metadata: { address: m.address, from: m.user_id, to: user_id },
      });
      return toMailbox({ ...m, user_id, updated_at });
    });
  }

  /**
   * Removes a mailbox with its folders. Refused while it holds messages unless `force`, and always
   * while it or its tenant is under legal hold (SPEC §2: legal hold suspends purging). Aliases left
   * without any target are removed with it; a catch-all pointing at it is cleared. Its messages go
   * as described in mailbox-content.ts (blobs become orphans for `mairust db check --fix`).
   */
  async remove(scope: Scope, ref: string, opts: { force?: boolean } = {}, actor: AuditActor = systemActor): Promise<void> {
    await this.ctx.transaction(async (trx) => {
      const m = await findMailboxRow(trx, scope, ref);
      const tenant = await this.ctx.lockTenant(trx, scope, m.tenant_id, false);
      if (Number(m.legal_hold) === 1 || Number(tenant.legal_hold) === 1) {
        throw new ConflictError(`mailbox "${m.address}" is under legal hold and cannot be removed`);
      }
      const held = await trx
        .selectFrom('folder_entries')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where(inScope(scope))
        .where('mailbox_id', '=', m.id)
        .where('deleted_at', 'is', null)
        .executeTakeFirstOrThrow();
      const messages = Number(held.n);
      if (messages > 0 && !opts.force) {
        throw new ConflictError(`mailbox "${m.address}" holds ${messages} message(s); remove them first or force the removal`, { messages });
      }
      const aliasIds = (
        await trx.selectFrom('alias_targets').select('alias_id').where(inScope(scope)).where('mailbox_id', '=', m.id).execute()
      ).map((r) => r.alias_id);
      const content = await removeMailboxContent(trx, this.ctx.db.dialect, scope, m);
      await trx.deleteFrom('folders').where(inScope(scope)).where('mailbox_id', '=', m.id).execute();
      await trx.deleteFrom('alias_targets').where(inScope(scope)).where('mailbox_id', '=', m.id).execute();
      const emptied: string[] = [];
      for (const aliasId of aliasIds) {
        const left = await trx.selectFrom('alias_targets').select('mailbox_id').where(inScope(scope)).where('alias_id', '=', aliasId).executeTakeFirst();
        if (left) continue;
        const a = await trx.selectFrom('aliases').select('address').where(inScope(scope)).where('id', '=', aliasId).executeTakeFirst();
        await trx.deleteFrom('aliases').where(inScope(scope)).where('id', '=', aliasId).execute();
        if (a) emptied.push(a.address);
      }
      await trx
        .updateTable('domains')
        .set({ catch_all_mailbox_id: null, updated_at: Date.now() })
        .where(inScope(scope))
        .where('catch_all_mailbox_id', '=', m.id)
        .execute();
      await trx.deleteFrom('mailboxes').where(inScope(scope)).where('id', '=', m.id).execute();
      await writeAudit(trx, {
        tenantId: m.tenant_id,
        eventType: 'mailbox.removed',
        actor,
        target: { type: 'mailbox', id: m.id },
        metadata: { address: m.address, messages, entries_removed: content.entries, forced: !!opts.force, removed_aliases: emptied },
      });
    });
  }
}
