/**
 * Fixed-window rate counters in the metadata database (`rate_counters`, migration 0008). On
 * PostgreSQL every node shares the table, so the limits of SPEC §11 hold cluster-wide; on SQLite
 * (embedded shape, one node) they hold for that node.
 *
 * A hit is ONE statement, `INSERT … ON CONFLICT (key) DO UPDATE … RETURNING`, in both dialects:
 * PostgreSQL takes the row lock for the upsert, SQLite runs each statement under its write lock,
 * so concurrent hits from any number of connections or nodes are each counted exactly once and
 * each sees its own count. A read-then-write would lose hits under concurrency.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Database } from '../../../store/db/database.js';
import type { RateCounter, RateHit } from './types.js';

/**
 * Keys longer than this are stored as a hash: the key is a primary key (a B-tree entry; PostgreSQL
 * refuses index entries over ~2.7 kB), and a caller-influenced key must not grow rows without bound.
 */
export const MAX_STORED_KEY_LENGTH = 128;

/** The key as stored: itself when short (readable for operators), else `sha256:<hex>` (71 chars). */
export function storedRateKey(key: string): string {
  if (key.length <= MAX_STORED_KEY_LENGTH) return key;
  return `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** Start of the fixed window of `windowMs` that contains `t` (windows are aligned to the epoch). */
export function windowStartOf(t: number, windowMs: number): number {
  return Math.floor(t / windowMs) * windowMs;
}

export interface DatabaseRateCounterOptions {
  /** Clock (ms since the epoch); tests may pass their own. */
  now?: () => number;
}

export class DatabaseRateCounter implements RateCounter {
  private readonly now: () => number;

  constructor(
    private readonly db: Database,
    opts: DatabaseRateCounterOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  async hit(key: string, windowMs: number): Promise<RateHit> {
    if (!Number.isInteger(windowMs) || windowMs <= 0) throw new RangeError(`windowMs must be a positive integer (got ${windowMs})`);
    const windowStart = windowStartOf(this.now(), windowMs);
    const windowEnd = windowStart + windowMs;
    // The stored row belongs to an older window: this hit opens a new one at 1. A stored window that
    // is NEWER than ours (another node's clock is ahead) is kept and counted into, so clock skew
    // between nodes can never reset a running count. Every SET expression reads the row as it was
    // before the statement, in both dialects, so `older` means the same in each of them.
    const older = sql<boolean>`rate_counters.window_start < ${windowStart}`;
    const row = await this.db.kysely
      .insertInto('rate_counters')
      .values({ key: storedRateKey(key), window_start: windowStart, count: 1, expires_at: windowEnd })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          count: sql<number>`CASE WHEN ${older} THEN 1 ELSE rate_counters.count + 1 END`,
          window_start: sql<number>`CASE WHEN ${older} THEN ${windowStart} ELSE rate_counters.window_start END`,
          expires_at: sql<number>`CASE WHEN ${older} THEN ${windowEnd} ELSE rate_counters.expires_at END`,
        }),
      )
      .returning(['count', 'window_start'])
      .executeTakeFirstOrThrow();
    return { count: Number(row.count), resetAt: Number(row.window_start) + windowMs };
  }

  /** Deletes the counters whose window has ended; returns how many. Run it from periodic maintenance. */
  async prune(): Promise<number> {
    const result = await this.db.kysely.deleteFrom('rate_counters').where('expires_at', '<=', this.now()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** The database belongs to the application, which closes it; nothing of our own to release. */
  async close(): Promise<void> {}
}
