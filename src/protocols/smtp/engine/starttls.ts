/**
 * STARTTLS (RFC 3207): `220`, a TLS handshake on the same connection, and a session that starts over.
 *
 * - Refused when TLS is already active (`503 5.5.1`) and not offered without a certificate
 *   (`502 5.5.1`; the implicit-TLS listener has none to offer again).
 * - Whatever the client sent after STARTTLS in clear is discarded, never executed after the
 *   handshake (RFC 3207 §4.2, and the command-injection attack — CVE-2011-0411 — that executing it
 *   invites). A transaction in progress is aborted.
 * - Nothing is read during the handshake; the idle timer bounds it (session.ts).
 * - After the handshake everything learned in clear is forgotten (RFC 3207 §4.2): the EHLO name and
 *   any user. The client must send EHLO again; AUTH is offered from now on (ehlo.ts).
 */
import tls from 'node:tls';
import { REPLIES } from '../replies.js';
import type { SessionContext } from './session-context.js';

export function startTls(ctx: SessionContext): void {
  if (ctx.info.secure) return ctx.reply(REPLIES.TLS_ALREADY_ACTIVE);
  const context = ctx.deps.secureContext();
  if (!context) return ctx.reply(REPLIES.COMMAND_NOT_IMPLEMENTED);
  ctx.reply(REPLIES.STARTTLS_READY);
  ctx.flush();
  discardPlaintext(ctx);
  ctx.phase = 'tls';
  const secure = ctx.switchSocket((raw) => new tls.TLSSocket(raw, { isServer: true, secureContext: context, requestCert: false }));
  secure.once('secure', () => {
    // The session may have ended meanwhile (timeout, shutdown, the client went away).
    if (ctx.phase !== 'tls') return;
    forgetPlaintextState(ctx);
    ctx.phase = 'command';
    ctx.touch();
    ctx.startReading();
  });
}

/** RFC 3207 §4.2: input buffered behind STARTTLS and the transaction are not carried over. */
function discardPlaintext(ctx: SessionContext): void {
  ctx.reader.clear();
  ctx.resetTransaction();
}

/** RFC 3207 §4.2: the state after the greeting, now with TLS. */
function forgetPlaintextState(ctx: SessionContext): void {
  ctx.info.secure = true;
  ctx.info.user = undefined;
  ctx.info.helo = '';
  ctx.helo = null;
}
