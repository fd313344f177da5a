/**
 * Fixed-window rate counters in Redis (`api.rate_limit.backend: redis`), shared by every node that
 * uses the same Redis, so the limits of SPEC §11 hold cluster-wide.
 *
 * One key per rule and window, `mairust:rl:<key>:<window start ms>`. A hit is one Lua script (INCR,
 * then PEXPIREAT at the window's end plus a grace period), which Redis runs atomically: concurrent
 * hits from any number of nodes are each counted once, and a key never outlives its window by more
 * than the grace, so no pruning is needed.
 *
 * Redis unreachable: `hit()` rejects (at the latest after `commandTimeoutMs`) instead of waiting;
 * the API's hook (applyRateLimits) logs a warning and lets the request through — availability of
 * the API over strictness of the limit. The client reconnects on its own, so counting resumes
 * without a restart when Redis is back.
 */
import { Redis } from 'ioredis';
import { storedRateKey, windowStartOf } from './db-counter.js';
import type { RateCounter, RateHit } from './types.js';

export const DEFAULT_REDIS_KEY_PREFIX = 'mairust:rl:';

/** Time a key is kept after its window ends, so a node whose clock lags a little still finds it. */
const EXPIRY_GRACE_MS = 5_000;

// KEYS[1] = counter key, ARGV[1] = expiry (ms since the epoch). Setting the expiry on every hit is
// idempotent (same value) and repairs a key whose expiry was somehow lost.
const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return count
`;

export interface RedisRateCounterOptions {
  /** `redis://[user:password@]host:port[/db]` (a secret: never logged). */
  url: string;
  /** Prepended to every key (tests use a unique one per run). Default `mairust:rl:`. */
  keyPrefix?: string;
  /** How long a hit may wait for Redis, connected or not, before it fails. Default 1000 ms. */
  commandTimeoutMs?: number;
  now?: () => number;
}

type RateRedis = Redis & { mairustRateHit(key: string, expireAt: number): Promise<number> };

export class RedisRateCounter implements RateCounter {
  private readonly client: RateRedis;
  private readonly prefix: string;
  private readonly now: () => number;

  constructor(opts: RedisRateCounterOptions) {
    this.prefix = opts.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
    this.now = opts.now ?? Date.now;
    const client = new Redis(opts.url, {
      // Queued while (re)connecting, but never longer than the timeout: a request must not hang
      // because Redis is down.
      commandTimeout: opts.commandTimeoutMs ?? 1000,
      maxRetriesPerRequest: 1,
      lazyConnect: false,
    });
    // Connection errors surface as rejected hits (logged by applyRateLimits); without a listener
    // ioredis would print each reconnect failure to stderr, outside the structured log.
    client.on('error', () => {});
    client.defineCommand('mairustRateHit', { numberOfKeys: 1, lua: HIT_SCRIPT });
    this.client = client as RateRedis;
  }

  async hit(key: string, windowMs: number): Promise<RateHit> {
    if (!Number.isInteger(windowMs) || windowMs <= 0) throw new RangeError(`windowMs must be a positive integer (got ${windowMs})`);
    const windowStart = windowStartOf(this.now(), windowMs);
    const resetAt = windowStart + windowMs;
    const redisKey = `${this.prefix}${storedRateKey(key)}:${windowStart}`;
    const count = await this.client.mairustRateHit(redisKey, resetAt + EXPIRY_GRACE_MS);
    return { count: Number(count), resetAt };
  }

  /** Redis expires the keys itself. */
  async prune(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    if (this.client.status === 'ready') {
      await this.client.quit().catch(() => this.client.disconnect());
    } else {
      this.client.disconnect();
    }
  }
}
