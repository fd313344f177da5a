/** Public surface of the tenancy core. */
export { TenancyService } from './service.js';
export type { TenancyDeps, CreateDefaultFolders } from './context.js';
export * from './errors.js';
export * from './types.js';
export { normaliseDomain, normaliseLocalPart, parseAddress, tryParseAddress, splitSubaddress, type ParsedAddress } from './addresses.js';
export { ROLES, isRole, canManageDomain, LOGIN_EMAIL } from './roles.js';
export { PLAN_KEYS, type PlanKey } from './limits.js';
export type { CreateTenantInput, UpdateTenantInput, TenantUsage } from './tenants.js';
export type { AddDomainInput } from './domains.js';
export type { AddUserInput, UpdateUserInput } from './users.js';
export type { AddMailboxInput } from './mailboxes.js';
export type { AddAliasInput } from './aliases.js';
export { MAX_ALIAS_TARGETS } from './aliases.js';
