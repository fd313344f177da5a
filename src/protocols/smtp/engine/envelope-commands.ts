/**
 * MAIL and RCPT (RFC 5321 §4.1.1.2, §4.1.1.3): the envelope of a mail transaction.
 *
 * The session checks the order of commands here; transaction.ts checks the parameters and asks the
 * pipeline (SIZE, SMTPUTF8, recipient limit, the pipeline's verdict).
 * - MAIL needs EHLO/HELO first and no transaction in progress (RFC 5321 §4.1.4, `503 5.5.1`);
 *   on submission it needs AUTH first (RFC 4954 §6 `530 5.7.0`; SPEC §3.2 step 1).
 * - RCPT needs an accepted MAIL (`503 5.5.1`).
 * - A MAIL the pipeline refuses leaves the session without a transaction.
 */
import type { SmtpCommand } from './command-parser.js';
import { REPLIES } from '../replies.js';
import type { SessionContext } from './session-context.js';
import { MailTransaction } from './transaction.js';

export async function mailCommand(ctx: SessionContext, c: Extract<SmtpCommand, { verb: 'MAIL' }>): Promise<void> {
  if (ctx.helo === null) return ctx.reply(REPLIES.EHLO_REQUIRED);
  if (ctx.transaction) return ctx.reply(REPLIES.NESTED_MAIL);
  if (ctx.deps.kind === 'submission' && !ctx.info.user) return ctx.reply(REPLIES.AUTH_REQUIRED);
  const tx = new MailTransaction({ pipeline: ctx.deps.pipeline, limits: ctx.deps.limits, log: ctx.log });
  const reply = await tx.mail(ctx.info, c);
  if (tx.started) ctx.transaction = tx;
  ctx.reply(reply);
}

export async function rcptCommand(ctx: SessionContext, c: Extract<SmtpCommand, { verb: 'RCPT' }>): Promise<void> {
  if (!ctx.transaction) return ctx.reply(REPLIES.NEED_MAIL);
  ctx.reply(await ctx.transaction.rcpt(ctx.info, c.to));
}
