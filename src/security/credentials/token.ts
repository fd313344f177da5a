/**
 * Opaque credentials (session ids, bearer and refresh tokens, API-key secrets, recovery codes):
 * generated from 32 random bytes, shown to their holder once, and stored only as a SHA-256 hash
 * (SPEC §10 "hashes for API keys and tokens"). A slow password hash is not needed: the inputs have
 * 256 bits of entropy, so a hash copied out of the database cannot be reversed by guessing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** base64url of `bytes` random bytes, optionally after a recognisable prefix (`mrt_…`). */
export function randomToken(prefix = '', bytes = 32): string {
  return prefix + randomBytes(bytes).toString('base64url');
}

/** Hex SHA-256 of a credential: what the database stores and looks up. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex digests of equal length (false when lengths differ). */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** Prefixes make a leaked credential recognisable to secret scanners and to people. */
export const ACCESS_TOKEN_PREFIX = 'mra_';
export const REFRESH_TOKEN_PREFIX = 'mrr_';
export const API_KEY_PREFIX = 'mk_live_';
