/**
 * The outbound rate limiter (SPEC §8 "Rate limits"): fixed-window counters per user (hour, day),
 * per sending domain (hour) and per tenant (hour, and the plan's `daily_outbound` per day).
 *
 * What counts: ONE hit per submitted MESSAGE, whatever its number of recipients — the SPEC states
 * every limit in messages. A message's recipient count is a separate content signal
 * (signals.ts `recipient_count`), so a mass mailing to 500 addresses still raises the score.
 *
 * The counters are the shared `RateCounter` of the REST API (src/http/api/rate-limit): on
 * PostgreSQL the `DatabaseRateCounter` shares counts between every node, so the limits hold
 * cluster-wide. Windows are fixed and aligned to the epoch (an hour is a clock hour, a day a UTC
 * day): a burst straddling a boundary may send up to twice a limit, which the burst signal and the
 * score still see. Every attempt that reaches the limiter is counted, refused ones included, so
 * hammering a limit gains nothing.
 *
 * A limit of 0 means "no limit" (the rate limits' and the plan's `daily_outbound` minimum is 0; a
 * send-nothing tenant is a suspended tenant, not a zero rate).
 *
 * Counter keys carry an `epoch` (the time of the account's last unsuspension, 0 if never): an admin
 * who lifts a suspension gives the account fresh per-user counts, instead of it being suspended
 * again by its very next message in the same window.
 */
import type { OutboundConfig } from '../../config/sections/outbound.js';
import type { RateCounter } from '../../http/api/rate-limit/types.js';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const MINUTE_MS = 60_000;

export type LimitName = 'user_hour' | 'user_day' | 'domain_hour' | 'tenant_hour' | 'tenant_day';

/** Whom a limit protects: a user's limits suspend the user; domain/tenant limits stop the group. */
export type LimitScope = 'user' | 'domain' | 'tenant';

export interface LimitCheck {
  name: LimitName;
  scope: LimitScope;
  /** Messages in the current window, this one included. */
  count: number;
  limit: number;
  windowMs: number;
  resetAt: number;
}

export interface EffectiveLimits {
  userPerHour: number;
  userPerDay: number;
  domainPerHour: number;
  tenantPerHour: number;
  tenantPerDay: number;
  softRatio: number;
  /** The whitelist profile that raised the user's limits, or null. */
  profile: string | null;
}

export interface WhitelistEntry {
  profile: string;
  hourly_limit: number;
  daily_limit: number;
}

/**
 * The limits for one user. A whitelisted user gets its profile's hourly and daily limits from the
 * CURRENT config (profiles are reloadable), falling back to the values stored when it was
 * whitelisted if the profile has since been removed from the config.
 */
export function effectiveLimits(rateLimits: OutboundConfig['rate_limits'], whitelist: WhitelistEntry | null, planDailyOutbound: number): EffectiveLimits {
  let userPerHour = rateLimits.user_per_hour;
  let userPerDay = rateLimits.user_per_day;
  if (whitelist) {
    const profile = rateLimits.whitelist_profiles[whitelist.profile];
    userPerHour = profile ? profile.per_hour : whitelist.hourly_limit;
    userPerDay = profile ? profile.per_day : whitelist.daily_limit;
  }
  return {
    userPerHour,
    userPerDay,
    domainPerHour: rateLimits.domain_per_hour,
    tenantPerHour: rateLimits.tenant_per_hour,
    tenantPerDay: planDailyOutbound,
    softRatio: rateLimits.soft_ratio,
    profile: whitelist?.profile ?? null,
  };
}

/** Counter key prefixes (`out:` keeps them apart from the API's `user:` / `anon-ip:` keys). */
export const keys = {
  userHour: (userId: string, epoch: number) => `out:uh:${userId}:${epoch}`,
  userDay: (userId: string, epoch: number) => `out:ud:${userId}:${epoch}`,
  userMinute: (userId: string, epoch: number) => `out:um:${userId}:${epoch}`,
  domainHour: (domainId: string) => `out:dh:${domainId}`,
  tenantHour: (tenantId: string) => `out:th:${tenantId}`,
  tenantDay: (tenantId: string) => `out:td:${tenantId}`,
  content: (userId: string, contentHash: string) => `out:ch:${userId}:${contentHash}`,
  /** Messages of the user in the seen-IPs window: tells a first-ever sender from a new address. */
  userSeen: (userId: string) => `out:us:${userId}`,
  seenIp: (userId: string, ip: string) => `out:ip:${userId}:${ip}`,
  seenAgent: (userId: string, agentHash: string) => `out:ua:${userId}:${agentHash}`,
};

export interface CountInput {
  tenantId: string;
  userId: string;
  domainId: string | null;
}

/**
 * Counts one message against every limit that applies (limits of 0 are skipped) and returns the
 * counts, in the order user hour, user day, domain hour, tenant hour, tenant day. The hits run
 * concurrently: each is one atomic statement of its own.
 */
export async function countMessage(counter: RateCounter, input: CountInput, limits: EffectiveLimits, epoch: number): Promise<LimitCheck[]> {
  const plan: { name: LimitName; scope: LimitScope; key: string; limit: number; windowMs: number }[] = [];
  const add = (name: LimitName, scope: LimitScope, key: string, limit: number, windowMs: number) => {
    if (limit > 0) plan.push({ name, scope, key, limit, windowMs });
  };
  add('user_hour', 'user', keys.userHour(input.userId, epoch), limits.userPerHour, HOUR_MS);
  add('user_day', 'user', keys.userDay(input.userId, epoch), limits.userPerDay, DAY_MS);
  if (input.domainId) add('domain_hour', 'domain', keys.domainHour(input.domainId), limits.domainPerHour, HOUR_MS);
  add('tenant_hour', 'tenant', keys.tenantHour(input.tenantId), limits.tenantPerHour, HOUR_MS);
  add('tenant_day', 'tenant', keys.tenantDay(input.tenantId), limits.tenantPerDay, DAY_MS);
  const hits = await Promise.all(plan.map((p) => counter.hit(p.key, p.windowMs)));
  return plan.map((p, i) => ({ name: p.name, scope: p.scope, count: hits[i].count, limit: p.limit, windowMs: p.windowMs, resetAt: hits[i].resetAt }));
}

/** Over the hard limit: more messages than the limit in the window (the limit itself is allowed). */
export function overHard(check: LimitCheck): boolean {
  return check.count > check.limit;
}

/** Over the soft point: more than `soft_ratio` of the limit (160 of 200 is still normal; 161 is soft). */
export function overSoft(check: LimitCheck, softRatio: number): boolean {
  return check.count > Math.floor(check.limit * softRatio);
}

/** `212 of 200 per hour` — the measured value for explanations. */
export function describeCheck(check: LimitCheck): string {
  const per = check.windowMs === HOUR_MS ? 'hour' : check.windowMs === DAY_MS ? 'day' : `${Math.round(check.windowMs / 1000)} s`;
  return `${check.count} of ${check.limit} per ${per}`;
}
