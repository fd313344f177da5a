/**
 * Checking SMTP AUTH credentials (SPEC §2 "SMTP AUTH", §10 lockout), independent of how the
 * mechanism carried them (engine/auth-exchange.ts decodes PLAIN and LOGIN).
 *
 * - Every failure counts against the account and the client address; a locked key is answered
 *   `454 4.7.0` without looking at the password, so a locked account cannot be probed.
 * - An unknown account and a wrong password get the same `535 5.7.8`, and the authenticate function
 *   takes the same time for both (TenancyService verifies against a dummy hash), so replies do not
 *   reveal which accounts exist.
 * - PLAIN with an authorization identity different from the login (RFC 4616 §2, "act as another
 *   user") is not supported and fails like a wrong password.
 * - The lockout store or the user store failing answers `451 4.3.0` (SPEC §4), never a login.
 */
import type { Logger } from 'pino';
import type { AuthenticatedUser, SmtpSessionInfo } from '../../pipeline/inbound/contract.js';
import { accountLockKey, addressLockKey, type Lockout } from '../../security/lockout.js';
import { peerKey } from '../net/peer-key.js';
import { REPLIES, type SmtpReply } from './replies.js';

export type Authenticate = (username: string, password: string, session: SmtpSessionInfo) => Promise<AuthenticatedUser | null>;

export interface AuthDeps {
  lockout: Lockout;
  authenticate: Authenticate;
}

export interface LoginAttempt {
  mechanism: 'PLAIN' | 'LOGIN';
  authzid?: string;
  username: string;
  password: string;
}

export type LoginOutcome = { ok: true; user: AuthenticatedUser } | { ok: false; reply: SmtpReply };

export async function checkLogin(deps: AuthDeps, session: SmtpSessionInfo, attempt: LoginAttempt, sessionLog: Logger): Promise<LoginOutcome> {
  const { username, password } = attempt;
  const keys = [accountLockKey(username), addressLockKey(peerKey(session.remoteAddress))];
  const log = sessionLog.child({ auth_method: attempt.mechanism });
  try {
    const lock = await deps.lockout.checkAny(keys);
    if (lock.locked) {
      log.warn({ login: username, retry_after_ms: lock.retryAfterMs }, 'AUTH refused: locked out');
      return { ok: false, reply: REPLIES.AUTH_LOCKED };
    }
    const actingAsOther = !!attempt.authzid && attempt.authzid.toLowerCase() !== username.toLowerCase();
    const user = actingAsOther ? null : await deps.authenticate(username, password, { ...session });
    if (!user) {
      await deps.lockout.recordFailure(keys);
      log.warn({ login: username }, 'AUTH failed');
      return { ok: false, reply: REPLIES.AUTH_FAILED };
    }
    await deps.lockout.recordSuccess(keys[0]);
    log.info({ login: username, user_id: user.id, tenant_id: user.tenantId }, 'AUTH succeeded');
    return { ok: true, user };
  } catch (err) {
    log.error({ err }, 'AUTH could not be checked');
    return { ok: false, reply: REPLIES.TEMP_LOCAL_ERROR };
  }
}
