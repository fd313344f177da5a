/**
 * Rate limiting of the REST API (SPEC §11). The composition root builds one counter with
 * `createRateCounter(config.api.rate_limit, db)`; the API's hook calls
 * `applyRateLimits(counter, rateRulesFor(...), reply, request.log)` on every request, and periodic
 * maintenance calls `counter.prune()`.
 */
import type { Static } from '@sinclair/typebox';
import type { RateLimitConfigSchema } from '../../../config/sections/api.js';
import type { Database } from '../../../store/db/database.js';
import { DatabaseRateCounter } from './db-counter.js';
import { RedisRateCounter } from './redis-counter.js';
import { MemoryRateCounter } from './memory-counter.js';
import type { RateCounter } from './types.js';

export type { RateCounter, RateHit, RateRule } from './types.js';
export { DatabaseRateCounter, storedRateKey, windowStartOf, MAX_STORED_KEY_LENGTH } from './db-counter.js';
export { RedisRateCounter, DEFAULT_REDIS_KEY_PREFIX } from './redis-counter.js';
export { MemoryRateCounter } from './memory-counter.js';
export { applyRateLimits, rateRulesFor, secondsUntil, RATE_WINDOW_MS, type RateLimits, type RateSubject } from './apply.js';

export type RateLimitConfig = Static<typeof RateLimitConfigSchema>;

/**
 * The counter store chosen by `api.rate_limit.backend`. The backend and `redis_url` are read once
 * (changing them needs a restart); the limits themselves are read per request by the caller, so a
 * reload changes them at once.
 */
export function createRateCounter(config: Pick<RateLimitConfig, 'backend' | 'redis_url'>, db: Database): RateCounter {
  switch (config.backend) {
    case 'redis':
      return new RedisRateCounter({ url: config.redis_url });
    case 'database':
      return new DatabaseRateCounter(db);
    case 'memory':
      return new MemoryRateCounter();
    default:
      // auto: one process with SQLite, shared counters with PostgreSQL (every node sees them).
      return db.dialect === 'sqlite' ? new MemoryRateCounter() : new DatabaseRateCounter(db);
  }
}
