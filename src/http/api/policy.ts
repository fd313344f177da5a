/**
 * Authorization (SPEC §9 roles), in one place. Every API route names one *action*; the API's
 * authentication hook calls `authorize` with it before the handler runs, so a handler never decides
 * on roles itself. What an action needs:
 *
 *  - the roles that may perform it at all;
 *  - the API-key scope a key must carry (`read` for reads, `write` for mail changes, `admin` for
 *    administration, `send`, `plugin`);
 *  - whether it is an admin route (rate-limited per client address as well, SPEC §11).
 *
 * Row-level rules (a domain admin's domains, a user's own mailboxes) are the `can…` functions
 * below, used by the handlers after loading the row through the principal's tenant scope. Rows the
 * principal may not see are reported as NOT_FOUND — the same answer as for an id that does not
 * exist — so ids of other tenants (or of other users' mailboxes) cannot be probed; FORBIDDEN is for
 * rows the principal may see but not change.
 */
import { systemScope, tenantScope, type Scope } from '../../core/scope.js';
import type { Domain, Mailbox, User, UserRole } from '../../core/tenancy/types.js';
import type { ApiScope } from '../../security/credentials/api-keys.js';
import { ApiError } from '../errors.js';
import type { Principal } from './principal.js';

export interface ActionRule {
  roles: readonly UserRole[];
  scope: ApiScope;
  /** Admin endpoints: also limited per client address (SPEC §11, 30 req/min). */
  admin: boolean;
  /** Allowed while the second factor is still due (me, TOTP enrolment/verification, logout). */
  duringMfa?: boolean;
}

const ADMINS: readonly UserRole[] = ['super_admin', 'tenant_admin', 'domain_admin'];
const TENANT_ADMINS: readonly UserRole[] = ['super_admin', 'tenant_admin'];
const EVERYONE: readonly UserRole[] = ['super_admin', 'tenant_admin', 'domain_admin', 'user'];
const SUPER: readonly UserRole[] = ['super_admin'];

export const ACTIONS = {
  /** The caller's own account: me, logout, password, TOTP, recovery codes. */
  'self.read': { roles: EVERYONE, scope: 'read', admin: false, duringMfa: true },
  'self.update': { roles: EVERYONE, scope: 'write', admin: false, duringMfa: true },

  'tenants.read': { roles: SUPER, scope: 'admin', admin: true },
  'tenants.write': { roles: SUPER, scope: 'admin', admin: true },
  /** The caller's own tenant (`/tenant`, `/tenant/usage`). */
  'tenant.read': { roles: TENANT_ADMINS, scope: 'read', admin: true },
  'tenant.write': { roles: TENANT_ADMINS, scope: 'admin', admin: true },

  'domains.read': { roles: ADMINS, scope: 'read', admin: true },
  'domains.create': { roles: TENANT_ADMINS, scope: 'admin', admin: true },
  /** Verify, status, catch-all: a domain admin may do this for their domains. */
  'domains.update': { roles: ADMINS, scope: 'admin', admin: true },
  'domains.delete': { roles: TENANT_ADMINS, scope: 'admin', admin: true },

  'users.read': { roles: ADMINS, scope: 'read', admin: true },
  'users.write': { roles: ADMINS, scope: 'admin', admin: true },

  /** Users list their own mailboxes; admins those they manage. */
  'mailboxes.read': { roles: EVERYONE, scope: 'read', admin: false },
  'mailboxes.write': { roles: ADMINS, scope: 'admin', admin: true },

  'aliases.read': { roles: ADMINS, scope: 'read', admin: true },
  'aliases.write': { roles: ADMINS, scope: 'admin', admin: true },

  /** Folders and messages of mailboxes the caller may open (canOpenMailbox). */
  'mail.read': { roles: EVERYONE, scope: 'read', admin: false },
  'mail.write': { roles: EVERYONE, scope: 'write', admin: false },
  'mail.send': { roles: EVERYONE, scope: 'send', admin: false },

  /** The caller's own API keys. */
  'api_keys.self': { roles: EVERYONE, scope: 'admin', admin: false },
  /** Every key of the tenant (every key, for a super-admin). */
  'api_keys.manage': { roles: TENANT_ADMINS, scope: 'admin', admin: true },

  'audit.read': { roles: TENANT_ADMINS, scope: 'admin', admin: true },

  'settings.read': { roles: SUPER, scope: 'admin', admin: true },
  'settings.write': { roles: SUPER, scope: 'admin', admin: true },

  'webhooks.read': { roles: TENANT_ADMINS, scope: 'admin', admin: true },
  'webhooks.write': { roles: TENANT_ADMINS, scope: 'admin', admin: true },

  /**
   * Hooks (SPEC §6 "Management"). Tenant admins read and change their tenant's hooks and read the
   * global ones (they run on the tenant's mail); global hooks are changed by super-admins only
   * (routes/hooks.ts: another tenant's hook is 404, writing a global one 403).
   */
  'hooks.read': { roles: TENANT_ADMINS, scope: 'admin', admin: true },
  'hooks.write': { roles: TENANT_ADMINS, scope: 'admin', admin: true },
  /** Plugins (SPEC §7): the installed plugins and their logs (a tenant admin sees only its tenant's log lines). */
  'plugins.read': { roles: TENANT_ADMINS, scope: 'admin', admin: true },
  /** Install, approve, enable/disable, uninstall, secrets, tokens, metrics: the whole platform is affected. */
  'plugins.manage': { roles: SUPER, scope: 'admin', admin: true },
  /** A tenant's own enablement and config of a plugin (`tenant_plugins`). */
  'plugins.tenant': { roles: TENANT_ADMINS, scope: 'admin', admin: true },
  /** The outbound queue (SPEC §3.3): a tenant admin sees and manages its tenant's entries. */
  'queue.read': { roles: TENANT_ADMINS, scope: 'admin', admin: true },
  'queue.write': { roles: TENANT_ADMINS, scope: 'admin', admin: true },
  /** Outbound spam policy (SPEC §8): stats, suspended accounts, whitelist — a tenant admin for its tenant. */
  'outbound.read': { roles: TENANT_ADMINS, scope: 'admin', admin: true },
  'outbound.write': { roles: TENANT_ADMINS, scope: 'admin', admin: true },
} as const satisfies Record<string, ActionRule>;

export type Action = keyof typeof ACTIONS;

export function isAction(name: unknown): name is Action {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(ACTIONS, name);
}

/** Throws FORBIDDEN when the principal's role, key scopes or MFA state do not allow `action`. */
export function authorize(p: Principal, action: Action): void {
  const rule: ActionRule = ACTIONS[action];
  if (p.mfaPending && !rule.duringMfa) {
    throw new ApiError('FORBIDDEN', 'complete the second factor first (POST /api/v1/auth/mfa/verify) or enrol one', { mfa_required: true });
  }
  if (!rule.roles.includes(p.user.role)) throw new ApiError('FORBIDDEN', `role ${p.user.role} may not do this`);
  if (!p.scopes.has(rule.scope)) throw new ApiError('FORBIDDEN', `this API key lacks the "${rule.scope}" scope`, { required_scope: rule.scope });
}

/** The data scope of the principal: everything for a super-admin, its tenant otherwise. */
export function scopeOf(p: Principal): Scope {
  return p.user.role === 'super_admin' ? systemScope : tenantScope(p.user.tenantId);
}

export function notFound(what: string): ApiError {
  return new ApiError('NOT_FOUND', `${what} not found`);
}

function domainOfAddress(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** Whether the principal administers this domain (same tenant assumed: rows come through scopeOf). */
export function canManageDomain(p: Principal, domain: Pick<Domain, 'id'>): boolean {
  switch (p.user.role) {
    case 'super_admin':
    case 'tenant_admin':
      return true;
    case 'domain_admin':
      return p.user.domainScope.includes(domain.id);
    default:
      return false;
  }
}

/** Domain admins manage users whose login is in one of their domains (by name); `domainNames` are theirs. */
export function canManageUser(p: Principal, user: Pick<User, 'id' | 'email' | 'role'>, domainNamesOfAdmin: readonly string[]): boolean {
  switch (p.user.role) {
    case 'super_admin':
      return true;
    case 'tenant_admin':
      return user.role !== 'super_admin';
    case 'domain_admin':
      return user.role === 'user' && domainNamesOfAdmin.includes(domainOfAddress(user.email));
    default:
      return false;
  }
}

/** Administering a mailbox (quota, owner, removal): admins of its domain. */
export function canManageMailbox(p: Principal, mailbox: Pick<Mailbox, 'domainId'>): boolean {
  return canManageDomain(p, { id: mailbox.domainId });
}

/**
 * Opening a mailbox's folders and messages. The owner always may. Admins may open only mailboxes
 * without an owner (shared addresses such as support@) in their domains: reading a person's mail is
 * not an administrative power.
 */
export function canOpenMailbox(p: Principal, mailbox: Pick<Mailbox, 'userId' | 'domainId'>): boolean {
  if (mailbox.userId !== null) return mailbox.userId === p.user.id;
  return p.user.role !== 'user' && canManageDomain(p, { id: mailbox.domainId });
}

/** FORBIDDEN unless `cond`; for rows the principal can see but not change. */
export function requireAllowed(cond: boolean, message: string): void {
  if (!cond) throw new ApiError('FORBIDDEN', message);
}
