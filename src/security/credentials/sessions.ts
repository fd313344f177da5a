/**
 * Server-side web sessions (SPEC §10): a row per session in the database (so every node of a
 * cluster knows it and logout is immediate), 24 h lifetime, and a CSRF token bound to the session
 * for the double-submit check (see src/http/api/csrf.ts).
 *
 * The cookie carries a random 256-bit value; the row's id is its SHA-256, so reading the table does
 * not let anyone sign in. A new session (new id) is created at every login, never an old one
 * reused: that is what defeats session fixation.
 */
import type { Database } from '../../store/db/database.js';
import { hashToken, randomToken, sameHash } from './token.js';

export interface SessionInfo {
  /** The row id (hash of the cookie value): safe to log and to put in audit records. */
  id: string;
  tenantId: string;
  userId: string;
  mfaPending: boolean;
  createdAt: number;
  expiresAt: number;
}

export interface NewSession extends SessionInfo {
  /** Cookie value; shown once. */
  token: string;
  /** CSRF token for the double-submit cookie/header; shown once. */
  csrfToken: string;
}

export interface SessionStoreOptions {
  ttlMs: number;
  now?: () => number;
}

/** Only write `last_seen_at` when it is this stale, so reads do not turn into writes. */
const TOUCH_EVERY_MS = 60_000;

export class SessionStore {
  private readonly now: () => number;

  constructor(
    private readonly db: Database,
    private readonly opts: SessionStoreOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  async create(input: { tenantId: string; userId: string; mfaPending?: boolean; ip?: string; userAgent?: string }): Promise<NewSession> {
    const token = randomToken();
    const csrfToken = randomToken();
    const t = this.now();
    const row = {
      id: hashToken(token),
      tenant_id: input.tenantId,
      user_id: input.userId,
      csrf_hash: hashToken(csrfToken),
      mfa_pending: input.mfaPending ? 1 : 0,
      ip: input.ip?.slice(0, 64) ?? null,
      user_agent: input.userAgent?.slice(0, 256) ?? null,
      created_at: t,
      last_seen_at: t,
      expires_at: t + this.opts.ttlMs,
      revoked_at: null,
    };
    await this.db.kysely.insertInto('sessions').values(row).execute();
    return { id: row.id, tenantId: row.tenant_id, userId: row.user_id, mfaPending: !!input.mfaPending, createdAt: t, expiresAt: row.expires_at, token, csrfToken };
  }

  /** The live session for a cookie value, or null (unknown, expired or revoked). */
  async lookup(token: string): Promise<SessionInfo | null> {
    if (!token || token.length > 128) return null;
    const id = hashToken(token);
    const t = this.now();
    const row = await this.db.kysely.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.revoked_at !== null || Number(row.expires_at) <= t) return null;
    if (t - Number(row.last_seen_at) > TOUCH_EVERY_MS) {
      await this.db.kysely.updateTable('sessions').set({ last_seen_at: t }).where('id', '=', id).execute();
    }
    return { id, tenantId: row.tenant_id, userId: row.user_id, mfaPending: Number(row.mfa_pending) === 1, createdAt: Number(row.created_at), expiresAt: Number(row.expires_at) };
  }

  /** Whether `csrfToken` is the one issued with session `id` (constant-time). */
  async checkCsrf(id: string, csrfToken: string): Promise<boolean> {
    if (!csrfToken || csrfToken.length > 128) return false;
    const row = await this.db.kysely.selectFrom('sessions').select('csrf_hash').where('id', '=', id).executeTakeFirst();
    return !!row && sameHash(row.csrf_hash, hashToken(csrfToken));
  }

  /** Second factor done: the session becomes a full one. */
  async completeMfa(id: string): Promise<void> {
    await this.db.kysely.updateTable('sessions').set({ mfa_pending: 0 }).where('id', '=', id).execute();
  }

  async revoke(id: string): Promise<void> {
    await this.db.kysely.updateTable('sessions').set({ revoked_at: this.now() }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  }

  /** Ends every session of a user (password change, disable), except `exceptId` if given. */
  async revokeAllForUser(userId: string, exceptId?: string): Promise<number> {
    let q = this.db.kysely.updateTable('sessions').set({ revoked_at: this.now() }).where('user_id', '=', userId).where('revoked_at', 'is', null);
    if (exceptId) q = q.where('id', '!=', exceptId);
    const res = await q.executeTakeFirst();
    return Number(res.numUpdatedRows ?? 0);
  }

  /** Deletes sessions that ended more than a day ago (maintenance). */
  async prune(): Promise<number> {
    const res = await this.db.kysely.deleteFrom('sessions').where('expires_at', '<', this.now() - 86_400_000).executeTakeFirst();
    return Number(res.numDeletedRows ?? 0);
  }
}
