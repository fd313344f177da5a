/**
 * Tenant scope (SPEC §9): every repository and service function takes a `Scope` as its first
 * argument and filters with `inScope`, so a query that forgets the tenant cannot be written by
 * accident — there is no unscoped variant to call.
 *
 * `system` is for the super-admin, the CLI and background jobs that work across tenants
 * (purge, consistency checks); it must be asked for by name.
 */
import { sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';

export type Scope =
  | { readonly kind: 'system' }
  | { readonly kind: 'tenant'; readonly tenantId: string };

export const systemScope: Scope = Object.freeze({ kind: 'system' });

export function tenantScope(tenantId: string): Scope {
  if (!tenantId) throw new Error('tenantScope needs a tenant id');
  return Object.freeze({ kind: 'tenant', tenantId });
}

/** `WHERE <column> = :tenantId` for a tenant scope; always-true for the system scope. */
export function inScope(scope: Scope, column = 'tenant_id') {
  return (eb: ExpressionBuilder<any, any>): Expression<SqlBool> =>
    scope.kind === 'system' ? sql<SqlBool>`1 = 1` : eb(eb.ref(column), '=', scope.tenantId);
}

/** Throws when a row read by id belongs to another tenant (defence in depth after a scoped query). */
export function assertInScope(scope: Scope, tenantId: string): void {
  if (scope.kind === 'tenant' && scope.tenantId !== tenantId) throw new Error('row outside tenant scope');
}
