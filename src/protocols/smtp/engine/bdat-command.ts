/**
 * BDAT (RFC 3030 CHUNKING): the message in chunks of an announced size, without dot-stuffing; the
 * chunk sent with `LAST` ends it.
 *
 * - A chunk's octets follow the command whatever the reply will be, so they are always read — and
 *   dropped when the chunk is refused — before the reply to that BDAT is sent (RFC 3030 §2).
 * - Refused: no transaction (`503 5.5.1`), no accepted recipient, or DATA in the same transaction
 *   (transaction.ts).
 * - The first accepted chunk opens the message; each further one is answered `250 2.0.0`.
 * - An error reply to a chunk ends the transaction (RFC 3030 §2); the size limit is such an error,
 *   so a message over the limit ends at the chunk that crossed it, with `552 5.3.4`.
 */
import { REPLIES, type SmtpReply } from '../replies.js';
import { completeMessage } from './message-end.js';
import type { SessionContext } from './session-context.js';

export function startBdat(ctx: SessionContext, size: number, last: boolean): void | Promise<void> {
  const tx = ctx.transaction;
  let refusal: SmtpReply | null = null;
  if (!tx) refusal = ctx.helo === null ? REPLIES.EHLO_REQUIRED : REPLIES.NEED_MAIL;
  else refusal = tx.refuseBdat();
  if (!refusal && tx && !tx.opened) tx.open(ctx.info, 'bdat');
  ctx.bdat = { remaining: size, last, refusal };
  ctx.phase = 'bdat';
  if (size === 0) return endChunk(ctx);
}

/** Octets of the chunk (phase `bdat`; never more than `ctx.bdat.remaining`). */
export async function takeBdat(ctx: SessionContext, chunk: Buffer): Promise<void> {
  const bdat = ctx.bdat!;
  bdat.remaining -= chunk.length;
  if (!bdat.refusal) await ctx.transaction!.write([chunk]);
  if (bdat.remaining === 0) await endChunk(ctx);
}

async function endChunk(ctx: SessionContext): Promise<void> {
  const bdat = ctx.bdat!;
  ctx.bdat = null;
  ctx.phase = 'command';
  if (bdat.refusal) return ctx.reply(bdat.refusal);
  const tx = ctx.transaction!;
  if (bdat.last || tx.overLimit) return completeMessage(ctx, tx);
  ctx.reply(REPLIES.CHUNK_RECEIVED);
}
