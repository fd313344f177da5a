/**
 * The AUTHORIZATION state (RFC 1939 §4, §7): USER/PASS and AUTH PLAIN (RFC 5034, RFC 4616), then
 * opening the maildrop.
 *
 * - Logins only under TLS (SPEC §2; RFC 2595 §2.2 lets a server refuse plaintext logins): before
 *   STLS, USER, PASS and AUTH are answered `[SYS/PERM] TLS required`, and CAPA does not offer them.
 * - Lockout (SPEC §10) exactly like SMTP AUTH (src/protocols/smtp/auth.ts): every failure counts
 *   against the account and the client address (IPv6: its /64); a locked key is answered
 *   `[SYS/TEMP]` without looking at the password, so a locked account cannot be probed.
 * - An unknown account and a wrong password get the same `[AUTH]` reply; PLAIN with an
 *   authorization identity other than the login ("act as another user") fails the same way.
 * - After a good password: only the user's own mailbox (SPEC §9), only its INBOX, and only one POP3
 *   session per mailbox on this node (`[IN-USE]`, maildrop-locks.ts). A refusal after a good
 *   password is not a failed login: it does not count towards the lockout.
 */
import { INBOX } from '../../core/mailbox-state/index.js';
import { tenantScope } from '../../core/scope.js';
import { accountLockKey, addressLockKey } from '../../security/lockout.js';
import type { MailUser } from '../imap/services.js';
import { decodePlain, decodeResponse } from '../net/sasl.js';
import { peerKey } from '../net/peer-key.js';
import { Maildrop } from './maildrop.js';
import { REPLIES } from './replies.js';
import type { SessionContext } from './session-context.js';

/** The only SASL mechanism offered (RFC 5034 §4; CAPA `SASL PLAIN`). */
export const SASL_MECHANISMS = ['PLAIN'] as const;

export function userCommand(ctx: SessionContext, name: string): void {
  if (!ctx.info.secure) return ctx.reply(REPLIES.TLS_REQUIRED);
  ctx.pendingUser = name;
  ctx.reply(REPLIES.USER_OK);
}

export async function passCommand(ctx: SessionContext, password: string): Promise<void> {
  if (!ctx.info.secure) return ctx.reply(REPLIES.TLS_REQUIRED);
  const username = ctx.pendingUser;
  // RFC 1939 §7: PASS follows a successful USER; either way the USER is used up.
  ctx.pendingUser = null;
  if (username === null) return ctx.reply(REPLIES.USER_FIRST);
  await login(ctx, 'USER', username, password);
}

export async function authCommand(ctx: SessionContext, mechanism: string | null, initialResponse: string | null): Promise<void> {
  ctx.pendingUser = null;
  if (!ctx.info.secure) return ctx.reply(REPLIES.TLS_REQUIRED);
  // `AUTH` alone lists the mechanisms (the pre-RFC 5034 form some clients still send first).
  if (mechanism === null) return ctx.replyLines(REPLIES.AUTH_MECHANISMS, SASL_MECHANISMS);
  if (mechanism !== 'PLAIN') return ctx.reply(REPLIES.AUTH_MECHANISM_UNSUPPORTED);
  if (initialResponse === null) {
    // RFC 5034 §4: an empty challenge is "+" followed by a space.
    ctx.state = 'sasl';
    return ctx.reply(REPLIES.AUTH_CONTINUE);
  }
  await plainResponse(ctx, initialResponse);
}

/** The client's line after `+ ` (state `sasl`). */
export async function saslResponse(ctx: SessionContext, line: Buffer): Promise<void> {
  ctx.state = 'authorization';
  await plainResponse(ctx, line.toString('latin1'));
}

async function plainResponse(ctx: SessionContext, text: string): Promise<void> {
  const response = decodeResponse(text);
  if (response.kind === 'cancel') return ctx.reply(REPLIES.AUTH_CANCELLED);
  const credentials = response.kind === 'value' ? decodePlain(response.value) : null;
  if (!credentials) return ctx.reply(REPLIES.AUTH_BAD_RESPONSE);
  const actingAsOther = credentials.authzid !== '' && credentials.authzid.toLowerCase() !== credentials.username.toLowerCase();
  await login(ctx, 'PLAIN', credentials.username, credentials.password, actingAsOther);
}

async function login(ctx: SessionContext, method: 'USER' | 'PLAIN', username: string, password: string, refuse = false): Promise<void> {
  const { services } = ctx.deps;
  const keys = [accountLockKey(username), addressLockKey(peerKey(ctx.info.remoteAddress))];
  const log = ctx.log.child({ auth_method: method });
  let user: MailUser | null;
  try {
    const lock = await services.lockout.checkAny(keys);
    if (lock.locked) {
      log.warn({ login: username, retry_after_ms: lock.retryAfterMs }, 'login refused: locked out');
      return ctx.reply(REPLIES.AUTH_LOCKED);
    }
    user = refuse
      ? null
      : await services.authenticate(username, password, { remoteAddress: ctx.info.remoteAddress, listener: ctx.deps.listener, protocol: 'pop3' });
    if (!user) {
      await services.lockout.recordFailure(keys);
      log.warn({ login: username }, 'login failed');
      return ctx.reply(REPLIES.AUTH_FAILED);
    }
    await services.lockout.recordSuccess(keys[0]);
  } catch (err) {
    log.error({ err }, 'login could not be checked');
    return ctx.reply(REPLIES.AUTH_UNAVAILABLE);
  }
  log.info({ login: username, user_id: user.id, tenant_id: user.tenantId }, 'login succeeded');
  await openMaildrop(ctx, user);
}

/** RFC 1939 §8: lock the maildrop, read its listing, enter TRANSACTION. */
async function openMaildrop(ctx: SessionContext, user: MailUser): Promise<void> {
  const { services, locks } = ctx.deps;
  let mailbox;
  try {
    mailbox = await services.ownMailbox(user);
  } catch (err) {
    ctx.log.error({ err }, 'could not look up the mailbox');
    return ctx.reply(REPLIES.MAILDROP_UNAVAILABLE);
  }
  if (!mailbox) return ctx.reply(REPLIES.NO_MAILBOX);
  const release = locks.acquire(mailbox.id);
  if (!release) {
    ctx.log.info({ mailbox_id: mailbox.id }, 'maildrop in use by another POP3 session');
    return ctx.reply(REPLIES.IN_USE);
  }
  const scope = tenantScope(user.tenantId);
  let maildrop: Maildrop;
  try {
    const inbox = await services.state.findFolder(scope, mailbox.id, INBOX);
    if (!inbox) throw new Error(`mailbox ${mailbox.id} has no INBOX`);
    maildrop = await Maildrop.load(services.state, scope, inbox);
  } catch (err) {
    release();
    ctx.log.error({ err }, 'could not read the maildrop');
    return ctx.reply(REPLIES.MAILDROP_UNAVAILABLE);
  }
  // The client may have gone away while the listing was read.
  if (ctx.state === 'closing') return release();
  ctx.account = { user, scope, mailbox, maildrop, release };
  ctx.state = 'transaction';
  ctx.log.info({ mailbox_id: mailbox.id, messages: maildrop.count }, 'maildrop opened');
  ctx.reply(REPLIES.loggedIn(maildrop.count, maildrop.octets));
}
