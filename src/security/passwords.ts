/**
 * Password hashing and policy (SPEC §10): Argon2id with m = 64 MiB, t = 3, p = 4; at least 12
 * characters; the last 5 passwords may not be reused.
 *
 * Passwords are normalised to NFC before hashing and verifying (RFC 8265 §4.2, OpaqueString
 * profile), so the same password typed on two systems that compose accents differently still matches.
 */
import { randomInt } from 'node:crypto';
import { hash, verify, parseOptions } from '@node-rs/argon2';

export interface PasswordHashParams {
  /** Memory cost in KiB (the `m=` of the PHC string). */
  memoryCost: number;
  /** Passes (`t=`). */
  timeCost: number;
  /** Lanes (`p=`). */
  parallelism: number;
}

/** The production parameters of SPEC §10. Tests inject cheaper ones through the services' options. */
export const DEFAULT_PASSWORD_PARAMS: Readonly<PasswordHashParams> = Object.freeze({
  memoryCost: 65536,
  timeCost: 3,
  parallelism: 4,
});

export const PASSWORD_MIN_CHARS = 12;
/** Upper bound so a login request cannot make us hash megabytes (Argon2 input is otherwise unbounded). */
export const PASSWORD_MAX_BYTES = 1024;
/** SPEC §10: "last 5 not reused" — the current password and the four before it. */
export const PASSWORD_REUSE_DEPTH = 5;

// `Algorithm.Argon2id` is an ambient const enum, which isolatedModules cannot read; its value is 2.
const ARGON2ID = 2;

function toOptions(params: PasswordHashParams) {
  return {
    algorithm: ARGON2ID,
    memoryCost: params.memoryCost,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  } as Parameters<typeof hash>[1];
}

/** Returns the PHC string (`$argon2id$v=19$m=65536,t=3,p=4$salt$hash`); a fresh random salt each time. */
export async function hashPassword(password: string, params: PasswordHashParams = DEFAULT_PASSWORD_PARAMS): Promise<string> {
  return hash(password.normalize('NFC'), toOptions(params));
}

/** True when `password` matches `phcHash`; false (never a throw) for a malformed or foreign hash. */
export async function verifyPassword(phcHash: string, password: string): Promise<boolean> {
  // Over-long input cannot match a hash we created (policy caps it) and must not cost CPU.
  if (Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_BYTES * 4) return false;
  try {
    return await verify(phcHash, password.normalize('NFC'));
  } catch {
    return false;
  }
}

/** True when the hash was made with other parameters than `params` (rehash at the next login). */
export function needsRehash(phcHash: string, params: PasswordHashParams = DEFAULT_PASSWORD_PARAMS): boolean {
  try {
    const o = parseOptions(phcHash);
    return (
      (o.algorithm as number) !== ARGON2ID ||
      o.memoryCost !== params.memoryCost ||
      o.timeCost !== params.timeCost ||
      o.parallelism !== params.parallelism
    );
  } catch {
    return true;
  }
}

/**
 * The problems that make `password` unacceptable as a new password; empty when it is fine.
 * Length counts Unicode characters (code points), not UTF-16 units, so "パスワード" is 5 long.
 */
export function checkPasswordPolicy(password: string): string[] {
  const problems: string[] = [];
  const chars = [...password.normalize('NFC')].length;
  if (chars < PASSWORD_MIN_CHARS) problems.push(`password must be at least ${PASSWORD_MIN_CHARS} characters long (it has ${chars})`);
  const bytes = Buffer.byteLength(password, 'utf8');
  if (bytes > PASSWORD_MAX_BYTES) problems.push(`password must be at most ${PASSWORD_MAX_BYTES} bytes long (it has ${bytes})`);
  // Control characters cannot be typed reliably and break protocols: SASL PLAIN (RFC 4616 §2)
  // separates fields with NUL, and CR/LF end an IMAP/POP3 command line.
  if (/[\u0000-\u001f\u007f]/.test(password)) problems.push('password must not contain control characters (tab, newline, NUL…)');
  if (password.trim() !== password) problems.push('password must not start or end with whitespace');
  return problems;
}

/**
 * True when `password` matches any of the given previous hashes (newest first; only the first
 * PASSWORD_REUSE_DEPTH are checked). Each check is a full Argon2 verification, so this is slow
 * on purpose and only runs on password changes.
 */
export async function isPasswordReused(password: string, previousHashes: readonly string[]): Promise<boolean> {
  for (const h of previousHashes.slice(0, PASSWORD_REUSE_DEPTH)) {
    if (await verifyPassword(h, password)) return true;
  }
  return false;
}

// No look-alikes (0/O, 1/l/I) so a password read off a terminal can be typed back without doubt.
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
const SYMBOLS = '-_.!@#%+=';

/**
 * A random password for bootstrap and administrative resets: `length` characters (≥ 20) drawn
 * with a CSPRNG, at least one symbol, about 5.8 bits each (≈ 140 bits at the default length).
 */
export function generatePassword(length = 24): string {
  if (!Number.isInteger(length) || length < 20 || length > 256) throw new RangeError('generated passwords are 20–256 characters long');
  const chars: string[] = [];
  for (let i = 0; i < length; i++) chars.push(ALPHABET[randomInt(ALPHABET.length)]);
  // One symbol at a random inner position satisfies "must contain a symbol" rules of other systems
  // the password may be pasted into, without lowering the entropy noticeably.
  chars[1 + randomInt(length - 2)] = SYMBOLS[randomInt(SYMBOLS.length)];
  return chars.join('');
}

const dummyHashes = new Map<string, Promise<string>>();

/**
 * Verifies `password` against a throw-away hash made with the same parameters, so that a login
 * for an unknown account costs as much time as one for a real account (no user enumeration by
 * timing). Always resolves to false.
 */
export async function verifyAgainstDummy(password: string, params: PasswordHashParams = DEFAULT_PASSWORD_PARAMS): Promise<false> {
  const key = `${params.memoryCost}/${params.timeCost}/${params.parallelism}`;
  let dummy = dummyHashes.get(key);
  if (!dummy) {
    dummy = hashPassword(generatePassword(), params);
    dummyHashes.set(key, dummy);
  }
  await verifyPassword(await dummy, password);
  return false;
}
