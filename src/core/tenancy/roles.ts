/**
 * Roles (SPEC §9): `super_admin` (everything, system scope), `tenant_admin` (its tenant),
 * `domain_admin` (the listed domains of its tenant), `user` (its own mailboxes).
 */
import type { DomainRules } from './addresses.js';
import type { User, UserRole } from './types.js';

export const ROLES: readonly UserRole[] = ['super_admin', 'tenant_admin', 'domain_admin', 'user'];

export function isRole(value: string): value is UserRole {
  return (ROLES as readonly string[]).includes(value);
}

/** Login names are e-mail-shaped but need not be hosted here, so `admin@localhost` is fine. */
export const LOGIN_EMAIL: DomainRules = { allowSingleLabel: true };

/** Whether `user` may administer the domain (same-tenant check is the caller's scope's job). */
export function canManageDomain(user: Pick<User, 'role' | 'domainScope' | 'status'>, domainId: string): boolean {
  if (user.status !== 'active') return false;
  switch (user.role) {
    case 'super_admin':
    case 'tenant_admin':
      return true;
    case 'domain_admin':
      return user.domainScope.includes(domainId);
    default:
      return false;
  }
}
