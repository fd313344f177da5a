/**
 * Time-based one-time passwords (RFC 6238) for the second sign-in factor (SPEC §2 "Admin UI auth",
 * §10): HMAC-SHA-1, 6 digits, 30-second steps — the parameters every authenticator app supports —
 * computed by the `otpauth` package.
 *
 * - Clock drift: a code of the previous or the next time step is accepted too (RFC 6238 §5.2
 *   recommends at most one step of network delay; §6 describes resynchronisation by a window).
 * - Replay: "the verifier MUST NOT accept the second attempt of the same OTP after the successful
 *   validation has been issued for the first OTP" (RFC 6238 §5.2). The caller stores the last time
 *   step it accepted and passes it in; a code whose step is not later than that one is refused, so
 *   neither the same code nor an older one from the window can be used again.
 * - Secrets are 160 bits (RFC 4226 §4 R6 recommends 160), shown once in base32 for enrolment and
 *   stored only sealed (see mfa.ts).
 */
import { Secret, TOTP } from 'otpauth';

export const TOTP_ISSUER = 'MaiRust';
export const TOTP_ALGORITHM = 'SHA1';
export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
/** Steps accepted on each side of the current one (±1, RFC 6238 §5.2). */
export const TOTP_WINDOW = 1;
/** RFC 4226 §4 R6: a shared secret of at least 128 bits, 160 recommended. */
export const TOTP_SECRET_BYTES = 20;

const CODE_SHAPE = new RegExp(`^\\d{${TOTP_DIGITS}}$`);
/** Base32 (RFC 4648 §6) of a secret we generate: 20 bytes → 32 characters, no padding. */
const BASE32_SECRET = /^[A-Z2-7]{16,128}$/;

function totpFor(secretBase32: string, label = ''): TOTP {
  if (!BASE32_SECRET.test(secretBase32)) throw new Error('malformed TOTP secret');
  return new TOTP({
    issuer: TOTP_ISSUER,
    label,
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    secret: Secret.fromBase32(secretBase32),
  });
}

/** A fresh random secret, base32-encoded (what an authenticator app is given). */
export function generateTotpSecret(): string {
  return new Secret({ size: TOTP_SECRET_BYTES }).base32;
}

/**
 * The `otpauth://totp/…` enrolment URI (Google Authenticator Key URI format, as authenticator apps
 * read it from a QR code): issuer "MaiRust", account label = the user's e-mail address.
 */
export function totpUri(secretBase32: string, accountEmail: string): string {
  return totpFor(secretBase32, accountEmail).toString();
}

/** The RFC 6238 time step `T = floor(unix seconds / 30)` of an instant in milliseconds. */
export function timeStep(atMs: number): number {
  return Math.floor(atMs / 1000 / TOTP_PERIOD_SECONDS);
}

/** The code of the step containing `atMs` (enrolment tests and diagnostics). */
export function totpCode(secretBase32: string, atMs: number): string {
  return totpFor(secretBase32).generate({ timestamp: atMs });
}

/** Whether `code` has the shape of a TOTP code (6 ASCII digits). */
export function isTotpCodeShape(code: string): boolean {
  return CODE_SHAPE.test(code);
}

export type TotpCheck = { ok: true; step: number } | { ok: false; reason: 'invalid' | 'replayed' };

/**
 * Checks `code` at `atMs` against the secret. `lastAcceptedStep` is the step of the last code this
 * secret's owner used (0 if none): a match at that step or an earlier one is a replay. On success the
 * caller must store the returned step — atomically, so two concurrent uses of one code cannot both
 * win (mfa.ts does a conditional update).
 */
export function checkTotp(secretBase32: string, code: string, atMs: number, lastAcceptedStep: number): TotpCheck {
  if (!isTotpCodeShape(code)) return { ok: false, reason: 'invalid' };
  // otpauth compares in constant time and returns the matching step's offset from the current one.
  const delta = totpFor(secretBase32).validate({ token: code, timestamp: atMs, window: TOTP_WINDOW });
  if (delta === null) return { ok: false, reason: 'invalid' };
  const step = timeStep(atMs) + delta;
  if (step <= lastAcceptedStep) return { ok: false, reason: 'replayed' };
  return { ok: true, step };
}
