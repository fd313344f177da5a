/**
 * Users (SPEC §1, §9, §10): authenticated principals of a tenant. The login e-mail is unique across
 * all tenants; passwords are Argon2id hashes that never leave this module; the last 5 passwords
 * may not be reused.
 */
import type { Kysely } from 'kysely';
import { inScope, type Scope } from '../scope.js';
import { newId } from '../../store/db/database.js';
import type { DB, UsersTable } from '../../store/db/types.js';
import { writeAudit, systemActor, type AuditActor } from '../../security/audit.js';
import {
  PASSWORD_REUSE_DEPTH,
  checkPasswordPolicy,
  generatePassword,
  hashPassword,
  isPasswordReused,
  verifyAgainstDummy,
  verifyPassword,
} from '../../security/passwords.js';
import { pageSize, type TenancyContext } from './context.js';
import { parseAddress, tryParseAddress } from './addresses.js';
import { ConflictError, ForbiddenError, ValidationError, isUniqueViolation } from './errors.js';
import { assertBelowLimit } from './limits.js';
import { countWhere, findDomainRow, findUserRow } from './lookups.js';
import { LOGIN_EMAIL, ROLES, isRole } from './roles.js';
import { jsonArray, toUser } from './rows.js';
import type { ListOptions, TenantStatus, User, UserRole } from './types.js';

export const MAX_DISPLAY_NAME = 256;
export const MAX_DOMAIN_SCOPE = 1000;
const LOCALE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$/;

export interface AddUserInput {
  /** Required in the system scope; a tenant scope always adds to its own tenant. */
  tenantId?: string;
  email: string;
  /** Default `user`. */
  role?: UserRole;
  password: string;
  displayName?: string;
  /** domain_admin only: domain ids or names of the same tenant. */
  domainScope?: string[];
  locale?: string;
}

export interface UpdateUserInput {
  role?: UserRole;
  displayName?: string;
  status?: 'active' | 'disabled';
  domainScope?: string[];
  locale?: string;
}

function checkDisplayName(name: string): string {
  const n = name.trim();
  if ([...n].length > MAX_DISPLAY_NAME || /[\u0000-\u001f\u007f]/.test(n)) {
    throw new ValidationError(`display name must be at most ${MAX_DISPLAY_NAME} characters without control characters`, { field: 'displayName' });
  }
  return n;
}

function checkLocale(locale: string): string {
  if (!LOCALE.test(locale)) throw new ValidationError(`invalid locale "${locale.slice(0, 40)}" (expected a language tag such as "en" or "ja")`, { field: 'locale' });
  return locale;
}

function checkRole(role: string): UserRole {
  if (!isRole(role)) throw new ValidationError(`unknown role "${role}" (one of ${ROLES.join(', ')})`, { field: 'role' });
  return role;
}

function checkPassword(password: string): void {
  const problems = checkPasswordPolicy(password);
  if (problems.length) throw new ValidationError(problems.join('; '), { field: 'password', problems });
}

/** A tenant-scoped admin can neither create nor touch a super-admin (privilege escalation). */
function guardSuperAdmin(scope: Scope, role: UserRole, action: string): void {
  if (scope.kind === 'tenant' && role === 'super_admin') throw new ForbiddenError(`only a super-admin may ${action} a super-admin`);
}

export class Users {
  constructor(private readonly ctx: TenancyContext) {}

  /** Resolves domain refs to ids of the user's tenant; only a domain_admin has a domain scope. */
  private async domainScope(trx: Kysely<DB>, scope: Scope, tenantId: string, role: UserRole, refs: string[] | undefined): Promise<string[]> {
    if (role !== 'domain_admin') {
      if (refs && refs.length) throw new ValidationError('only a domain_admin has a domain scope', { field: 'domainScope' });
      return [];
    }
    if (!refs || refs.length === 0) throw new ValidationError('a domain_admin needs at least one domain', { field: 'domainScope' });
    if (refs.length > MAX_DOMAIN_SCOPE) throw new ValidationError(`a domain scope lists at most ${MAX_DOMAIN_SCOPE} domains`, { field: 'domainScope' });
    const ids = new Set<string>();
    for (const ref of refs) {
      const d = await findDomainRow(trx, scope, ref);
      if (d.tenant_id !== tenantId) throw new ValidationError(`domain "${ref}" is not a domain of the user's tenant`, { field: 'domainScope' });
      ids.add(d.id);
    }
    return [...ids];
  }

  async add(scope: Scope, input: AddUserInput, actor: AuditActor = systemActor): Promise<User> {
    const tenantId = this.ctx.targetTenantId(scope, input.tenantId);
    const { address: email, domain } = parseAddress(input.email, 'email', LOGIN_EMAIL);
    const role = checkRole(input.role ?? 'user');
    guardSuperAdmin(scope, role, 'create');
    checkPassword(input.password);
    const displayName = checkDisplayName(input.displayName ?? '');
    const locale = checkLocale(input.locale ?? 'en');
    // Hash before the transaction: Argon2 takes ~100 ms and must not hold the write lock.
    const passwordHash = await hashPassword(input.password, this.ctx.password);
    const t = Date.now();
    const row: UsersTable = {
      id: newId(),
      tenant_id: tenantId,
      email,
      display_name: displayName,
      role,
      domain_scope_json: '[]',
      password_hash: passwordHash,
      password_history_json: '[]',
      status: 'active',
      locale,
      created_at: t,
      updated_at: t,
      last_login_at: null,
    };
    const taken = () => new ConflictError(`a user with e-mail "${email}" already exists`, { field: 'email' });
    try {
      await this.ctx.transaction(async (trx) => {
        const tenant = await this.ctx.lockTenant(trx, scope, tenantId);
        row.domain_scope_json = JSON.stringify(await this.domainScope(trx, scope, tenantId, role, input.domainScope));
        // Unscoped on purpose (existence only): a hosted domain's addresses are its tenant's to
        // hand out, so another tenant cannot squat `ceo@their-domain` as a login name.
        const hosted = await trx.selectFrom('domains').select('tenant_id').where('name', '=', domain).executeTakeFirst();
        if (hosted && hosted.tenant_id !== tenantId) {
          throw new ValidationError(`the e-mail's domain "${domain}" is hosted by another tenant`, { field: 'email' });
        }
        // Login names are unique across tenants (existence only, unscoped).
        if (await trx.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst()) throw taken();
        const limits = this.ctx.effectiveLimits(tenant);
        assertBelowLimit('max_users', limits.max_users, await countWhere(trx, scope, 'users', 'tenant_id', tenantId));
        await trx.insertInto('users').values(row).execute();
        await writeAudit(trx, {
          tenantId,
          eventType: 'user.created',
          actor,
          target: { type: 'user', id: row.id },
          metadata: { email, role, domain_scope: jsonArray(row.domain_scope_json) },
        });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw taken();
      throw err;
    }
    return toUser(row);
  }

  async list(scope: Scope, opts: ListOptions & { tenantId?: string; role?: UserRole } = {}): Promise<User[]> {
    const rows = await this.ctx.kysely
      .selectFrom('users')
      .selectAll()
      .where(inScope(scope))
      .$if(opts.tenantId !== undefined, (q) => q.where('tenant_id', '=', opts.tenantId!))
      .$if(opts.role !== undefined, (q) => q.where('role', '=', opts.role!))
      .$if(opts.after !== undefined, (q) => q.where('email', '>', opts.after!))
      .orderBy('email')
      .limit(pageSize(opts))
      .execute();
    return rows.map(toUser);
  }

  /** By id or e-mail. */
  async get(scope: Scope, ref: string): Promise<User> {
    return toUser(await findUserRow(this.ctx.kysely, scope, ref));
  }

  /** Refuses to remove, demote or disable the last active super-admin (nobody could administer). */
  private async guardLastSuperAdmin(trx: Kysely<DB>, scope: Scope, row: UsersTable, action: string): Promise<void> {
    if (row.role !== 'super_admin' || row.status !== 'active') return;
    const r = await trx
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where(inScope(scope))
      .where('role', '=', 'super_admin')
      .where('status', '=', 'active')
      .executeTakeFirstOrThrow();
    if (Number(r.n) <= 1) throw new ConflictError(`cannot ${action} the last active super-admin`);
  }

  async update(scope: Scope, ref: string, patch: UpdateUserInput, actor: AuditActor = systemActor): Promise<User> {
    return this.ctx.transaction(async (trx) => {
      const row = await findUserRow(trx, scope, ref);
      guardSuperAdmin(scope, row.role, 'change');
      await this.ctx.lockTenant(trx, scope, row.tenant_id);
      const changes: Partial<UsersTable> = {};
      const metadata: Record<string, unknown> = {};
      const role = patch.role !== undefined ? checkRole(patch.role) : row.role;
      if (role !== row.role) {
        guardSuperAdmin(scope, role, 'create');
        if (row.role === 'super_admin') await this.guardLastSuperAdmin(trx, scope, row, 'demote');
        changes.role = role;
        metadata.role = { from: row.role, to: role };
      }
      if (patch.domainScope !== undefined || role !== row.role) {
        const refs = patch.domainScope ?? (role === 'domain_admin' ? jsonArray(row.domain_scope_json) : undefined);
        const ids = await this.domainScope(trx, scope, row.tenant_id, role, refs);
        changes.domain_scope_json = JSON.stringify(ids);
        metadata.domain_scope = ids;
      }
      if (patch.displayName !== undefined) changes.display_name = metadata.display_name = checkDisplayName(patch.displayName);
      if (patch.locale !== undefined) changes.locale = metadata.locale = checkLocale(patch.locale);
      if (patch.status !== undefined && patch.status !== row.status) {
        if (patch.status !== 'active' && patch.status !== 'disabled') throw new ValidationError(`unknown user status "${patch.status}"`, { field: 'status' });
        if (patch.status === 'disabled') await this.guardLastSuperAdmin(trx, scope, row, 'disable');
        changes.status = patch.status;
        metadata.status = { from: row.status, to: patch.status };
      }
      if (Object.keys(changes).length === 0) return toUser(row);
      changes.updated_at = Date.now();
      await trx.updateTable('users').set(changes).where('id', '=', row.id).where(inScope(scope)).execute();
      await writeAudit(trx, { tenantId: row.tenant_id, eventType: 'user.updated', actor, target: { type: 'user', id: row.id }, metadata: { email: row.email, ...metadata } });
      return toUser({ ...row, ...changes });
    });
  }

  /** Policy + "last 5 not reused" (SPEC §10); the old hash moves into the history. */
  async setPassword(scope: Scope, ref: string, password: string, actor: AuditActor = systemActor): Promise<void> {
    checkPassword(password);
    const row = await findUserRow(this.ctx.kysely, scope, ref);
    guardSuperAdmin(scope, row.role, 'change the password of');
    const previous = [row.password_hash, ...jsonArray(row.password_history_json)];
    if (await isPasswordReused(password, previous)) {
      throw new ValidationError(`this password was used recently; choose one that is not among the last ${PASSWORD_REUSE_DEPTH}`, { field: 'password' });
    }
    await this.storePassword(scope, row, await hashPassword(password, this.ctx.password), 'user.password_changed', actor);
  }

  /**
   * Administrative reset (`mairust admin reset-password`, emergency access): sets a generated
   * password and returns it so it can be shown once. Audited as `admin.password_reset`.
   */
  async resetPassword(scope: Scope, ref: string, actor: AuditActor = systemActor): Promise<{ user: User; password: string }> {
    const row = await findUserRow(this.ctx.kysely, scope, ref);
    guardSuperAdmin(scope, row.role, 'reset the password of');
    const password = generatePassword();
    await this.storePassword(scope, row, await hashPassword(password, this.ctx.password), 'admin.password_reset', actor);
    return { user: toUser(row), password };
  }

  private async storePassword(scope: Scope, row: UsersTable, passwordHash: string, eventType: string, actor: AuditActor): Promise<void> {
    await this.ctx.transaction(async (trx) => {
      // Re-read inside the transaction so a concurrent change's hash is not lost from the history.
      const current = await findUserRow(trx, scope, row.id);
      const history = [current.password_hash, ...jsonArray(current.password_history_json)].slice(0, PASSWORD_REUSE_DEPTH - 1);
      await trx
        .updateTable('users')
        .set({ password_hash: passwordHash, password_history_json: JSON.stringify(history), updated_at: Date.now() })
        .where('id', '=', row.id)
        .where(inScope(scope))
        .execute();
      await writeAudit(trx, { tenantId: row.tenant_id, eventType, actor, target: { type: 'user', id: row.id }, metadata: { email: row.email } });
    });
  }

  /**
   * Removes a user. Mailboxes it owned stay (mail is not lost) and become unowned; the audit row
   * lists how many.
   */
  async remove(scope: Scope, ref: string, actor: AuditActor = systemActor): Promise<void> {
    await this.ctx.transaction(async (trx) => {
      const row = await findUserRow(trx, scope, ref);
      guardSuperAdmin(scope, row.role, 'remove');
      await this.guardLastSuperAdmin(trx, scope, row, 'remove');
      const detached = await trx
        .updateTable('mailboxes')
        .set({ user_id: null, updated_at: Date.now() })
        .where('user_id', '=', row.id)
        .where(inScope(scope))
        .executeTakeFirst();
      await trx.deleteFrom('users').where('id', '=', row.id).where(inScope(scope)).execute();
      await writeAudit(trx, {
        tenantId: row.tenant_id,
        eventType: 'user.removed',
        actor,
        target: { type: 'user', id: row.id },
        metadata: { email: row.email, role: row.role, detached_mailboxes: Number(detached.numUpdatedRows) },
      });
    });
  }

  /**
   * Checks a login. Returns the user, or null when the e-mail is unknown, the password wrong, the
   * user disabled or its tenant not active (SPEC §9: suspended tenants cannot log in). An unknown
   * e-mail costs one Argon2 verification like a known one, so timing does not reveal accounts.
   * Lockout after repeated failures belongs to the login flows (SPEC §10).
   */
  async authenticate(scope: Scope, email: string, password: string): Promise<User | null> {
    const c = await this.verifyCredentials(scope, email, password);
    return c.user && c.passwordOk && c.user.status === 'active' && c.tenantStatus === 'active' ? c.user : null;
  }

  /**
   * The password check behind every login, telling the caller what `authenticate` folds into null:
   * whether the account exists, whether the password matched, and the account's and tenant's
   * state — so a login flow can answer "tenant suspended" to someone who proved the password, and
   * the ordinary "invalid credentials" to everyone else. Exactly one Argon2 verification on every
   * path (a dummy one for an unknown e-mail), so timing does not reveal accounts.
   */
  async verifyCredentials(scope: Scope, email: string, password: string): Promise<{ user: User | null; passwordOk: boolean; tenantStatus: TenantStatus | null }> {
    const parsed = tryParseAddress(email, LOGIN_EMAIL);
    const row = parsed
      ? await this.ctx.kysely
          .selectFrom('users')
          .innerJoin('tenants', 'tenants.id', 'users.tenant_id')
          .selectAll('users')
          .select('tenants.status as tenant_status')
          .where('users.email', '=', parsed.address)
          .where(inScope(scope, 'users.tenant_id'))
          .executeTakeFirst()
      : undefined;
    if (!row) {
      await verifyAgainstDummy(password, this.ctx.password);
      return { user: null, passwordOk: false, tenantStatus: null };
    }
    const passwordOk = await verifyPassword(row.password_hash, password);
    const { tenant_status: tenantStatus, ...user } = row;
    return { user: toUser(user), passwordOk, tenantStatus };
  }

  /** Stamps `last_login_at` after a successful login. */
  async recordLogin(scope: Scope, userId: string, at = Date.now()): Promise<void> {
    await this.ctx.kysely.updateTable('users').set({ last_login_at: at }).where('id', '=', userId).where(inScope(scope)).execute();
  }
}
