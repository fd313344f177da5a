/**
 * Login lockout (SPEC §10): after `maxFailures` failed logins within `windowMs`, a key is locked
 * for `lockMs`. Callers count every failure under two keys — the account and the client address —
 * so that guessing one account's password from many addresses, and guessing many accounts' passwords
 * from one address, are both stopped. Used by SMTP AUTH now; IMAP, POP3 and the HTTP login later.
 *
 * The counters live in the `auth_failures` table (migration 0007) so that every node of a cluster
 * sees the same lock and a restart does not lift it. Each failure is one atomic upsert, so concurrent
 * failures on several nodes are all counted.
 *
 * A lock is not extended by attempts made while it holds: callers do not verify passwords for a
 * locked key (so a locked account cannot be probed) and therefore record no failures then. When the
 * lock ends the count starts again from zero.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Database } from '../store/db/database.js';

export interface LockoutOptions {
  /** Failures within the window that lock the key (SPEC §10: 5). */
  maxFailures: number;
  /** How long failures are remembered; a failure after the window starts a new count. */
  windowMs: number;
  /** How long a key stays locked (SPEC §10: 15 minutes). */
  lockMs: number;
  /** Clock, for tests. */
  now?: () => number;
}

export const LOCKOUT_DEFAULTS: Readonly<Omit<LockoutOptions, 'now'>> = Object.freeze({
  maxFailures: 5,
  windowMs: 15 * 60_000,
  lockMs: 15 * 60_000,
});

export interface LockState {
  locked: boolean;
  /** Milliseconds until the lock ends (0 when not locked). */
  retryAfterMs: number;
}

/** Longest key stored; longer logins are stored as a hash so a row stays small. */
const MAX_LOGIN_IN_KEY = 320;

/** The key of an account: its login, lower-cased (logins are case-insensitive e-mail addresses). */
export function accountLockKey(login: string): string {
  const normalized = login.trim().toLowerCase();
  if (normalized.length <= MAX_LOGIN_IN_KEY) return `account:${normalized}`;
  return `account:sha256:${createHash('sha256').update(normalized).digest('hex')}`;
}

/** The key of a client address; pass an address already reduced to what one client controls (see peerKey). */
export function addressLockKey(address: string): string {
  return `ip:${address}`;
}

export class Lockout {
  private readonly opts: Required<LockoutOptions>;

  constructor(
    private readonly db: Database,
    options: Partial<LockoutOptions> = {},
  ) {
    this.opts = { ...LOCKOUT_DEFAULTS, now: Date.now, ...options };
    const { maxFailures, windowMs, lockMs } = this.opts;
    if (!Number.isInteger(maxFailures) || maxFailures < 1) throw new RangeError('lockout maxFailures must be an integer ≥ 1');
    if (!(windowMs > 0) || !(lockMs > 0)) throw new RangeError('lockout windowMs and lockMs must be > 0');
  }

  /** Whether `key` is locked now. */
  async check(key: string): Promise<LockState> {
    const t = this.opts.now();
    const row = await this.db.kysely.selectFrom('auth_failures').select('locked_until').where('key', '=', key).executeTakeFirst();
    const until = row?.locked_until ?? null;
    return until !== null && until > t ? { locked: true, retryAfterMs: until - t } : { locked: false, retryAfterMs: 0 };
  }

  /** The first lock among `keys` that holds longest (one query). */
  async checkAny(keys: readonly string[]): Promise<LockState> {
    if (keys.length === 0) return { locked: false, retryAfterMs: 0 };
    const t = this.opts.now();
    const rows = await this.db.kysely
      .selectFrom('auth_failures')
      .select('locked_until')
      .where('key', 'in', [...keys])
      .where('locked_until', '>', t)
      .execute();
    const until = Math.max(0, ...rows.map((r) => Number(r.locked_until)));
    return until > t ? { locked: true, retryAfterMs: until - t } : { locked: false, retryAfterMs: 0 };
  }

  /** Counts one failed login against every key (account and address). */
  async recordFailure(keys: readonly string[]): Promise<void> {
    const { maxFailures, windowMs, lockMs } = this.opts;
    for (const key of new Set(keys)) {
      const t = this.opts.now();
      const lockUntil = t + lockMs;
      // A count starts afresh when its window has passed or its lock has ended. Every SET expression
      // reads the row as it was before this statement (both dialects), so `fresh` means the same in
      // each of them.
      const fresh = sql<boolean>`(auth_failures.window_started_at + ${windowMs} <= ${t}
        OR (auth_failures.locked_until IS NOT NULL AND auth_failures.locked_until <= ${t}))`;
      const nextCount = sql<number>`CASE WHEN ${fresh} THEN 1 ELSE auth_failures.failures + 1 END`;
      await this.db.kysely
        .insertInto('auth_failures')
        .values({
          key,
          failures: 1,
          window_started_at: t,
          locked_until: maxFailures <= 1 ? lockUntil : null,
          updated_at: t,
        })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({
            failures: nextCount,
            window_started_at: sql<number>`CASE WHEN ${fresh} THEN ${t} ELSE auth_failures.window_started_at END`,
            locked_until: sql<number | null>`CASE
              WHEN auth_failures.locked_until IS NOT NULL AND auth_failures.locked_until > ${t} THEN auth_failures.locked_until
              WHEN ${nextCount} >= ${maxFailures} THEN ${lockUntil}
              ELSE NULL END`,
            updated_at: t,
          }),
        )
        .execute();
    }
  }

  /**
   * A successful login clears the account's count. The address count is kept: one valid account
   * must not let an address go on guessing the passwords of others.
   */
  async recordSuccess(accountKey: string): Promise<void> {
    await this.db.kysely.deleteFrom('auth_failures').where('key', '=', accountKey).execute();
  }

  /** Deletes counters that no longer matter (window over and not locked); returns how many. */
  async prune(): Promise<number> {
    const t = this.opts.now();
    const before = t - Math.max(this.opts.windowMs, this.opts.lockMs);
    const result = await this.db.kysely
      .deleteFrom('auth_failures')
      .where('updated_at', '<', before)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', t)]))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
