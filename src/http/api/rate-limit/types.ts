/**
 * Rate limiting of the REST API (SPEC §11): fixed-window counters shared by every node (database
 * or Redis), applied by the API's hook with the rules of `rateRulesFor`.
 */

/** One counter: at most `limit` hits per `windowMs` for `key`. */
export interface RateRule {
  /** e.g. `user:<id>`, `admin-ip:<addr>`, `plugin:<key id>`, `anon-ip:<addr>`. */
  key: string;
  limit: number;
  windowMs: number;
}

export interface RateHit {
  /** Hits in the current window, including this one. */
  count: number;
  /** When the current window ends (ms since the epoch). */
  resetAt: number;
}

export interface RateCounter {
  /** Counts one hit for `key` in the fixed window of `windowMs` that contains now. */
  hit(key: string, windowMs: number): Promise<RateHit>;
  /** Removes expired counters (database backend; a no-op where the store expires keys itself). */
  prune(): Promise<number>;
  close(): Promise<void>;
}
