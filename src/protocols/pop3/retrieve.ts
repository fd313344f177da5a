/**
 * RETR and TOP (RFC 1939 §7): a message, or its header and first lines, streamed from the blob
 * store through the mailbox-state service (`openMessage`) and encoded on the way (transfer.ts:
 * CRLF line ends, byte-stuffing, the final "."). Never the whole message in memory (SPEC §5.4), and
 * the client's reading speed sets the pace (backpressure on the socket).
 *
 * Failures:
 * - before the status line (blob store down, the first read fails): `-ERR [SYS/TEMP] …`, and the
 *   session goes on — metadata commands keep working while bodies are unavailable (SPEC §4);
 * - the message's row or blob is gone (purged after another session removed it): `-ERR`;
 * - after `+OK` a multi-line response cannot be turned into an error, so a read failure in the
 *   middle drops the connection; the client sees no terminating "." and does not take the
 *   truncated message for a whole one.
 *
 * RETR marks the message retrieved: it gets \Seen at QUIT (update.ts), as Dovecot does. TOP does not.
 */
import type { Readable } from 'node:stream';
import { NotFoundError } from '../../core/mailbox-state/index.js';
import { BlobNotFoundError } from '../../store/blob/blob-store.js';
import { REPLIES } from './replies.js';
import type { Pop3Account, SessionContext } from './session-context.js';
import { MessageTransfer } from './transfer.js';

export function retrCommand(ctx: SessionContext, account: Pop3Account, msg: number): Promise<void> {
  return transfer(ctx, account, msg, undefined);
}

export function topCommand(ctx: SessionContext, account: Pop3Account, msg: number, lines: number): Promise<void> {
  return transfer(ctx, account, msg, lines);
}

async function transfer(ctx: SessionContext, account: Pop3Account, msg: number, lines: number | undefined): Promise<void> {
  const m = account.maildrop.get(msg);
  if (!m) return ctx.reply(REPLIES.NO_SUCH_MESSAGE);
  const log = ctx.log.child({ msg, uid: m.uid, message_id: m.messageId });
  let chunks: AsyncIterator<Buffer>;
  let first: IteratorResult<Buffer>;
  try {
    const stream: Readable = await ctx.deps.services.state.openMessage(account.scope, m.messageId);
    chunks = stream[Symbol.asyncIterator]();
    // The first read shows whether the content can be had at all; only then is +OK promised.
    first = await chunks.next();
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof BlobNotFoundError) {
      log.warn({ err: { message: (err as Error).message } }, 'message content is gone');
      return ctx.reply(REPLIES.MESSAGE_GONE);
    }
    log.error({ err }, 'message content unavailable');
    return ctx.reply(REPLIES.CONTENT_UNAVAILABLE);
  }

  ctx.reply(lines === undefined ? REPLIES.message(m.size) : REPLIES.TOP);
  const encoder = new MessageTransfer(lines);
  try {
    for (let r = first; !r.done; r = await chunks.next()) {
      const out = encoder.push(r.value);
      if (out.length > 0 && !(await ctx.write(out))) return;
      if (encoder.done) break;
    }
  } catch (err) {
    log.error({ err }, 'message content failed in the middle of the response; dropping the connection');
    return ctx.abort();
  } finally {
    // Stops reading (TOP done early, client gone) and closes the blob stream.
    await chunks.return?.().catch(() => undefined);
  }
  if (!(await ctx.write(encoder.finish()))) return;
  if (lines === undefined) account.maildrop.markRetrieved(msg);
}
