/**
 * The AUTH exchange as a small pure state machine (RFC 4954 §4): the mechanism's challenges and the
 * client's responses, until credentials are complete or the exchange fails. Checking the
 * credentials (lockout, user store) is auth.ts's job.
 *
 * - PLAIN (RFC 4616): one response, the initial response or after an empty `334 ` challenge.
 * - LOGIN (draft-murchison-sasl-login): `334 VXNlcm5hbWU6` then `334 UGFzc3dvcmQ6`; an initial
 *   response, if sent, is the username.
 * - `*` cancels (`501 5.0.0`); a response that is not base64 or not a valid message is `501 5.5.2`.
 */
import type { LoginAttempt } from '../auth.js';
import { REPLIES, type SmtpReply } from '../replies.js';
import { LOGIN_PASSWORD_CHALLENGE, LOGIN_USERNAME_CHALLENGE, decodeLoginField, decodePlain, decodeResponse } from '../../net/sasl.js';

export type AuthStep = { kind: 'challenge'; text: string } | { kind: 'done'; attempt: LoginAttempt } | { kind: 'fail'; reply: SmtpReply };

export const AUTH_MECHANISMS = ['PLAIN', 'LOGIN'] as const;
export type AuthMechanism = (typeof AUTH_MECHANISMS)[number];

export function isAuthMechanism(name: string): name is AuthMechanism {
  return (AUTH_MECHANISMS as readonly string[]).includes(name);
}

export class AuthExchange {
  private username: string | null = null;

  constructor(private readonly mechanism: AuthMechanism) {}

  /** The AUTH command itself, with its initial response if any. */
  start(initialResponse?: string): AuthStep {
    if (initialResponse === undefined) {
      return { kind: 'challenge', text: this.mechanism === 'PLAIN' ? '' : LOGIN_USERNAME_CHALLENGE };
    }
    return this.respond(initialResponse);
  }

  /** One response line from the client. */
  respond(line: string): AuthStep {
    const response = decodeResponse(line);
    if (response.kind === 'cancel') return { kind: 'fail', reply: REPLIES.AUTH_CANCELLED };
    if (response.kind === 'invalid') return { kind: 'fail', reply: REPLIES.AUTH_BAD_BASE64 };
    if (this.mechanism === 'PLAIN') {
      const credentials = decodePlain(response.value);
      if (!credentials) return { kind: 'fail', reply: REPLIES.AUTH_BAD_BASE64 };
      return { kind: 'done', attempt: { mechanism: 'PLAIN', ...credentials } };
    }
    const field = decodeLoginField(response.value);
    if (field === null) return { kind: 'fail', reply: REPLIES.AUTH_BAD_BASE64 };
    if (this.username === null) {
      this.username = field;
      return { kind: 'challenge', text: LOGIN_PASSWORD_CHALLENGE };
    }
    return { kind: 'done', attempt: { mechanism: 'LOGIN', username: this.username, password: field } };
  }
}
