/**
 * EHLO and HELO (RFC 5321 §4.1.1.1): the client introduces itself, which starts the session over.
 *
 * - The name is recorded, not verified (RFC 5321 §4.1.4: a mismatch MUST NOT be refused).
 * - Like RSET, EHLO/HELO aborts a mail transaction in progress (RFC 5321 §4.1.4).
 * - HELO gets the one-line reply, EHLO the list of service extensions (ehlo.ts); neither carries an
 *   enhanced status code (RFC 2034 §3).
 */
import type { SmtpCommand } from './command-parser.js';
import { ehloReply } from './ehlo.js';
import type { SessionContext } from './session-context.js';

export function hello(ctx: SessionContext, c: Extract<SmtpCommand, { verb: 'EHLO' | 'HELO' }>): void {
  ctx.resetTransaction();
  ctx.helo = c.domain;
  ctx.info.helo = c.domain;
  if (c.verb === 'HELO') return ctx.send(`250 ${ctx.deps.hostname}\r\n`);
  ctx.send(
    ehloReply({
      hostname: ctx.deps.hostname,
      maxMessageBytes: ctx.deps.limits.maxMessageBytes,
      secure: ctx.info.secure,
      // SPEC §2: AUTH belongs to submission; ehlo.ts offers it only under TLS.
      authAvailable: ctx.deps.kind === 'submission',
    }),
  );
}
