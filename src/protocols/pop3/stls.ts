/**
 * STLS (RFC 2595 §4): `+OK`, a TLS handshake on the same connection, and a session that starts over
 * in the AUTHORIZATION state.
 *
 * - Only in AUTHORIZATION (the session checks the state), never twice, and not on the implicit-TLS
 *   port (no certificate to offer again).
 * - Whatever the client pipelined behind STLS in clear is discarded, never executed after the
 *   handshake: a man in the middle could otherwise inject commands that run inside the protected
 *   session (RFC 2595 §4 "the client MUST discard cached information"; the server side of the same
 *   attack is CVE-2011-0411).
 * - Nothing is read during the handshake; the autologout timer bounds it (session.ts).
 * - A USER given in clear is forgotten (RFC 2595 §4: knowledge from before TLS is not kept).
 */
import tls from 'node:tls';
import { REPLIES } from './replies.js';
import type { SessionContext } from './session-context.js';

export function stlsCommand(ctx: SessionContext): void {
  if (ctx.info.secure) return ctx.reply(REPLIES.TLS_ALREADY_ACTIVE);
  const context = ctx.deps.secureContext();
  if (!context) return ctx.reply(REPLIES.TLS_NOT_AVAILABLE);
  ctx.reply(REPLIES.STLS_READY);
  ctx.flush();
  ctx.reader.clear();
  ctx.pendingUser = null;
  ctx.state = 'tls';
  const secure = ctx.switchSocket((raw) => new tls.TLSSocket(raw, { isServer: true, secureContext: context, requestCert: false }));
  secure.once('secure', () => {
    // The session may have ended meanwhile (timeout, shutdown, the client went away).
    if (ctx.state !== 'tls') return;
    ctx.info.secure = true;
    ctx.state = 'authorization';
    ctx.touch();
    ctx.startReading();
  });
}
