/**
 * DATA (RFC 5321 §4.1.1.4): `354`, then the message, dot-stuffed, up to `CRLF . CRLF`.
 *
 * - DATA needs a transaction with at least one accepted recipient and no BDAT chunk before it
 *   (transaction.ts; RFC 5321 §3.3, RFC 3030 §2); without MAIL it is `503 5.5.1`.
 * - The body is decoded as it arrives (data-reader.ts) and streamed into the pipeline; what the
 *   client pipelined after the end line goes back into the input, to be read as commands.
 */
import { REPLIES } from '../replies.js';
import { DotUnstuffer } from './data-reader.js';
import { completeMessage } from './message-end.js';
import type { SessionContext } from './session-context.js';

export function startData(ctx: SessionContext): void {
  const tx = ctx.transaction;
  if (!tx) return ctx.reply(ctx.helo === null ? REPLIES.EHLO_REQUIRED : REPLIES.NEED_MAIL);
  const refusal = tx.refuseData();
  if (refusal) return ctx.reply(refusal);
  tx.open(ctx.info);
  ctx.unstuffer = new DotUnstuffer();
  ctx.phase = 'data';
  ctx.reply(REPLIES.START_DATA);
  // The client waits for 354 before sending the message (unless it pipelined DATA last).
  ctx.flush();
}

/** One chunk of the body as it came off the wire (phase `data`). */
export async function takeData(ctx: SessionContext, chunk: Buffer): Promise<void> {
  const tx = ctx.transaction!;
  const { data, done, rest } = ctx.unstuffer!.push(chunk);
  await tx.write(data);
  if (!done) return;
  ctx.unstuffer = null;
  ctx.reader.unshift(rest);
  await completeMessage(ctx, tx);
}
