/**
 * The tenancy service (SPEC §9): tenants, domains, users, mailboxes and aliases.
 *
 * Every method takes the caller's `Scope` first and filters every query with `inScope`, so a
 * tenant-scoped caller cannot see, change or infer another tenant's rows: they are "not found".
 * Every administrative change writes one audit row in the same transaction (SPEC §10); mutating
 * methods take the acting principal last (default: `system`).
 *
 * The work is split by entity — `tenancy.tenants`, `.domains`, `.users`, `.mailboxes`,
 * `.aliases` — with the cross-cutting entry points (`authenticate`, `resolveRecipient`,
 * `effectiveLimits`) on the service itself.
 */
import type { Plan } from '../../config/schema.js';
import type { Scope } from '../scope.js';
import { TenancyContext, type TenancyDeps } from './context.js';
import { Tenants } from './tenants.js';
import { Domains } from './domains.js';
import { Users } from './users.js';
import { Mailboxes } from './mailboxes.js';
import { Aliases } from './aliases.js';
import { resolveRecipient } from './recipients.js';
import type { RecipientResolution, Tenant, User } from './types.js';

export class TenancyService {
  readonly tenants: Tenants;
  readonly domains: Domains;
  readonly users: Users;
  readonly mailboxes: Mailboxes;
  readonly aliases: Aliases;
  private readonly ctx: TenancyContext;

  constructor(deps: TenancyDeps) {
    this.ctx = new TenancyContext(deps);
    this.tenants = new Tenants(this.ctx);
    this.domains = new Domains(this.ctx);
    this.users = new Users(this.ctx);
    this.mailboxes = new Mailboxes(this.ctx);
    this.aliases = new Aliases(this.ctx);
  }

  /** Applies reloaded `plans` / `default_plan` (both `x-reloadable`); throws if the default is missing. */
  setPlans(plans: Record<string, Plan>, defaultPlan: string): void {
    this.ctx.setPlans(plans, defaultPlan);
  }

  /** The tenant's plan with its overrides applied. */
  effectiveLimits(tenant: Pick<Tenant, 'plan' | 'limits'>): Plan {
    return this.tenants.effectiveLimits(tenant);
  }

  /** Login check (see Users.authenticate): the user, or null for any failure. */
  authenticate(scope: Scope, email: string, password: string): Promise<User | null> {
    return this.users.authenticate(scope, email, password);
  }

  /**
   * Where mail for `address` goes: `{ tenantId, mailboxIds, via, matched, subaddress }` or null
   * when the address is not hosted (SMTP answers 550 5.1.1). SMTP calls it with the system scope.
   */
  resolveRecipient(scope: Scope, address: string): Promise<RecipientResolution | null> {
    return resolveRecipient(this.ctx, scope, address);
  }
}
