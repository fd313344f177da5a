/**
 * Checking IMAP logins (SPEC §10), the same rules as SMTP AUTH (src/protocols/smtp/auth.ts), for
 * LOGIN and AUTHENTICATE PLAIN alike:
 *
 * - Every failure counts against the account and the client address (IPv6: its /64); a locked key
 *   is answered `NO [UNAVAILABLE]` without looking at the password, so a locked account cannot be
 *   probed.
 * - An unknown account and a wrong password get the same `NO [AUTHENTICATIONFAILED] Authentication
 *   failed`, and the tenancy service takes the same time for both (it verifies against a dummy
 *   hash), so replies do not reveal which accounts exist.
 * - PLAIN with an authorization identity different from the login (RFC 4616 §2, "act as another
 *   user") is not supported and fails like a wrong password.
 * - A user without an own, active mailbox has nothing to open: `NO [AUTHORIZATIONFAILED]`
 *   (RFC 5530 §3) — the credentials were right, so it is not counted as a failure.
 * - More than the allowed sessions of one user on this node: `NO [LIMIT]`.
 * - The lockout store or the user store failing answers `NO [UNAVAILABLE]`, never a login.
 */
import { accountLockKey, addressLockKey } from '../../security/lockout.js';
import { peerKey } from '../net/peer-key.js';
import { sessionControl } from './session/control.js';
import type { CommandContext, CommandResult } from './session/types.js';

export interface LoginAttempt {
  mechanism: 'LOGIN' | 'PLAIN';
  authzid?: string;
  username: string;
  password: string;
}

export const AUTH_REPLIES = {
  FAILED: { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'Authentication failed' },
  LOCKED: { status: 'NO', code: 'UNAVAILABLE', text: 'Too many failed logins; try again later' },
  NO_MAILBOX: { status: 'NO', code: 'AUTHORIZATIONFAILED', text: 'This account has no mailbox' },
  TOO_MANY_SESSIONS: { status: 'NO', code: 'LIMIT', text: 'Too many sessions for this user' },
  STORE_DOWN: { status: 'NO', code: 'UNAVAILABLE', text: 'Authentication is temporarily unavailable; try again later' },
  PRIVACY_REQUIRED: { status: 'NO', code: 'PRIVACYREQUIRED', text: 'Logins are disabled until TLS is active (use STARTTLS)' },
} as const satisfies Record<string, CommandResult>;

/** Longest login or password looked at; longer ones cannot be right and are not hashed. */
const MAX_CREDENTIAL_BYTES = 1024;

export async function checkLogin(ctx: CommandContext, attempt: LoginAttempt): Promise<CommandResult> {
  const control = sessionControl(ctx);
  const { username, password } = attempt;
  const services = ctx.services;
  const keys = [accountLockKey(username), addressLockKey(peerKey(ctx.session.remoteAddress))];
  const log = ctx.log.child({ auth_method: attempt.mechanism });
  try {
    const lock = await services.lockout.checkAny(keys);
    if (lock.locked) {
      log.warn({ login: username.slice(0, 320), retry_after_ms: lock.retryAfterMs }, 'login refused: locked out');
      return AUTH_REPLIES.LOCKED;
    }
    const actingAsOther = !!attempt.authzid && attempt.authzid.toLowerCase() !== username.toLowerCase();
    const tooLong = Buffer.byteLength(username) > MAX_CREDENTIAL_BYTES || Buffer.byteLength(password) > MAX_CREDENTIAL_BYTES;
    const user = actingAsOther || tooLong || !username ? null : await services.authenticate(username, password, control.loginInfo);
    if (!user) {
      await services.lockout.recordFailure(keys);
      log.warn({ login: username.slice(0, 320) }, 'login failed');
      return AUTH_REPLIES.FAILED;
    }
    await services.lockout.recordSuccess(keys[0]);
    const mailbox = await services.ownMailbox(user);
    if (!mailbox) {
      log.warn({ user_id: user.id, tenant_id: user.tenantId }, 'login refused: the user has no active mailbox');
      return AUTH_REPLIES.NO_MAILBOX;
    }
    if (!control.login(user, mailbox)) {
      log.warn({ user_id: user.id }, 'login refused: too many sessions for this user');
      return AUTH_REPLIES.TOO_MANY_SESSIONS;
    }
    // RFC 9051 §6.2.3: the capabilities change at login; sending them saves the client a round trip.
    return { status: 'OK', code: `CAPABILITY ${ctx.capabilities().join(' ')}`, text: `${attempt.mechanism === 'LOGIN' ? 'LOGIN' : 'AUTHENTICATE'} completed` };
  } catch (err) {
    log.error({ err }, 'login could not be checked');
    return AUTH_REPLIES.STORE_DOWN;
  }
}
