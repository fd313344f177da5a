/**
 * Scoped single-row lookups by id or natural key, shared by the tenancy modules. A row outside the
 * scope and a missing row give the same NotFoundError. Natural keys are normalised first; a key
 * that cannot be valid simply is not found.
 */
import type { Kysely } from 'kysely';
import type { DB, DomainsTable, MailboxesTable, UsersTable } from '../../store/db/types.js';
import { inScope, type Scope } from '../scope.js';
import { isId } from './context.js';
import { normaliseDomain, tryParseAddress } from './addresses.js';
import { LOGIN_EMAIL } from './roles.js';
import { NotFoundError } from './errors.js';

function tryDomain(name: string): string | null {
  try {
    return normaliseDomain(name);
  } catch {
    return null;
  }
}

export async function findDomainRow(db: Kysely<DB>, scope: Scope, ref: string): Promise<DomainsTable> {
  const key = isId(ref) ? ref : tryDomain(ref);
  const row =
    key === null
      ? undefined
      : await db
          .selectFrom('domains')
          .selectAll()
          .where(inScope(scope))
          .where(isId(ref) ? 'id' : 'name', '=', key)
          .executeTakeFirst();
  if (!row) throw new NotFoundError(`domain "${ref}" not found`);
  return row;
}

export async function findMailboxRow(db: Kysely<DB>, scope: Scope, ref: string): Promise<MailboxesTable> {
  const key = isId(ref) ? ref : tryParseAddress(ref)?.address ?? null;
  const row =
    key === null
      ? undefined
      : await db
          .selectFrom('mailboxes')
          .selectAll()
          .where(inScope(scope))
          .where(isId(ref) ? 'id' : 'address', '=', key)
          .executeTakeFirst();
  if (!row) throw new NotFoundError(`mailbox "${ref}" not found`);
  return row;
}

export async function findUserRow(db: Kysely<DB>, scope: Scope, ref: string): Promise<UsersTable> {
  const key = isId(ref) ? ref : tryParseAddress(ref, LOGIN_EMAIL)?.address ?? null;
  const row =
    key === null
      ? undefined
      : await db
          .selectFrom('users')
          .selectAll()
          .where(inScope(scope))
          .where(isId(ref) ? 'id' : 'email', '=', key)
          .executeTakeFirst();
  if (!row) throw new NotFoundError(`user "${ref}" not found`);
  return row;
}

export async function countWhere(
  db: Kysely<DB>,
  scope: Scope,
  table: 'users' | 'domains' | 'mailboxes' | 'aliases',
  column: 'tenant_id' | 'domain_id',
  value: string,
): Promise<number> {
  const r = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where(inScope(scope))
    .where(column as 'tenant_id', '=', value)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}
