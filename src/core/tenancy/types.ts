/**
 * What the tenancy service returns: plain objects in the glossary's words (SPEC §1), camel-cased,
 * with JSON columns decoded and booleans as booleans. Secrets (password hashes and their history)
 * never leave the service (SPEC §10).
 */
import type { Plan } from '../../config/schema.js';
import type { TenantStatus, UserRole } from '../../store/db/types.js';

export type { TenantStatus, UserRole };
export type LimitOverrides = Partial<Plan>;

export interface Tenant {
  id: string;
  name: string;
  status: TenantStatus;
  plan: string;
  /** Per-tenant overrides of the plan's limits (only the keys that differ). */
  limits: LimitOverrides;
  legalHold: boolean;
  retentionDays: number | null;
  usedBytes: number;
  createdAt: number;
  updatedAt: number;
  deletedAt: number | null;
  /** Every user of the tenant must sign in with TOTP (SPEC §10, issue 4). */
  mfaRequired: boolean;
}

export interface Domain {
  id: string;
  tenantId: string;
  /** Lower-case; IDNs as A-labels. */
  name: string;
  status: 'active' | 'disabled';
  catchAllMailboxId: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface User {
  id: string;
  tenantId: string;
  email: string;
  displayName: string;
  role: UserRole;
  /** Domain ids a domain_admin manages; empty for other roles. */
  domainScope: string[];
  status: 'active' | 'disabled';
  locale: string;
  createdAt: number;
  updatedAt: number;
  lastLoginAt: number | null;
}

export interface Mailbox {
  id: string;
  tenantId: string;
  domainId: string;
  userId: string | null;
  address: string;
  localPart: string;
  /** 0 = unlimited. */
  quotaBytes: number;
  usedBytes: number;
  legalHold: boolean;
  status: 'active' | 'disabled';
  createdAt: number;
  updatedAt: number;
}

export interface AliasTarget {
  mailboxId: string;
  address: string;
}

export interface Alias {
  id: string;
  tenantId: string;
  domainId: string;
  address: string;
  targets: AliasTarget[];
  createdAt: number;
}

/** Where mail for one envelope recipient goes (SMTP RCPT TO, local delivery of submitted mail). */
export interface RecipientResolution {
  tenantId: string;
  /** One or more mailboxes (an alias may expand to several); never empty. */
  mailboxIds: string[];
  /** How the address matched. */
  via: 'mailbox' | 'alias' | 'catch_all';
  /** The address that matched (after removing a +tag), or the domain for a catch-all. */
  matched: string;
  /** The `tag` of `user+tag@domain` when plus-addressing was used, else null. */
  subaddress: string | null;
}

/** Keyset paging: rows come sorted by their natural key (name, email, address); `after` is exclusive. */
export interface ListOptions {
  after?: string;
  /** Default 100, at most 1000. */
  limit?: number;
}
