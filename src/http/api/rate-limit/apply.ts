/**
 * The REST API's rate limits (SPEC §11): which counters a request hits (`rateRulesFor`) and what the
 * client is told (`applyRateLimits`).
 *
 * Headers, on every counted response (including the 429):
 *  - `X-RateLimit-Limit`: the limit of the most constraining rule;
 *  - `X-RateLimit-Remaining`: requests left in its current window;
 *  - `X-RateLimit-Reset`: SECONDS UNTIL its window resets (delta-seconds, rounded up, at least 1),
 *    not an epoch timestamp: the same unit as `Retry-After` (RFC 9110 §10.2.3) and as the IETF
 *    RateLimit header fields draft (draft-ietf-httpapi-ratelimit-headers), and immune to a client
 *    whose clock is wrong.
 * A request over any of its limits gets 429 RATE_LIMITED with `Retry-After` (seconds until every
 * exceeded window has reset) and details `{ limit, retry_after_seconds }`.
 *
 * Windows are fixed and one minute long: the SPEC states every limit "per minute". Rejected
 * requests are counted too, so a client that keeps hammering gains nothing.
 */
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import { errorBody } from '../../errors.js';
import { peerKey } from '../../../protocols/net/peer-key.js';
import type { RateCounter, RateHit, RateRule } from './types.js';

/** SPEC §11 limits are per minute. */
export const RATE_WINDOW_MS = 60_000;

export interface RateLimits {
  per_user_per_minute: number;
  admin_per_ip_per_minute: number;
  plugin_per_token_per_minute: number;
  anonymous_per_ip_per_minute: number;
}

export interface RateSubject {
  /** The authenticated caller, or null before/without authentication. */
  principal: { userId: string; apiKeyId?: string; plugin?: boolean } | null;
  /** The client address as the API sees it (after any trusted-proxy handling). */
  ip: string;
  /** Whether the route is an admin route (policy.ts). */
  admin: boolean;
}

/**
 * The counters one request hits (SPEC §11):
 *  - signed-in caller: `user:<user id>` at `per_user_per_minute`, or, for a plugin token/key,
 *    `plugin:<key id>` at `plugin_per_token_per_minute` (per token, so two plugins of one owner do
 *    not share a budget);
 *  - admin route: also `admin-ip:<address>` at `admin_per_ip_per_minute`, signed in or not;
 *  - no principal: `anon-ip:<address>` at `anonymous_per_ip_per_minute` (login, refresh, …).
 * An address is an IPv4 address or an IPv6 /64 (peerKey): one IPv6 client holds a whole /64 and
 * would otherwise evade the limit by rotating its interface identifier.
 */
export function rateRulesFor(input: RateSubject, limits: RateLimits): RateRule[] {
  const rules: RateRule[] = [];
  const { principal } = input;
  const address = peerKey(input.ip);
  if (principal) {
    if (principal.plugin) {
      const token = principal.apiKeyId ?? `user:${principal.userId}`;
      rules.push({ key: `plugin:${token}`, limit: limits.plugin_per_token_per_minute, windowMs: RATE_WINDOW_MS });
    } else {
      rules.push({ key: `user:${principal.userId}`, limit: limits.per_user_per_minute, windowMs: RATE_WINDOW_MS });
    }
  } else {
    rules.push({ key: `anon-ip:${address}`, limit: limits.anonymous_per_ip_per_minute, windowMs: RATE_WINDOW_MS });
  }
  if (input.admin) rules.push({ key: `admin-ip:${address}`, limit: limits.admin_per_ip_per_minute, windowMs: RATE_WINDOW_MS });
  return rules;
}

interface Outcome {
  rule: RateRule;
  hit: RateHit;
  remaining: number;
  over: boolean;
}

/** Whole seconds until `resetAt`, rounded up, never below 1 (a 0 would invite an immediate retry). */
export function secondsUntil(resetAt: number, now: number): number {
  return Math.max(1, Math.ceil((resetAt - now) / 1000));
}

/**
 * The rule the headers describe. Over a limit: the exceeded rule whose window ends last (the
 * request cannot succeed before then). Otherwise: the one with the fewest requests left, then the
 * later reset, then the lower limit.
 */
function mostConstraining(outcomes: Outcome[]): Outcome {
  const over = outcomes.filter((o) => o.over);
  if (over.length) return over.reduce((a, b) => (b.hit.resetAt > a.hit.resetAt ? b : a));
  return outcomes.reduce((a, b) => {
    if (b.remaining !== a.remaining) return b.remaining < a.remaining ? b : a;
    if (b.hit.resetAt !== a.hit.resetAt) return b.hit.resetAt > a.hit.resetAt ? b : a;
    return b.rule.limit < a.rule.limit ? b : a;
  });
}

/**
 * Counts the request against every rule and sets the headers. Returns true when the request may
 * proceed; false when a 429 has been sent (the caller's hook then returns `reply` and stops).
 *
 * Counter failure (database or Redis unreachable): a warning is logged and the request proceeds
 * without rate-limit headers. Availability over strictness: an outage of the counter store must
 * not take the whole API down with it, and the API's own routes still need the database and report
 * its outage themselves (503). Brute force on login stays bounded by the lockout (SPEC §10).
 */
export async function applyRateLimits(
  counter: RateCounter,
  rules: readonly RateRule[],
  reply: FastifyReply,
  log: Pick<FastifyBaseLogger, 'warn'>,
  now: () => number = Date.now,
): Promise<boolean> {
  if (rules.length === 0) return true;
  let hits: RateHit[];
  try {
    hits = await Promise.all(rules.map((r) => counter.hit(r.key, r.windowMs)));
  } catch (err) {
    // Only the message: a driver error object can carry connection details.
    log.warn({ err: { message: (err as Error)?.message ?? String(err) } }, 'rate limit counter unavailable; request let through without limits');
    return true;
  }
  const outcomes: Outcome[] = rules.map((rule, i) => ({
    rule,
    hit: hits[i],
    remaining: Math.max(0, rule.limit - hits[i].count),
    over: hits[i].count > rule.limit,
  }));
  const top = mostConstraining(outcomes);
  const t = now();
  const resetSeconds = secondsUntil(top.hit.resetAt, t);
  reply.header('X-RateLimit-Limit', String(top.rule.limit));
  reply.header('X-RateLimit-Remaining', String(top.remaining));
  reply.header('X-RateLimit-Reset', String(resetSeconds));
  if (!top.over) return true;

  const windowSeconds = Math.round(top.rule.windowMs / 1000);
  reply.header('Retry-After', String(resetSeconds));
  // Not awaited: a FastifyReply is thenable and would resolve only once the response is written.
  void reply
    .code(429)
    .send(
      errorBody('RATE_LIMITED', `rate limit of ${top.rule.limit} requests per ${windowSeconds} s exceeded; retry after ${resetSeconds} s`, {
        limit: top.rule.limit,
        retry_after_seconds: resetSeconds,
      }),
    );
  return false;
}
