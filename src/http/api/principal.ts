/**
 * Who is calling the REST API: the authenticated principal, resolved once per request by the API's
 * authentication hook (auth-hook.ts) and read by the policy (policy.ts) and the route handlers.
 */
import type { Tenant, User } from '../../core/tenancy/types.js';
import type { ApiScope } from '../../security/credentials/api-keys.js';
import type { AuditActor } from '../../security/audit.js';

export type CredentialKind = 'session' | 'bearer' | 'api_key';

export interface Principal {
  via: CredentialKind;
  user: User;
  tenant: Tenant;
  /** API keys: the key's scopes; sessions and bearer tokens: every scope (the role still bounds them). */
  scopes: ReadonlySet<ApiScope>;
  /** Session id (hash), token family id or API key id: what logout/revocation acts on. */
  credentialId: string;
  /** Signed in with the password but the second factor (or the enrolment the tenant requires) is still due. */
  mfaPending: boolean;
  /** Client address as the HTTP server sees it. */
  ip: string;
}

export const ALL_SCOPES: ReadonlySet<ApiScope> = new Set<ApiScope>(['read', 'write', 'send', 'admin', 'plugin']);

/** The audit actor for changes made by this principal (SPEC §10 actor{type,id,email,ip}). */
export function auditActor(p: Principal): AuditActor {
  return p.via === 'api_key'
    ? { type: 'api_key', id: p.credentialId, email: p.user.email, ip: p.ip }
    : { type: 'user', id: p.user.id, email: p.user.email, ip: p.ip };
}
