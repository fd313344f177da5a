/**
 * What every part of the tenancy service shares: the database, the plans, password cost, the
 * injected folder factory — and the few helpers that enforce the tenant rules in one place
 * (which tenant a call acts on, locking that tenant while its rows are counted).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Plan } from '../../config/schema.js';
import type { Database } from '../../store/db/database.js';
import type { DB, TenantsTable } from '../../store/db/types.js';
import { inScope, type Scope } from '../scope.js';
import { DEFAULT_PASSWORD_PARAMS, type PasswordHashParams } from '../../security/passwords.js';
import { ConflictError, NotFoundError, ValidationError } from './errors.js';
import { mergeLimits, parseLimitOverrides } from './limits.js';
import type { ListOptions } from './types.js';

/**
 * Creates the special folders of a new mailbox (INBOX, Sent, Drafts, Junk, Trash, Archive) inside
 * the caller's transaction. Provided by the mailbox-state service, which owns folders.
 */
export type CreateDefaultFolders = (trx: Kysely<DB>, scope: Scope, mailboxId: string) => Promise<void>;

export interface TenancyDeps {
  db: Database;
  /** Named plans from config (`plans`). */
  plans: Record<string, Plan>;
  /** Plan of a tenant created without one (`default_plan`). */
  defaultPlan: string;
  createDefaultFolders: CreateDefaultFolders;
  /** Argon2id cost; defaults to SPEC §10 (m=64 MiB, t=3, p=4). Tests pass cheaper values. */
  passwordOptions?: PasswordHashParams;
  logger?: Logger;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids are UUIDs (`newId`); anything else passed as a reference is a natural key (name, email, address). */
export function isId(ref: string): boolean {
  return UUID.test(ref);
}

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export function pageSize(opts: ListOptions): number {
  const n = opts.limit ?? DEFAULT_PAGE;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw new ValidationError(`limit must be an integer from 1 to ${MAX_PAGE}`, { field: 'limit' });
  return n;
}

export class TenancyContext {
  readonly db: Database;
  plans: Record<string, Plan>;
  defaultPlan: string;
  readonly createDefaultFolders: CreateDefaultFolders;
  readonly password: PasswordHashParams;
  readonly logger: Logger | undefined;

  constructor(deps: TenancyDeps) {
    TenancyContext.checkPlans(deps.plans, deps.defaultPlan);
    this.db = deps.db;
    this.plans = deps.plans;
    this.defaultPlan = deps.defaultPlan;
    this.createDefaultFolders = deps.createDefaultFolders;
    this.password = deps.passwordOptions ?? DEFAULT_PASSWORD_PARAMS;
    this.logger = deps.logger;
  }

  static checkPlans(plans: Record<string, Plan>, defaultPlan: string): void {
    if (!plans[defaultPlan]) throw new Error(`default_plan "${defaultPlan}" is not one of the configured plans (${Object.keys(plans).join(', ')})`);
  }

  /** Plans are reloadable (SIGHUP); tenants on a removed plan fall back to the default plan. */
  setPlans(plans: Record<string, Plan>, defaultPlan: string): void {
    TenancyContext.checkPlans(plans, defaultPlan);
    this.plans = plans;
    this.defaultPlan = defaultPlan;
  }

  get kysely(): Kysely<DB> {
    return this.db.kysely;
  }

  transaction<T>(fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
    return this.db.kysely.transaction().execute(fn);
  }

  /**
   * The tenant a call acts on. A tenant scope always acts on its own tenant (naming another one is
   * "not found", never "forbidden", so existence does not leak); the system scope must name one.
   */
  targetTenantId(scope: Scope, tenantId: string | undefined): string {
    if (scope.kind === 'tenant') {
      if (tenantId !== undefined && tenantId !== scope.tenantId) throw new NotFoundError('tenant not found');
      return scope.tenantId;
    }
    if (!tenantId) throw new ValidationError('a tenant is required', { field: 'tenant' });
    return tenantId;
  }

  /**
   * Reads the tenant row inside `trx`; on PostgreSQL also locks it (`FOR UPDATE`) so concurrent
   * creations in one tenant are serialised and a limit count cannot be raced. SQLite serialises
   * writers anyway. With `forChange`, a deleted tenant is refused: it is waiting to be purged.
   */
  async lockTenant(trx: Kysely<DB>, scope: Scope, tenantId: string, forChange = true): Promise<TenantsTable> {
    const row = await trx
      .selectFrom('tenants')
      .selectAll()
      .where('id', '=', tenantId)
      .where(inScope(scope, 'id'))
      .$if(this.db.dialect === 'postgres', (q) => q.forUpdate())
      .executeTakeFirst();
    if (!row) throw new NotFoundError('tenant not found');
    if (forChange && row.status === 'deleted') {
      throw new ConflictError(`tenant "${row.name}" is deleted; activate it again before changing it`);
    }
    return row;
  }

  planOf(name: string): Plan {
    const plan = this.plans[name];
    if (plan) return plan;
    // The plan was removed from config after tenants were put on it: fall back rather than lock
    // every such tenant out, and say so.
    this.logger?.warn({ plan: name, fallback: this.defaultPlan }, 'tenant plan is not configured; using the default plan');
    return this.plans[this.defaultPlan];
  }

  /** Plan ⊕ overrides for a tenant row. */
  effectiveLimits(row: Pick<TenantsTable, 'plan' | 'limits_json'>): Plan {
    return mergeLimits(this.planOf(row.plan), parseLimitOverrides(row.limits_json));
  }
}
