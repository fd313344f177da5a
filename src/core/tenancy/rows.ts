/** Row → view mapping: decode JSON and 0/1 columns, drop secrets. */
import type { DomainsTable, MailboxesTable, TenantsTable, UsersTable } from '../../store/db/types.js';
import { parseLimitOverrides } from './limits.js';
import type { Domain, Mailbox, Tenant, User } from './types.js';

function jsonArray(text: string): string[] {
  try {
    const v = JSON.parse(text);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function toTenant(r: TenantsTable): Tenant {
  return {
    id: r.id,
    name: r.name,
    status: r.status,
    plan: r.plan,
    limits: parseLimitOverrides(r.limits_json),
    legalHold: Number(r.legal_hold) === 1,
    retentionDays: r.retention_days === null ? null : Number(r.retention_days),
    usedBytes: Number(r.used_bytes),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    deletedAt: r.deleted_at === null ? null : Number(r.deleted_at),
    mfaRequired: Number(r.mfa_required ?? 0) === 1,
  };
}

export function toDomain(r: DomainsTable): Domain {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    name: r.name,
    status: r.status,
    catchAllMailboxId: r.catch_all_mailbox_id,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** Deliberately takes the full row and copies named fields only: the hash columns cannot slip through. */
export function toUser(r: UsersTable): User {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    email: r.email,
    displayName: r.display_name,
    role: r.role,
    domainScope: jsonArray(r.domain_scope_json),
    status: r.status,
    locale: r.locale,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    lastLoginAt: r.last_login_at === null ? null : Number(r.last_login_at),
  };
}

export function toMailbox(r: MailboxesTable): Mailbox {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    domainId: r.domain_id,
    userId: r.user_id,
    address: r.address,
    localPart: r.local_part,
    quotaBytes: Number(r.quota_bytes),
    usedBytes: Number(r.used_bytes),
    legalHold: Number(r.legal_hold) === 1,
    status: r.status,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

export { jsonArray };
