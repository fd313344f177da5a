/**
 * The outbound spam policy engine (SPEC §8, step 2 of §3.2): rate limits, then a score from
 * rate, content and history signals, then a level and its action.
 *
 * Levels (strongest first):
 *  - suspended account → block with the SPEC §8 reply until unsuspended (admin) or, for automatic
 *    suspensions, until `auto_reenable_after_hours` have passed (lifted and recorded on the next
 *    check);
 *  - hard: a user limit (per hour/day, or the whitelist profile's) exceeded, or score ≥ hard_score
 *    → block with EXACTLY `550 5.7.1 Sending from this account is temporarily suspended. Please
 *    contact your administrator.` and suspend the account (event row, audit, `account.suspended`).
 *    Receiving is untouched: suspension lives only in `outbound_accounts`;
 *  - domain: the sending domain's hourly limit (or the tenant's hourly / plan daily limit)
 *    exceeded → temporary block `451 4.7.1` for everyone sending from it, an event once per window;
 *    nobody is suspended (one user's volume does not prove the others are compromised);
 *  - soft: over `soft_ratio` of any limit, or score ≥ soft_score → delay through the queue by
 *    `soft_delay_seconds` and notify the monitor;
 *  - normal: allow.
 *
 * `policy.enabled: false` turns the SCORE off (content and history signals are still listed, the
 * score is 0); the rate limits always apply — they are the rate limiter of §3.2, not the engine.
 *
 * Whitelisted accounts (newsletters) use their profile's limits, and repeated identical content
 * is not scored for them: sending one text to many people one by one is what they are for.
 */
import { createHash } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Database } from '../../store/db/database.js';
import type { TenancyService } from '../../core/tenancy/service.js';
import { systemScope, tenantScope } from '../../core/scope.js';
import type { RateCounter } from '../../http/api/rate-limit/types.js';
import type { EventPublisher } from '../../webhooks/types.js';
import type { OutboundConfig } from '../../config/sections/outbound.js';
import type { OutboundAccountsTable, OutboundLevel } from '../../store/db/types.js';
import { peerKey } from '../../protocols/net/peer-key.js';
import type { OutboundPolicy, PolicyDecision, PolicySignal, SendAttempt } from '../types.js';
import { OutboundAccounts } from './accounts.js';
import { createOutboundPolicyMetrics, type OutboundPolicyMetrics } from './metrics.js';
import { createPolicyMonitor, type PolicyMonitor } from './monitor.js';
import { countMessage, describeCheck, effectiveLimits, HOUR_MS, keys, MINUTE_MS, DAY_MS, overHard, overSoft, type LimitCheck } from './rate-limiter.js';
import {
  adminReportsSignal,
  burstSignal,
  components as componentsOf,
  dangerousUrlSignal,
  extractUrls,
  HISTORY_DAYS,
  levelFor,
  newClientIpSignal,
  pastBlocksSignal,
  rateSignals,
  recipientCountSignal,
  repeatedContentSignal,
  score as scoreOf,
  spamPatternSignal,
  topSignals,
  unusualUserAgentSignal,
} from './signals.js';

/** SPEC §8: the reply to every refused message of a suspended (or hard-limited) account. */
export const SUSPENDED_REPLY = Object.freeze({
  code: 550,
  enhanced: '5.7.1',
  message: 'Sending from this account is temporarily suspended. Please contact your administrator.',
});

/** Domain/tenant limit: temporary (RFC 3463 4.7.1), the client retries after the window. */
export const DOMAIN_LIMIT_REPLY = Object.freeze({ code: 451, enhanced: '4.7.1', message: 'Sending from this domain is temporarily rate limited. Please try again later.' });
export const TENANT_LIMIT_REPLY = Object.freeze({ code: 451, enhanced: '4.7.1', message: 'Sending from this organisation is temporarily rate limited. Please try again later.' });

/** How long a tenant's plan limit is cached (real time, not the policy clock). */
const PLAN_CACHE_MS = 30_000;

export interface OutboundPolicyDeps {
  db: Database;
  /** The shared rate counters (on PostgreSQL: shared by every node). */
  counter: RateCounter;
  tenancy: TenancyService;
  /** Read on every message (rate_limits and policy are reloadable). */
  config: () => OutboundConfig;
  events?: EventPublisher;
  logger: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
  now?: () => number;
  /** Registry for the outbound metrics (or ready metrics); default: a private registry. */
  metrics?: OutboundPolicyMetrics | Registry;
  /** Default: POSTs to `policy.monitor_url`, throttled through `counter`. */
  monitor?: PolicyMonitor;
}

export interface OutboundPolicyEngine extends OutboundPolicy {
  /** Suspension, listing and whitelist management over the same state (API / CLI). */
  readonly accounts: OutboundAccounts;
  readonly metrics: OutboundPolicyMetrics;
}

function isMetrics(m: OutboundPolicyMetrics | Registry): m is OutboundPolicyMetrics {
  return 'decisions' in m && 'suspended' in m;
}

function fmt(n: number): string {
  return String(Math.round(n * 100) / 100);
}

function signalList(signals: readonly PolicySignal[]): string {
  const top = topSignals(signals);
  return top.length ? top.map((s) => `${s.name} ${fmt(s.value)}`).join(', ') : 'no signals';
}

export function createOutboundPolicy(deps: OutboundPolicyDeps): OutboundPolicyEngine {
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics && isMetrics(deps.metrics) ? deps.metrics : createOutboundPolicyMetrics(deps.metrics as Registry | undefined);
  const accounts = new OutboundAccounts({ db: deps.db, tenancy: deps.tenancy, config: deps.config, events: deps.events, metrics, now });
  const monitor = deps.monitor ?? createPolicyMonitor({ url: () => deps.config().policy.monitor_url, counter: deps.counter, logger: deps.logger, now });
  const planCache = new Map<string, { daily: number; until: number }>();

  async function planDaily(tenantId: string): Promise<number> {
    const cached = planCache.get(tenantId);
    if (cached && cached.until > Date.now()) return cached.daily;
    const tenant = await deps.tenancy.tenants.get(systemScope, tenantId);
    const daily = deps.tenancy.effectiveLimits(tenant).daily_outbound;
    planCache.set(tenantId, { daily, until: Date.now() + PLAN_CACHE_MS });
    return daily;
  }

  function notify(tenantId: string, userId: string, domainId: string | null, decision: PolicyDecision, suspended: boolean): void {
    // Fire-and-forget: the monitor's outcome never affects the decision (SPEC §8).
    void monitor.notify({ tenantId, userId, domainId, decision, suspended }).catch(() => {});
  }

  function suspendedDecision(row: OutboundAccountsTable): PolicyDecision {
    const since = new Date(Number(row.suspended_at)).toISOString();
    const detail = `suspended since ${since}${row.suspended_reason ? `: ${row.suspended_reason}` : ''}`;
    return {
      level: 'hard',
      action: 'block',
      delayMs: 0,
      score: row.last_score === null ? 0 : Number(row.last_score),
      components: { rate: 0, content: 0, history: 0 },
      signals: [{ name: 'account_suspended', component: 'history', value: 1, detail }],
      reason: `Sending from this account is suspended (${detail}).`,
      reply: { ...SUSPENDED_REPLY },
    };
  }

  /**
   * The suspension check: null when the account may send. An automatic suspension past its
   * re-enable time is lifted here (recorded and audited by `unsuspendUser`).
   */
  async function checkSuspension(tenantId: string, userId: string, row: OutboundAccountsTable | null): Promise<PolicyDecision | null> {
    if (!row || row.suspended_at === null || row.suspended_at === undefined) return null;
    const reenableAt = row.auto_reenable_at === null ? null : Number(row.auto_reenable_at);
    if (reenableAt !== null && now() >= reenableAt) {
      await accounts.unsuspendUser({ id: userId, tenantId }, { automatic: true });
      deps.logger.info?.({ tenantId, userId }, 'outbound suspension lifted automatically (auto_reenable_after_hours)');
      return null;
    }
    return suspendedDecision(row);
  }

  function record(decision: PolicyDecision, rateLimited: boolean): PolicyDecision {
    metrics.decisions.inc({ result: decision.action });
    metrics.score.observe(decision.score);
    if (decision.action === 'block') metrics.blocked.inc();
    if (rateLimited) metrics.rateLimited.inc();
    return decision;
  }

  async function evaluate(a: SendAttempt): Promise<PolicyDecision> {
    const cfg = deps.config();
    const row = await accounts.row(a.userId);
    const blocked = await checkSuspension(a.tenantId, a.userId, row);
    if (blocked) return record(blocked, false);

    const [whitelist, history, daily] = await Promise.all([accounts.whitelistEntry(a.userId), accounts.history(a.userId), planDaily(a.tenantId)]);
    const limits = effectiveLimits(cfg.rate_limits, whitelist, daily);
    const epoch = history.epoch;

    // Every hit of this message, concurrently: each is one atomic statement.
    const ip = a.clientIp ? peerKey(a.clientIp) : null;
    const agentHash = a.userAgent ? createHash('sha256').update(a.userAgent.trim().toLowerCase()).digest('hex').slice(0, 16) : null;
    const seenWindow = HISTORY_DAYS * DAY_MS;
    const [checks, minute, copies, seen, ipHit, agentHit] = await Promise.all([
      countMessage(deps.counter, a, limits, epoch),
      deps.counter.hit(keys.userMinute(a.userId, epoch), MINUTE_MS),
      deps.counter.hit(keys.content(a.userId, a.contentHash), HOUR_MS),
      deps.counter.hit(keys.userSeen(a.userId), seenWindow),
      ip ? deps.counter.hit(keys.seenIp(a.userId, ip), seenWindow) : null,
      agentHash ? deps.counter.hit(keys.seenAgent(a.userId, agentHash), seenWindow) : null,
    ]);
    const hasSentBefore = seen.count > 1;

    const repeated = repeatedContentSignal(copies.count);
    if (limits.profile) {
      repeated.value = 0;
      repeated.detail += ` (not scored: whitelist profile ${limits.profile})`;
    }
    const urls = a.urls.length ? a.urls : extractUrls(a.bodyText);
    const signals: PolicySignal[] = [
      ...rateSignals(checks),
      burstSignal(minute.count, limits.userPerHour || cfg.rate_limits.user_per_hour || 200),
      repeated,
      recipientCountSignal(a.recipients.length),
      spamPatternSignal(a.subject, a.bodyText),
      dangerousUrlSignal(urls),
      pastBlocksSignal(history.blocks),
      adminReportsSignal(history.reports),
      newClientIpSignal(!!ipHit && ipHit.count === 1 && hasSentBefore, a.clientIp),
      unusualUserAgentSignal(a.userAgent, !!agentHit && agentHit.count === 1 && hasSentBefore),
    ];
    const comps = componentsOf(signals);
    const score = cfg.policy.enabled ? scoreOf(comps, cfg.policy.weights) : 0;

    const userOver = checks.filter((c) => c.scope === 'user' && overHard(c));
    const groupOver = checks.filter((c) => c.scope !== 'user' && overHard(c));
    const softOver = checks.filter((c) => overSoft(c, limits.softRatio));
    const level = levelFor({ score, softScore: cfg.policy.soft_score, hardScore: cfg.policy.hard_score, userHard: userOver.length > 0, groupHard: groupOver.length > 0, overSoft: softOver.length > 0 });
    const rateLimited = softOver.length > 0;
    const base = { score, components: { rate: round(comps.rate), content: round(comps.content), history: round(comps.history) }, signals };
    const scoreText = `score ${fmt(score)} (${signalList(signals)})`;

    if (level === 'hard') {
      const why = userOver.length
        ? `${userOver.map((c) => `${c.name} limit exceeded (${describeCheck(c)})`).join('; ')}`
        : `score ${fmt(score)} ≥ hard limit ${fmt(cfg.policy.hard_score)} (${signalList(signals)})`;
      const decision: PolicyDecision = { ...base, level, action: 'block', delayMs: 0, reason: `Hard limit: ${why}; account suspended.`, reply: { ...SUSPENDED_REPLY } };
      let email: string | undefined;
      try {
        email = (await deps.tenancy.users.get(tenantScope(a.tenantId), a.userId)).email;
      } catch {
        email = undefined; // the event still names the user id
      }
      const suspended = await accounts.suspendUser(
        { id: a.userId, tenantId: a.tenantId, email },
        { reason: why, automatic: true, details: { score, components: decision.components, signals: topSignals(signals, 5) } },
      );
      if (suspended) notify(a.tenantId, a.userId, a.domainId, decision, true);
      return record(decision, rateLimited);
    }

    if (level === 'domain') {
      const tenantLimit = groupOver.every((c) => c.scope === 'tenant');
      const why = groupOver.map((c) => `${c.name} limit exceeded (${describeCheck(c)})`).join('; ');
      const decision: PolicyDecision = {
        ...base,
        level,
        action: 'block',
        delayMs: 0,
        reason: `${tenantLimit ? 'Tenant' : 'Domain'} limit: ${why}; sending from it is paused until the window resets.`,
        reply: { ...(tenantLimit ? TENANT_LIMIT_REPLY : DOMAIN_LIMIT_REPLY) },
      };
      // Exactly one attempt sees count == limit + 1 (the hits are atomic): one event per window.
      if (groupOver.some((c) => c.count === c.limit + 1)) {
        await accounts.recordEvent({ tenantId: a.tenantId, userId: a.userId, domainId: a.domainId, kind: 'domain_limited', details: { reason: why } });
        notify(a.tenantId, a.userId, a.domainId, decision, false);
      }
      return record(decision, rateLimited);
    }

    if (level === 'soft') {
      const why = softOver.length
        ? softOver.map((c) => `${c.name} over the soft point (${describeCheck(c)}, soft above ${Math.floor(c.limit * limits.softRatio)})`).join('; ')
        : `score ${fmt(score)} ≥ soft limit ${fmt(cfg.policy.soft_score)} (${signalList(signals)})`;
      const delayMs = cfg.policy.soft_delay_seconds * 1000;
      const decision: PolicyDecision = { ...base, level, action: 'delay', delayMs, reason: `Soft limit: ${why}; delayed ${cfg.policy.soft_delay_seconds} s.` };
      if (row?.level !== 'soft') {
        await accounts.setLevel(a.tenantId, a.userId, 'soft', score);
        await accounts.recordEvent({ tenantId: a.tenantId, userId: a.userId, domainId: a.domainId, kind: 'soft_limited', details: { reason: why, score } });
      }
      notify(a.tenantId, a.userId, a.domainId, decision, false);
      return record(decision, rateLimited);
    }

    const decision: PolicyDecision = { ...base, level: 'normal', action: 'allow', delayMs: 0, reason: `Normal: within limits, ${scoreText} below ${fmt(cfg.policy.soft_score)}.` };
    if (row && (row.level as OutboundLevel) !== 'normal') await accounts.setLevel(a.tenantId, a.userId, 'normal', score);
    return record(decision, rateLimited);
  }

  return {
    accounts,
    metrics,
    evaluate,
    async accountBlocked(tenantId, userId) {
      return checkSuspension(tenantId, userId, await accounts.row(userId));
    },
  };
}

function round(v: number): number {
  return Math.round(v * 10_000) / 10_000;
}

export type { LimitCheck };
