/**
 * AUTH (RFC 4954): the command's preconditions and the exchange of `334` challenges and client
 * responses over AuthExchange (auth-exchange.ts); the credentials are checked by auth.ts (lockout,
 * user store), which also decides the failure replies.
 *
 * - Only on submission (`503 5.5.1` elsewhere), only under TLS (SPEC §2; `538 5.7.11`, RFC 4954 §6),
 *   after EHLO, once per session and not inside a mail transaction (RFC 4954 §4: `503 5.5.1`).
 * - Unknown mechanisms get `504 5.5.4`.
 * - While a challenge is outstanding the session is in phase `auth`: the next line is the client's
 *   response, not a command.
 */
import { checkLogin } from '../auth.js';
import { REPLIES } from '../replies.js';
import { AuthExchange, isAuthMechanism, type AuthStep } from './auth-exchange.js';
import type { SessionContext } from './session-context.js';

export async function startAuth(ctx: SessionContext, mechanism: string, initialResponse: string | undefined): Promise<void> {
  if (ctx.deps.kind !== 'submission') return ctx.reply(REPLIES.AUTH_NOT_ENABLED);
  // SPEC §2: AUTH is never advertised on plaintext, and refused there (RFC 4954 §4, 538).
  if (!ctx.info.secure) return ctx.reply(REPLIES.ENCRYPTION_REQUIRED);
  if (ctx.helo === null) return ctx.reply(REPLIES.EHLO_REQUIRED);
  if (ctx.info.user) return ctx.reply(REPLIES.ALREADY_AUTHENTICATED);
  if (ctx.transaction) return ctx.reply(REPLIES.BAD_SEQUENCE);
  if (!isAuthMechanism(mechanism)) return ctx.reply(REPLIES.AUTH_MECHANISM_UNSUPPORTED);
  ctx.authExchange = new AuthExchange(mechanism);
  await authStep(ctx, ctx.authExchange.start(initialResponse));
}

/** One response line of the client (phase `auth`). */
export async function authResponse(ctx: SessionContext, line: Buffer): Promise<void> {
  await authStep(ctx, ctx.authExchange!.respond(line.toString('latin1')));
}

async function authStep(ctx: SessionContext, step: AuthStep): Promise<void> {
  if (step.kind === 'challenge') {
    ctx.phase = 'auth';
    ctx.send(`334 ${step.text}\r\n`);
    // The client answers the challenge before it sends anything else.
    return ctx.flush();
  }
  ctx.phase = 'command';
  ctx.authExchange = null;
  if (step.kind === 'fail') return ctx.reply(step.reply);
  const outcome = await checkLogin(ctx.deps.auth, ctx.info, step.attempt, ctx.log);
  if (!outcome.ok) return ctx.reply(outcome.reply);
  ctx.info.user = outcome.user;
  ctx.reply(REPLIES.AUTH_OK);
}
