/**
 * Policy state of sending accounts (SPEC §8 "Recovery", "API"): suspension and its lifting,
 * account listing and statistics, the whitelist of raised limits, and admin reports.
 *
 * Every method takes the caller's `Scope`: a tenant admin sees and changes only its tenant's
 * accounts; another tenant's user is "not found" (SPEC §9). Users are named by id or e-mail and
 * resolved through the tenancy service, which applies the scope.
 *
 * Every change is one transaction with its `outbound_events` row (the history the policy engine
 * reads) and its audit row (SPEC §10). A suspension also publishes `account.suspended` (SPEC §11)
 * in that transaction. Suspending never touches receiving: it lives only in `outbound_accounts`.
 */
import type { Kysely } from 'kysely';
import { newId, type Database } from '../../store/db/database.js';
import type { DB, OutboundAccountsTable, OutboundLevel } from '../../store/db/types.js';
import { inScope, type Scope } from '../../core/scope.js';
import type { TenancyService } from '../../core/tenancy/service.js';
import { ConflictError, NotFoundError, ValidationError, isUniqueViolation } from '../../core/tenancy/errors.js';
import type { User } from '../../core/tenancy/types.js';
import { writeAudit, systemActor, type AuditActor } from '../../security/audit.js';
import type { EventPublisher } from '../../webhooks/types.js';
import type { OutboundConfig } from '../../config/sections/outbound.js';
import type { OutboundPolicyMetrics } from './metrics.js';
import { HISTORY_DAYS } from './signals.js';
import { DAY_MS, HOUR_MS } from './rate-limiter.js';

export interface OutboundAccountsDeps {
  db: Database;
  tenancy: TenancyService;
  config: () => OutboundConfig;
  events?: EventPublisher;
  metrics?: OutboundPolicyMetrics;
  now?: () => number;
}

export interface AccountView {
  userId: string;
  tenantId: string;
  email: string | null;
  level: OutboundLevel;
  suspended: boolean;
  suspendedAt: number | null;
  suspendedReason: string | null;
  autoReenableAt: number | null;
  lastScore: number | null;
  updatedAt: number;
}

export interface WhitelistView {
  id: string;
  tenantId: string;
  userId: string;
  email: string | null;
  profile: string;
  hourlyLimit: number;
  dailyLimit: number;
  note: string;
  createdAt: number;
}

export interface OutboundStats {
  accounts: { suspended: number; soft: number; hard: number; tracked: number };
  whitelisted: number;
  /** Policy events of the last 24 hours, by kind (`suspended`, `soft_limited`, `domain_limited`, …). */
  eventsLast24h: Record<string, number>;
  /** Messages queued for remote delivery in the last 24 hours. */
  messagesLast24h: number;
}

export type AccountStatusFilter = 'suspended' | 'soft' | 'normal' | 'all';

export interface SuspendOptions {
  reason: string;
  actor?: AuditActor;
  /** Set by the policy engine; admins suspend manually. Only automatic suspensions re-enable themselves. */
  automatic?: boolean;
  details?: Record<string, unknown>;
}

/** History of one account for the policy engine. */
export interface AccountHistory {
  blocks: number;
  reports: number;
  /** Time of the last unsuspension (0 = never): the epoch of the per-user counter keys. */
  epoch: number;
}

function toView(row: OutboundAccountsTable, email: string | null): AccountView {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    userId: row.user_id,
    tenantId: row.tenant_id,
    email,
    level: row.level,
    suspended: row.suspended_at !== null && row.suspended_at !== undefined,
    suspendedAt: num(row.suspended_at),
    suspendedReason: row.suspended_reason,
    autoReenableAt: num(row.auto_reenable_at),
    lastScore: num(row.last_score),
    updatedAt: Number(row.updated_at),
  };
}

export class OutboundAccounts {
  private readonly db: Database;
  private readonly now: () => number;

  constructor(private readonly deps: OutboundAccountsDeps) {
    this.db = deps.db;
    this.now = deps.now ?? Date.now;
  }

  private user(scope: Scope, ref: string): Promise<User> {
    return this.deps.tenancy.users.get(scope, ref);
  }

  /** The raw state row of one account (no scope: the policy engine works for every tenant). */
  async row(userId: string): Promise<OutboundAccountsTable | null> {
    return (await this.db.kysely.selectFrom('outbound_accounts').selectAll().where('user_id', '=', userId).executeTakeFirst()) ?? null;
  }

  /** Past blocks/suspensions and admin reports in the last 30 days, and the last unsuspension (one query). */
  async history(userId: string): Promise<AccountHistory> {
    const since = this.now() - HISTORY_DAYS * DAY_MS;
    const rows = await this.db.kysely
      .selectFrom('outbound_events')
      .select(['kind', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.max('at').as('last')])
      .where('user_id', '=', userId)
      .where('kind', 'in', ['blocked', 'suspended', 'reported', 'unsuspended'])
      .where('at', '>=', since)
      .groupBy('kind')
      .execute();
    const out: AccountHistory = { blocks: 0, reports: 0, epoch: 0 };
    for (const r of rows) {
      if (r.kind === 'blocked' || r.kind === 'suspended') out.blocks += Number(r.n);
      else if (r.kind === 'reported') out.reports += Number(r.n);
      else if (r.kind === 'unsuspended') out.epoch = Number(r.last);
    }
    // An unsuspension older than the history window still resets the counters' epoch; counters of
    // that age have long expired, so 0 is equivalent.
    return out;
  }

  /** Records a policy event (soft limit, domain limit, block) outside a suspension. */
  async recordEvent(e: { tenantId: string; userId: string | null; domainId?: string | null; kind: string; details: Record<string, unknown> }, trx?: Kysely<DB>): Promise<void> {
    await (trx ?? this.db.kysely)
      .insertInto('outbound_events')
      .values({ id: newId(), tenant_id: e.tenantId, user_id: e.userId, domain_id: e.domainId ?? null, kind: e.kind, at: this.now(), details_json: JSON.stringify(e.details) })
      .execute();
  }

  /** Sets the account's level and last score (not its suspension); creates the row when missing. */
  async setLevel(tenantId: string, userId: string, level: OutboundLevel, score: number): Promise<void> {
    const t = this.now();
    await this.db.kysely
      .insertInto('outbound_accounts')
      .values({ user_id: userId, tenant_id: tenantId, level, suspended_at: null, suspended_reason: null, auto_reenable_at: null, last_score: score, updated_at: t })
      .onConflict((oc) => oc.column('user_id').doUpdateSet({ level, last_score: score, updated_at: t }).where('outbound_accounts.suspended_at', 'is', null))
      .execute();
  }

  /**
   * Suspends sending for one user, if not suspended already. Returns true when THIS call suspended
   * it (the conditional upsert makes concurrent engines on several nodes record it once).
   */
  async suspendUser(user: { id: string; tenantId: string; email?: string }, opts: SuspendOptions): Promise<boolean> {
    const t = this.now();
    const hours = this.deps.config().policy.auto_reenable_after_hours;
    const autoAt = opts.automatic && hours > 0 ? t + hours * HOUR_MS : null;
    const actor = opts.actor ?? systemActor;
    const reason = opts.reason.slice(0, 500);
    const done = await this.db.kysely.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('outbound_accounts')
        .values({ user_id: user.id, tenant_id: user.tenantId, level: 'hard', suspended_at: t, suspended_reason: reason, auto_reenable_at: autoAt, last_score: null, updated_at: t })
        .onConflict((oc) =>
          oc.column('user_id').doUpdateSet({ level: 'hard', suspended_at: t, suspended_reason: reason, auto_reenable_at: autoAt, updated_at: t }).where('outbound_accounts.suspended_at', 'is', null),
        )
        .returning('user_id')
        .executeTakeFirst();
      if (!row) return false;
      const details = { reason, automatic: !!opts.automatic, auto_reenable_at: autoAt, ...(opts.details ?? {}) };
      await this.recordEvent({ tenantId: user.tenantId, userId: user.id, kind: 'suspended', details }, trx);
      await writeAudit(trx, {
        tenantId: user.tenantId,
        eventType: 'outbound.account_suspended',
        actor,
        target: { type: 'user', id: user.id },
        metadata: { reason, automatic: !!opts.automatic, auto_reenable_at: autoAt },
      });
      if (this.deps.events) {
        await this.deps.events.publish(
          'account.suspended',
          user.tenantId,
          { scope: 'outbound', tenant_id: user.tenantId, user_id: user.id, email: user.email ?? null, reason, automatic: !!opts.automatic, suspended_at: new Date(t).toISOString() },
          trx,
        );
      }
      return true;
    });
    if (done) this.deps.metrics?.suspended.inc();
    return done;
  }

  /**
   * Lifts a suspension. `automatic` (the engine, after `auto_reenable_after_hours`) only lifts a
   * suspension whose re-enable time has passed, so a concurrent admin re-suspension is not undone.
   */
  async unsuspendUser(user: { id: string; tenantId: string }, opts: { actor?: AuditActor; automatic?: boolean } = {}): Promise<boolean> {
    const t = this.now();
    return this.db.kysely.transaction().execute(async (trx) => {
      let q = trx
        .updateTable('outbound_accounts')
        .set({ level: 'normal', suspended_at: null, suspended_reason: null, auto_reenable_at: null, updated_at: t })
        .where('user_id', '=', user.id)
        .where('suspended_at', 'is not', null);
      if (opts.automatic) q = q.where('auto_reenable_at', 'is not', null).where('auto_reenable_at', '<=', t);
      const res = await q.executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      await this.recordEvent({ tenantId: user.tenantId, userId: user.id, kind: 'unsuspended', details: { automatic: !!opts.automatic } }, trx);
      await writeAudit(trx, {
        tenantId: user.tenantId,
        eventType: 'outbound.account_unsuspended',
        actor: opts.actor ?? systemActor,
        target: { type: 'user', id: user.id },
        metadata: { automatic: !!opts.automatic },
      });
      return true;
    });
  }

  // ── admin surface (API / CLI) ───────────────────────────────────────────────────────────────

  async suspend(scope: Scope, userRef: string, reason: string, actor: AuditActor): Promise<AccountView> {
    const user = await this.user(scope, userRef);
    const done = await this.suspendUser({ id: user.id, tenantId: user.tenantId, email: user.email }, { reason: reason || 'suspended by an administrator', actor });
    if (!done) throw new ConflictError(`sending from "${user.email}" is already suspended`);
    return this.get(scope, user.id);
  }

  async unsuspend(scope: Scope, userRef: string, actor: AuditActor): Promise<AccountView> {
    const user = await this.user(scope, userRef);
    const done = await this.unsuspendUser({ id: user.id, tenantId: user.tenantId }, { actor });
    if (!done) throw new ConflictError(`sending from "${user.email}" is not suspended`);
    return this.get(scope, user.id);
  }

  /** Files an admin report against an account (the history signal counts them for 30 days). */
  async report(scope: Scope, userRef: string, note: string, actor: AuditActor): Promise<void> {
    const user = await this.user(scope, userRef);
    await this.db.kysely.transaction().execute(async (trx) => {
      await this.recordEvent({ tenantId: user.tenantId, userId: user.id, kind: 'reported', details: { note: note.slice(0, 500) } }, trx);
      await writeAudit(trx, { tenantId: user.tenantId, eventType: 'outbound.account_reported', actor, target: { type: 'user', id: user.id }, metadata: { note: note.slice(0, 500) } });
    });
  }

  /** One account's state; a user without a row is `normal`. */
  async get(scope: Scope, userRef: string): Promise<AccountView> {
    const user = await this.user(scope, userRef);
    const row = await this.row(user.id);
    if (!row) {
      return { userId: user.id, tenantId: user.tenantId, email: user.email, level: 'normal', suspended: false, suspendedAt: null, suspendedReason: null, autoReenableAt: null, lastScore: null, updatedAt: user.updatedAt };
    }
    return toView(row, user.email);
  }

  async list(scope: Scope, opts: { status?: AccountStatusFilter; limit?: number } = {}): Promise<AccountView[]> {
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
    let q = this.db.kysely
      .selectFrom('outbound_accounts as a')
      .leftJoin('users as u', 'u.id', 'a.user_id')
      .selectAll('a')
      .select('u.email as email')
      .where(inScope(scope, 'a.tenant_id'));
    const status = opts.status ?? 'all';
    if (status === 'suspended') q = q.where('a.suspended_at', 'is not', null);
    else if (status === 'soft') q = q.where('a.level', '=', 'soft').where('a.suspended_at', 'is', null);
    else if (status === 'normal') q = q.where('a.level', '=', 'normal').where('a.suspended_at', 'is', null);
    const rows = await q.orderBy('a.updated_at', 'desc').orderBy('a.user_id').limit(limit).execute();
    return rows.map((r) => toView(r, r.email ?? null));
  }

  async stats(scope: Scope): Promise<OutboundStats> {
    const since = this.now() - DAY_MS;
    const k = this.db.kysely;
    const [levels, suspended, whitelisted, events, messages] = await Promise.all([
      k.selectFrom('outbound_accounts').select(['level', (eb) => eb.fn.countAll<number>().as('n')]).where(inScope(scope)).groupBy('level').execute(),
      k.selectFrom('outbound_accounts').select((eb) => eb.fn.countAll<number>().as('n')).where(inScope(scope)).where('suspended_at', 'is not', null).executeTakeFirstOrThrow(),
      k.selectFrom('outbound_whitelist').select((eb) => eb.fn.countAll<number>().as('n')).where(inScope(scope)).executeTakeFirstOrThrow(),
      k.selectFrom('outbound_events').select(['kind', (eb) => eb.fn.countAll<number>().as('n')]).where(inScope(scope)).where('at', '>=', since).groupBy('kind').execute(),
      k.selectFrom('outbound_messages').select((eb) => eb.fn.countAll<number>().as('n')).where(inScope(scope)).where('created_at', '>=', since).executeTakeFirstOrThrow(),
    ]);
    const byLevel = Object.fromEntries(levels.map((l) => [l.level, Number(l.n)]));
    return {
      accounts: { suspended: Number(suspended.n), soft: byLevel.soft ?? 0, hard: byLevel.hard ?? 0, tracked: levels.reduce((a, l) => a + Number(l.n), 0) },
      whitelisted: Number(whitelisted.n),
      eventsLast24h: Object.fromEntries(events.map((e) => [e.kind, Number(e.n)])),
      messagesLast24h: Number(messages.n),
    };
  }

  // ── whitelist ───────────────────────────────────────────────────────────────────────────────

  /** The whitelist entry of a user (no scope: for the engine). */
  async whitelistEntry(userId: string) {
    return (await this.db.kysely.selectFrom('outbound_whitelist').select(['profile', 'hourly_limit', 'daily_limit']).where('user_id', '=', userId).executeTakeFirst()) ?? null;
  }

  async listWhitelist(scope: Scope): Promise<WhitelistView[]> {
    const rows = await this.db.kysely
      .selectFrom('outbound_whitelist as w')
      .leftJoin('users as u', 'u.id', 'w.user_id')
      .selectAll('w')
      .select('u.email as email')
      .where(inScope(scope, 'w.tenant_id'))
      .orderBy('w.created_at')
      .orderBy('w.id')
      .limit(1000)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      tenantId: r.tenant_id,
      userId: r.user_id,
      email: r.email ?? null,
      profile: r.profile,
      hourlyLimit: Number(r.hourly_limit),
      dailyLimit: Number(r.daily_limit),
      note: r.note,
      createdAt: Number(r.created_at),
    }));
  }

  /** Whitelists a user with a profile of `rate_limits.whitelist_profiles` (its limits are copied as a fallback). */
  async addWhitelist(scope: Scope, userRef: string, profileName: string, note: string, actor: AuditActor): Promise<WhitelistView> {
    const profiles = this.deps.config().rate_limits.whitelist_profiles;
    const profile = profiles[profileName];
    if (!profile) throw new ValidationError(`unknown whitelist profile "${profileName}" (known: ${Object.keys(profiles).join(', ') || 'none'})`, { field: 'profile' });
    const user = await this.user(scope, userRef);
    const id = newId();
    const t = this.now();
    try {
      await this.db.kysely.transaction().execute(async (trx) => {
        await trx
          .insertInto('outbound_whitelist')
          .values({ id, tenant_id: user.tenantId, user_id: user.id, profile: profileName, hourly_limit: profile.per_hour, daily_limit: profile.per_day, note: note.slice(0, 500), created_at: t })
          .execute();
        await writeAudit(trx, { tenantId: user.tenantId, eventType: 'outbound.whitelist_added', actor, target: { type: 'user', id: user.id }, metadata: { whitelist_id: id, profile: profileName } });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`"${user.email}" is already whitelisted`);
      throw err;
    }
    return { id, tenantId: user.tenantId, userId: user.id, email: user.email, profile: profileName, hourlyLimit: profile.per_hour, dailyLimit: profile.per_day, note: note.slice(0, 500), createdAt: t };
  }

  /** Removes a whitelist entry, named by its id or by the user (id or e-mail). */
  async removeWhitelist(scope: Scope, ref: string, actor: AuditActor): Promise<void> {
    let row = await this.db.kysely.selectFrom('outbound_whitelist').selectAll().where(inScope(scope)).where('id', '=', ref).executeTakeFirst();
    if (!row) {
      let user: User | null = null;
      try {
        user = await this.user(scope, ref);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
      if (user) row = await this.db.kysely.selectFrom('outbound_whitelist').selectAll().where(inScope(scope)).where('user_id', '=', user.id).executeTakeFirst();
    }
    if (!row) throw new NotFoundError(`whitelist entry "${ref}" not found`);
    const found = row;
    await this.db.kysely.transaction().execute(async (trx) => {
      await trx.deleteFrom('outbound_whitelist').where('id', '=', found.id).execute();
      await writeAudit(trx, { tenantId: found.tenant_id, eventType: 'outbound.whitelist_removed', actor, target: { type: 'user', id: found.user_id }, metadata: { whitelist_id: found.id, profile: found.profile } });
    });
  }
}
