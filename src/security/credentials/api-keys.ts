/**
 * API keys (SPEC §10/§11, issue 4): `mk_live_<prefix>_<secret>`. The prefix (12 characters) is
 * public and indexed — it finds the row in one lookup and is what lists show; the secret is
 * stored as a SHA-256 hash and compared in constant time. A key acts as the user who owns it,
 * limited to its scopes; it may expire; every use records `last_used_at` (at most once a minute).
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '../../store/db/database.js';
import { newId } from '../../store/db/database.js';
import { inScope, type Scope } from '../../core/scope.js';
import { API_KEY_PREFIX, hashToken, randomToken, sameHash } from './token.js';

export const API_SCOPES = ['read', 'write', 'send', 'admin', 'plugin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export interface ApiKey {
  id: string;
  tenantId: string;
  userId: string;
  name: string;
  /** `mk_live_<prefix>`: identifies the key without revealing it. */
  prefix: string;
  scopes: ApiScope[];
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface NewApiKey extends ApiKey {
  /** The whole key; shown once. */
  key: string;
}

const PREFIX_CHARS = 12;
const KEY_SHAPE = /^mk_live_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{20,100})$/;
const TOUCH_EVERY_MS = 60_000;

function toKey(r: {
  id: string; tenant_id: string; user_id: string; name: string; prefix: string; scopes_json: string;
  created_at: number; expires_at: number | null; last_used_at: number | null; revoked_at: number | null;
}): ApiKey {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    userId: r.user_id,
    name: r.name,
    prefix: API_KEY_PREFIX + r.prefix,
    scopes: JSON.parse(r.scopes_json) as ApiScope[],
    createdAt: Number(r.created_at),
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  };
}

function newPrefix(): string {
  // Alphanumeric only, so the `_` separators stay unambiguous.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(PREFIX_CHARS);
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

export class ApiKeyStore {
  private readonly now: () => number;

  constructor(
    private readonly db: Database,
    opts: { now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  async create(input: { tenantId: string; userId: string; name: string; scopes: ApiScope[]; expiresAt?: number | null }): Promise<NewApiKey> {
    const prefix = newPrefix();
    const secret = randomToken();
    const key = `${API_KEY_PREFIX}${prefix}_${secret}`;
    const row = {
      id: newId(),
      tenant_id: input.tenantId,
      user_id: input.userId,
      name: input.name,
      prefix,
      secret_hash: hashToken(secret),
      scopes_json: JSON.stringify([...new Set(input.scopes)].sort()),
      created_at: this.now(),
      expires_at: input.expiresAt ?? null,
      last_used_at: null,
      revoked_at: null,
    };
    await this.db.kysely.insertInto('api_keys').values(row).execute();
    return { ...toKey(row), key };
  }

  /** The live key for a presented credential, or null (malformed, unknown, wrong secret, expired, revoked). */
  async verify(presented: string): Promise<ApiKey | null> {
    const m = KEY_SHAPE.exec(presented);
    if (!m) return null;
    const row = await this.db.kysely.selectFrom('api_keys').selectAll().where('prefix', '=', m[1]).executeTakeFirst();
    if (!row || !sameHash(row.secret_hash, hashToken(m[2]))) return null;
    const t = this.now();
    if (row.revoked_at !== null || (row.expires_at !== null && Number(row.expires_at) <= t)) return null;
    if (row.last_used_at === null || t - Number(row.last_used_at) > TOUCH_EVERY_MS) {
      await this.db.kysely.updateTable('api_keys').set({ last_used_at: t }).where('id', '=', row.id).execute();
      row.last_used_at = t;
    }
    return toKey(row);
  }

  /** Keys of the scope, newest first; `userId` narrows to one user's keys. Keyset paging on (created_at, id). */
  async list(scope: Scope, opts: { userId?: string; includeRevoked?: boolean; limit?: number; before?: { createdAt: number; id: string } } = {}): Promise<ApiKey[]> {
    let q = this.db.kysely.selectFrom('api_keys').selectAll().where(inScope(scope));
    if (opts.userId) q = q.where('user_id', '=', opts.userId);
    if (!opts.includeRevoked) q = q.where('revoked_at', 'is', null);
    if (opts.before) {
      const b = opts.before;
      q = q.where((eb) => eb.or([eb('created_at', '<', b.createdAt), eb.and([eb('created_at', '=', b.createdAt), eb('id', '<', b.id)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(Math.min(opts.limit ?? 50, 1000)).execute();
    return rows.map(toKey);
  }

  async get(scope: Scope, id: string): Promise<ApiKey | null> {
    const row = await this.db.kysely.selectFrom('api_keys').selectAll().where(inScope(scope)).where('id', '=', id).executeTakeFirst();
    return row ? toKey(row) : null;
  }

  async revoke(scope: Scope, id: string): Promise<boolean> {
    const res = await this.db.kysely.updateTable('api_keys').set({ revoked_at: this.now() }).where(inScope(scope)).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows ?? 0) === 1;
  }

  /** A new key with the same owner, name, scopes and expiry; the old one is revoked at once. */
  async rotate(scope: Scope, id: string): Promise<NewApiKey | null> {
    const old = await this.get(scope, id);
    if (!old || old.revokedAt !== null) return null;
    const next = await this.create({ tenantId: old.tenantId, userId: old.userId, name: old.name, scopes: old.scopes, expiresAt: old.expiresAt });
    await this.revoke(scope, id);
    return next;
  }

  /** Revokes every key of a user (user disabled or removed). */
  async revokeAllForUser(userId: string): Promise<void> {
    await this.db.kysely.updateTable('api_keys').set({ revoked_at: this.now() }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
  }
}
