/**
 * The end of a message, by DATA's end line or by the last BDAT chunk: the pipeline's verdict
 * (message-intake.ts) becomes the reply — `250` only once the message is durable (SPEC §3.1 step 6) —
 * and the session is between transactions again (RFC 5321 §4.1.1.4: the transaction is over
 * whatever the reply).
 */
import type { SessionContext } from './session-context.js';
import type { MailTransaction } from './transaction.js';

export async function completeMessage(ctx: SessionContext, tx: MailTransaction): Promise<void> {
  const outcome = await tx.finish();
  ctx.deps.metrics?.smtpMessages.inc({ listener: ctx.deps.metricLabel, result: outcome.result });
  ctx.transaction = null;
  ctx.phase = 'command';
  ctx.reply(outcome.reply);
}
