/**
 * Recovery codes for the second factor (SPEC §2: "TOTP second factor per user (RFC 6238) with
 * recovery codes"): a set of 10 one-time codes shown once when TOTP is enabled (and when the set
 * is regenerated), each good for one sign-in without the authenticator.
 *
 * - Shape `xxxx-xxxx-xxxx`: 12 characters of Crockford's base32 alphabet (no i, l, o, u), 5 bits
 *   each = 60 bits, above the 50-bit floor so that guessing is hopeless behind the login lockout
 *   (SPEC §10: 5 failures → 15 min) and a stolen hash list is costly to reverse.
 * - Typed input is forgiving: case, dashes and spaces are ignored, and the look-alikes Crockford
 *   maps (o → 0, i/l → 1) are accepted.
 * - Stored as SHA-256 hashes salted with the user id (a leaked list cannot be attacked for all users
 *   at once); comparison walks every stored hash in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const RECOVERY_CODE_COUNT = 10;
/** Crockford base32: 32 symbols, so a random byte masked to 5 bits picks one without bias. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const GROUPS = [4, 4, 4];
const CODE_CHARS = GROUPS.reduce((a, b) => a + b, 0);
/** Longest input we look at (a code with generous separators); longer is simply wrong. */
export const MAX_RECOVERY_CODE_INPUT = 64;

/** `count` fresh codes, formatted for display (`7k2q-9xvd-m4tr`). */
export function generateRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  const codes = new Set<string>();
  while (codes.size < count) {
    const bytes = randomBytes(CODE_CHARS);
    let raw = '';
    for (const b of bytes) raw += ALPHABET[b & 31];
    codes.add(format(raw));
  }
  return [...codes];
}

function format(raw: string): string {
  const parts: string[] = [];
  let i = 0;
  for (const n of GROUPS) {
    parts.push(raw.slice(i, i + n));
    i += n;
  }
  return parts.join('-');
}

/** The canonical form of typed input (12 alphabet characters), or null when it cannot be a code. */
export function normalizeRecoveryCode(input: string): string | null {
  if (input.length > MAX_RECOVERY_CODE_INPUT) return null;
  const raw = input
    .toLowerCase()
    .replace(/[\s-]/g, '')
    .replace(/o/g, '0')
    .replace(/[il]/g, '1');
  if (raw.length !== CODE_CHARS) return null;
  for (const ch of raw) if (!ALPHABET.includes(ch)) return null;
  return raw;
}

/** Hex SHA-256 of a code for one user (what `user_mfa.recovery_codes_json` holds). */
export function hashRecoveryCode(userId: string, code: string): string {
  const canonical = normalizeRecoveryCode(code);
  if (canonical === null) throw new Error('not a recovery code');
  return createHash('sha256').update(`${userId}:${canonical}`, 'utf8').digest('hex');
}

/**
 * Index of the stored hash that `presented` matches, or -1. Every stored hash is compared (no early
 * exit), so the time taken does not depend on which code, if any, matched.
 */
export function findRecoveryCode(storedHashes: readonly string[], userId: string, presented: string): number {
  const canonical = normalizeRecoveryCode(presented);
  if (canonical === null) return -1;
  const mine = Buffer.from(hashRecoveryCode(userId, canonical), 'hex');
  let found = -1;
  storedHashes.forEach((h, i) => {
    const theirs = Buffer.from(h, 'hex');
    if (theirs.length === mine.length && timingSafeEqual(theirs, mine) && found === -1) found = i;
  });
  return found;
}
