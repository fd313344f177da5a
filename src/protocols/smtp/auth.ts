/**
 * SMTP AUTH PLAIN / LOGIN on submission (RFC 4954, SPEC §2 "SMTP AUTH", §10 lockout).
 *
 * - The listener offers AUTH only after TLS (listener.ts), so credentials never cross in clear.
 * - Every failure counts against the account and the client address; a locked key is answered
 *   `454 4.7.0` without looking at the password, so a locked account cannot be probed.
 * - An unknown account and a wrong password get the same `535 5.7.8`, and the authenticate function
 *   takes the same time for both (TenancyService verifies against a dummy hash), so replies do not
 *   reveal which accounts exist.
 * - PLAIN with an authorization identity different from the login (RFC 4616 §2, "act as another
 *   user") is not supported and fails like a wrong password.
 */
import type { SMTPServerAuthentication, SMTPServerAuthenticationResponse, SMTPServerSession } from 'smtp-server';
import type { AuthenticatedUser, SmtpSessionInfo } from '../../pipeline/inbound/contract.js';
import { accountLockKey, addressLockKey, type Lockout } from '../../security/lockout.js';
import { once, track, type HandlerContext } from './handler-context.js';
import { peerKey } from './peer-key.js';
import { replyError } from './reply-error.js';
import { REPLIES } from './replies.js';

export type Authenticate = (username: string, password: string, session: SmtpSessionInfo) => Promise<AuthenticatedUser | null>;

export interface AuthDeps {
  lockout: Lockout;
  authenticate: Authenticate;
}

type AuthCallback = (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void;

export function createAuthHandler(ctx: HandlerContext, deps: AuthDeps) {
  return (auth: SMTPServerAuthentication, session: SMTPServerSession, reply: AuthCallback): void => {
    const state = ctx.registry.of(session);
    const callback = once(reply);
    const work = async () => {
      const username = auth.username ?? '';
      const password = auth.password ?? '';
      const keys = [accountLockKey(username), addressLockKey(peerKey(state.info.remoteAddress))];
      const log = state.log.child({ auth_method: auth.method });
      try {
        const lock = await deps.lockout.checkAny(keys);
        if (lock.locked) {
          log.warn({ login: username, retry_after_ms: lock.retryAfterMs }, 'AUTH refused: locked out');
          return callback(replyError(REPLIES.AUTH_LOCKED));
        }
        const actingAsOther = auth.method === 'PLAIN' && !!auth.authzid && auth.authzid.toLowerCase() !== username.toLowerCase();
        const user = actingAsOther ? null : await deps.authenticate(username, password, { ...state.info });
        if (!user) {
          await deps.lockout.recordFailure(keys);
          log.warn({ login: username }, 'AUTH failed');
          return callback(replyError(REPLIES.AUTH_FAILED));
        }
        await deps.lockout.recordSuccess(keys[0]);
        state.info.user = user;
        log.info({ login: username, user_id: user.id, tenant_id: user.tenantId }, 'AUTH succeeded');
        callback(null, { user });
      } catch (err) {
        // The lockout table or the user store is unreachable (SPEC §4: 451 4.3.0, retry later).
        log.error({ err }, 'AUTH could not be checked');
        callback(replyError(REPLIES.TEMP_LOCAL_ERROR));
      }
    };
    track(ctx, state, work, () => callback(replyError(REPLIES.TEMP_LOCAL_ERROR)));
  };
}
