/**
 * MAIL FROM and RCPT TO (RFC 5321 §3.3, §4.1.1.2–3) mapped onto the pipeline contract.
 *
 * smtp-server has already checked the syntax, the order of commands, and a declared SIZE= against
 * the announced maximum (RFC 1870 §6) when these run. What is decided here:
 * - submission needs AUTH before MAIL (`530 5.7.0`; SPEC §3.2) — checked here as well as in the
 *   library, because before STARTTLS the listener hides AUTH and the library's own check is off then;
 * - no new transaction starts while the listener drains (`421 4.3.2`);
 * - at most `maxRecipients` recipients (`452 4.5.3`, RFC 5321 §4.5.3.1.10: the client sends the rest
 *   in another transaction);
 * - everything else is the pipeline's verdict. A pipeline that throws gets `451 4.3.0`: the client
 *   retries later, nothing was accepted.
 */
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import { once, track, type HandlerContext } from './handler-context.js';
import { replyError } from './reply-error.js';
import { REPLIES } from './replies.js';
import { envelopeOf } from './session-info.js';

type Callback = (err?: Error | null) => void;

export function createMailFromHandler(ctx: HandlerContext) {
  return (address: SMTPServerAddress, session: SMTPServerSession, reply: Callback): void => {
    const state = ctx.registry.of(session);
    const callback = once(reply);
    if (ctx.draining()) return callback(replyError(REPLIES.SHUTTING_DOWN));
    if (ctx.kind === 'submission' && !state.info.user) return callback(replyError(REPLIES.AUTH_REQUIRED));
    const work = async () => {
      const mailFrom = address.address === '' ? null : address.address;
      const size = address.args && typeof address.args.SIZE === 'string' ? Number(address.args.SIZE) : undefined;
      state.transaction = undefined;
      try {
        const verdict = await ctx.pipeline.checkSender({ ...state.info }, mailFrom, size);
        if (!verdict.ok) {
          state.log.info({ mail_from: mailFrom, reply: verdict.reply.code }, 'MAIL FROM refused');
          return callback(replyError(verdict.reply));
        }
        state.transaction = { mailFrom, declaredSize: size, recipients: [] };
        callback();
      } catch (err) {
        state.log.error({ err }, 'MAIL FROM could not be checked');
        callback(replyError(REPLIES.TEMP_LOCAL_ERROR));
      }
    };
    track(ctx, state, work, () => callback(replyError(REPLIES.TEMP_LOCAL_ERROR)));
  };
}

export function createRcptToHandler(ctx: HandlerContext) {
  return (address: SMTPServerAddress, session: SMTPServerSession, reply: Callback): void => {
    const state = ctx.registry.of(session);
    const callback = once(reply);
    const transaction = state.transaction;
    // The library accepted MAIL but the pipeline's answer is unknown here: a pipelined RCPT after a
    // refused MAIL never reaches us (the library answers 503), so this is a bug guard only.
    if (!transaction) return callback(replyError(REPLIES.BAD_SEQUENCE));
    const key = address.address.toLowerCase();
    // A repeated recipient replaces the earlier one (as smtp-server does) and does not count twice.
    const repeated = transaction.recipients.findIndex((r) => r.address.toLowerCase() === key);
    if (repeated < 0 && transaction.recipients.length >= ctx.limits.maxRecipients) {
      return callback(replyError(REPLIES.TOO_MANY_RECIPIENTS));
    }
    const work = async () => {
      try {
        const verdict = await ctx.pipeline.checkRecipient({ ...state.info }, envelopeOf(state), address.address);
        if (!verdict.ok) {
          state.log.info({ rcpt_to: address.address, reply: verdict.reply.code }, 'RCPT TO refused');
          return callback(replyError(verdict.reply));
        }
        const recipient = verdict.recipient ?? { address: address.address };
        if (repeated >= 0) transaction.recipients[repeated] = recipient;
        else transaction.recipients.push(recipient);
        callback();
      } catch (err) {
        state.log.error({ err }, 'RCPT TO could not be checked');
        callback(replyError(REPLIES.TEMP_LOCAL_ERROR));
      }
    };
    track(ctx, state, work, () => callback(replyError(REPLIES.TEMP_LOCAL_ERROR)));
  };
}
