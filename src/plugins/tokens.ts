/**
 * `plt_…` plugin tokens (SPEC §7 "Plugin tokens"): per plugin, scoped (`callback`, `read`),
 * rotatable, stored hashed. Like the other opaque credentials (src/security/credentials/token.ts),
 * a token is 32 random bytes behind a recognisable prefix and only its SHA-256 is stored: the
 * 256 bits of entropy make a copied hash useless, and the lookup by hash (a unique index) never
 * compares secret material byte by byte in JavaScript.
 */
import { hashToken, randomToken } from '../security/credentials/token.js';
import { ValidationError } from '../core/tenancy/errors.js';
import type { PluginTokensTable } from '../store/db/types.js';
import { PLUGIN_SECRET_PREFIX, PLUGIN_TOKEN_PREFIX, PLUGIN_TOKEN_SCOPES, type PluginTokenInfo, type PluginTokenScope } from './types.js';

/** `plt_` + base64url of 32 bytes (43 characters, no padding). */
const TOKEN_SHAPE = /^plt_[A-Za-z0-9_-]{43}$/;
/** `last_used_at` is written at most this often per token (same rule as API keys). */
export const TOKEN_TOUCH_EVERY_MS = 60_000;

export function newPluginToken(): string {
  return randomToken(PLUGIN_TOKEN_PREFIX, 32);
}

/** A new signing secret for a plugin (`psec_` + 32 random bytes, base64url). */
export function newPluginSecret(): string {
  return randomToken(PLUGIN_SECRET_PREFIX, 32);
}

export function looksLikePluginToken(token: string): boolean {
  return TOKEN_SHAPE.test(token);
}

export { hashToken as hashPluginToken };

/** Checks a scope list from the API/CLI: a non-empty subset of PLUGIN_TOKEN_SCOPES; returned sorted, unique. */
export function validateTokenScopes(scopes: unknown): PluginTokenScope[] {
  const allowed = [...PLUGIN_TOKEN_SCOPES];
  if (!Array.isArray(scopes) || scopes.length === 0) {
    throw new ValidationError('scopes must list at least one of callback, read', { field: 'scopes', allowed });
  }
  const unknown = scopes.filter((s) => !(PLUGIN_TOKEN_SCOPES as readonly unknown[]).includes(s));
  if (unknown.length) {
    throw new ValidationError(`unknown token scope(s): ${unknown.map(String).join(', ')}`, { field: 'scopes', allowed });
  }
  return PLUGIN_TOKEN_SCOPES.filter((s) => scopes.includes(s));
}

export function parseScopes(json: string): PluginTokenScope[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? PLUGIN_TOKEN_SCOPES.filter((s) => v.includes(s)) : [];
  } catch {
    return [];
  }
}

export function toTokenInfo(r: PluginTokensTable): PluginTokenInfo {
  const num = (v: number | null) => (v === null ? null : Number(v));
  return {
    id: r.id,
    pluginId: r.plugin_id,
    scopes: parseScopes(r.scopes_json),
    createdAt: Number(r.created_at),
    expiresAt: num(r.expires_at),
    revokedAt: num(r.revoked_at),
    lastUsedAt: num(r.last_used_at),
  };
}

/** Whether a token can still be used at `at`. */
export function tokenUsable(r: Pick<PluginTokensTable, 'revoked_at' | 'expires_at'>, at: number): boolean {
  return r.revoked_at === null && (r.expires_at === null || Number(r.expires_at) > at);
}
