/**
 * Recipient resolution for delivery (SPEC §3.1 step 2): which mailboxes an envelope recipient
 * reaches. Order: exact mailbox → alias → the same two without a `+tag` (plus-addressing) → the
 * domain's catch-all mailbox. A match on a disabled mailbox ends the search (mail for it is
 * refused, not diverted to the catch-all).
 *
 * Mail is accepted for suspended tenants (SPEC §9 only stops their logins and sending) but not for
 * deleted ones, nor for disabled domains.
 */
import type { Kysely } from 'kysely';
import { inScope, type Scope } from '../scope.js';
import type { DB } from '../../store/db/types.js';
import type { TenancyContext } from './context.js';
import { splitSubaddress, tryParseAddress } from './addresses.js';
import type { RecipientResolution } from './types.js';

type Match = { status: 'found'; mailboxIds: string[]; via: 'mailbox' | 'alias' } | { status: 'blocked' } | { status: 'none' };

async function lookup(db: Kysely<DB>, scope: Scope, address: string): Promise<Match> {
  const mailbox = await db.selectFrom('mailboxes').select(['id', 'status']).where(inScope(scope)).where('address', '=', address).executeTakeFirst();
  if (mailbox) return mailbox.status === 'active' ? { status: 'found', mailboxIds: [mailbox.id], via: 'mailbox' } : { status: 'blocked' };
  const alias = await db.selectFrom('aliases').select('id').where(inScope(scope)).where('address', '=', address).executeTakeFirst();
  if (!alias) return { status: 'none' };
  const targets = await db
    .selectFrom('alias_targets')
    .innerJoin('mailboxes', 'mailboxes.id', 'alias_targets.mailbox_id')
    .select('mailboxes.id')
    .where(inScope(scope, 'alias_targets.tenant_id'))
    .where('alias_targets.alias_id', '=', alias.id)
    .where('mailboxes.status', '=', 'active')
    .orderBy('mailboxes.address')
    .execute();
  return targets.length ? { status: 'found', mailboxIds: targets.map((t) => t.id), via: 'alias' } : { status: 'blocked' };
}

export async function resolveRecipient(ctx: TenancyContext, scope: Scope, input: string): Promise<RecipientResolution | null> {
  const parsed = tryParseAddress(input);
  if (!parsed) return null;
  const db = ctx.kysely;
  const domain = await db
    .selectFrom('domains')
    .innerJoin('tenants', 'tenants.id', 'domains.tenant_id')
    .select(['domains.tenant_id', 'domains.status', 'domains.catch_all_mailbox_id', 'tenants.status as tenant_status'])
    .where(inScope(scope, 'domains.tenant_id'))
    .where('domains.name', '=', parsed.domain)
    .executeTakeFirst();
  if (!domain || domain.status !== 'active' || domain.tenant_status === 'deleted') return null;
  const tenantId = domain.tenant_id;

  const exact = await lookup(db, scope, parsed.address);
  if (exact.status === 'found') return { tenantId, mailboxIds: exact.mailboxIds, via: exact.via, matched: parsed.address, subaddress: null };
  if (exact.status === 'blocked') return null;

  const sub = splitSubaddress(parsed.localPart);
  if (sub) {
    const base = `${sub.base}@${parsed.domain}`;
    const plain = await lookup(db, scope, base);
    if (plain.status === 'found') return { tenantId, mailboxIds: plain.mailboxIds, via: plain.via, matched: base, subaddress: sub.tag };
    if (plain.status === 'blocked') return null;
  }

  if (domain.catch_all_mailbox_id) {
    const catchAll = await db
      .selectFrom('mailboxes')
      .select('id')
      .where(inScope(scope))
      .where('id', '=', domain.catch_all_mailbox_id)
      .where('status', '=', 'active')
      .executeTakeFirst();
    if (catchAll) return { tenantId, mailboxIds: [catchAll.id], via: 'catch_all', matched: parsed.domain, subaddress: null };
  }
  return null;
}
