/**
 * Bearer tokens for API clients (SPEC §10/§11, issue 4): a login issues a short-lived access token
 * (1 h) and a refresh token. Refreshing spends the refresh token and issues a new pair in the same
 * *family*; presenting a refresh token that was already spent means it was copied, so the whole
 * family is revoked (refresh-token rotation with reuse detection, as OAuth 2.0 Security BCP §4.14
 * recommends). Both kinds are stored hashed.
 */
import type { Database } from '../../store/db/database.js';
import { newId } from '../../store/db/database.js';
import { ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, hashToken, randomToken } from './token.js';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
  familyId: string;
}

export interface AccessTokenInfo {
  id: string;
  familyId: string;
  tenantId: string;
  userId: string;
  mfaPending: boolean;
  expiresAt: number;
}

export type RefreshOutcome =
  | { ok: true; pair: TokenPair; userId: string; tenantId: string }
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked' | 'reused' };

export interface BearerTokenOptions {
  accessTtlMs: number;
  refreshTtlMs: number;
  now?: () => number;
}

export class BearerTokenStore {
  private readonly now: () => number;

  constructor(
    private readonly db: Database,
    private readonly opts: BearerTokenOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** A new pair in a new family (login) or in `familyId` (refresh). */
  async issue(input: { tenantId: string; userId: string; mfaPending?: boolean; familyId?: string }): Promise<TokenPair> {
    const familyId = input.familyId ?? newId();
    const accessToken = randomToken(ACCESS_TOKEN_PREFIX);
    const refreshToken = randomToken(REFRESH_TOKEN_PREFIX);
    const t = this.now();
    const base = { family_id: familyId, tenant_id: input.tenantId, user_id: input.userId, mfa_pending: input.mfaPending ? 1 : 0, created_at: t, used_at: null, revoked_at: null };
    await this.db.kysely
      .insertInto('auth_tokens')
      .values([
        { ...base, id: newId(), token_hash: hashToken(accessToken), kind: 'access', expires_at: t + this.opts.accessTtlMs },
        { ...base, id: newId(), token_hash: hashToken(refreshToken), kind: 'refresh', expires_at: t + this.opts.refreshTtlMs },
      ])
      .execute();
    return { accessToken, refreshToken, expiresIn: Math.floor(this.opts.accessTtlMs / 1000), familyId };
  }

  /** The live access token, or null. */
  async verifyAccess(token: string): Promise<AccessTokenInfo | null> {
    if (!token.startsWith(ACCESS_TOKEN_PREFIX) || token.length > 128) return null;
    const row = await this.db.kysely
      .selectFrom('auth_tokens')
      .selectAll()
      .where('token_hash', '=', hashToken(token))
      .where('kind', '=', 'access')
      .executeTakeFirst();
    if (!row || row.revoked_at !== null || Number(row.expires_at) <= this.now()) return null;
    return { id: row.id, familyId: row.family_id, tenantId: row.tenant_id, userId: row.user_id, mfaPending: Number(row.mfa_pending) === 1, expiresAt: Number(row.expires_at) };
  }

  /**
   * Spends a refresh token and issues the next pair of its family. The spend is a conditional
   * update (`used_at IS NULL`), so two concurrent refreshes with one token cannot both succeed.
   */
  async refresh(refreshToken: string): Promise<RefreshOutcome> {
    if (!refreshToken.startsWith(REFRESH_TOKEN_PREFIX) || refreshToken.length > 128) return { ok: false, reason: 'unknown' };
    const row = await this.db.kysely
      .selectFrom('auth_tokens')
      .selectAll()
      .where('token_hash', '=', hashToken(refreshToken))
      .where('kind', '=', 'refresh')
      .executeTakeFirst();
    if (!row) return { ok: false, reason: 'unknown' };
    if (row.revoked_at !== null) return { ok: false, reason: 'revoked' };
    if (row.used_at !== null) {
      await this.revokeFamily(row.family_id);
      return { ok: false, reason: 'reused' };
    }
    if (Number(row.expires_at) <= this.now()) return { ok: false, reason: 'expired' };
    const spent = await this.db.kysely
      .updateTable('auth_tokens')
      .set({ used_at: this.now() })
      .where('id', '=', row.id)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    if (Number(spent.numUpdatedRows ?? 0) !== 1) {
      await this.revokeFamily(row.family_id);
      return { ok: false, reason: 'reused' };
    }
    // The access token issued with the spent refresh token ends now: one live pair per family.
    await this.db.kysely
      .updateTable('auth_tokens')
      .set({ revoked_at: this.now() })
      .where('family_id', '=', row.family_id)
      .where('kind', '=', 'access')
      .where('revoked_at', 'is', null)
      .execute();
    const pair = await this.issue({ tenantId: row.tenant_id, userId: row.user_id, mfaPending: Number(row.mfa_pending) === 1, familyId: row.family_id });
    return { ok: true, pair, userId: row.user_id, tenantId: row.tenant_id };
  }

  async revokeFamily(familyId: string): Promise<void> {
    await this.db.kysely.updateTable('auth_tokens').set({ revoked_at: this.now() }).where('family_id', '=', familyId).where('revoked_at', 'is', null).execute();
  }

  /** Logout with a refresh token: its family ends. Returns false for an unknown token. */
  async revokeByRefreshToken(refreshToken: string): Promise<boolean> {
    const row = await this.db.kysely.selectFrom('auth_tokens').select('family_id').where('token_hash', '=', hashToken(refreshToken)).executeTakeFirst();
    if (!row) return false;
    await this.revokeFamily(row.family_id);
    return true;
  }

  async revokeAllForUser(userId: string, exceptFamilyId?: string): Promise<void> {
    let q = this.db.kysely.updateTable('auth_tokens').set({ revoked_at: this.now() }).where('user_id', '=', userId).where('revoked_at', 'is', null);
    if (exceptFamilyId) q = q.where('family_id', '!=', exceptFamilyId);
    await q.execute();
  }

  /** Second factor done for this family. */
  async completeMfa(familyId: string): Promise<void> {
    await this.db.kysely.updateTable('auth_tokens').set({ mfa_pending: 0 }).where('family_id', '=', familyId).execute();
  }

  /** Deletes tokens that expired more than a day ago (maintenance). */
  async prune(): Promise<number> {
    const res = await this.db.kysely.deleteFrom('auth_tokens').where('expires_at', '<', this.now() - 86_400_000).executeTakeFirst();
    return Number(res.numDeletedRows ?? 0);
  }
}
