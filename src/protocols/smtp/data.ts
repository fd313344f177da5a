/**
 * DATA (RFC 5321 §4.1.1.4): the message is streamed to the pipeline while it arrives, and the reply
 * waits for the pipeline's verdict — `250` only once the message is durable (SPEC §3.1 step 6).
 *
 * Size (RFC 1870): bytes are counted as they arrive. Past `maxMessageBytes` the pipeline's stream is
 * destroyed at once (it stores nothing), the rest of the message is read and discarded — the client
 * only listens for a reply after its final dot — and the answer is `552 5.3.4`.
 *
 * The message stream from smtp-server is always read to its end before the reply, whatever the
 * pipeline does, because the library reads the next command only after that.
 */
import { PassThrough } from 'node:stream';
import type { Logger } from 'pino';
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Verdict } from '../../pipeline/inbound/contract.js';
import { once, track, type HandlerContext } from './handler-context.js';
import { replyError, replyText } from './reply-error.js';
import { REPLIES } from './replies.js';
import { envelopeOf } from './session-info.js';

export class MessageTooLargeError extends Error {
  readonly code = 'MESSAGE_TOO_LARGE';
  constructor(limit: number) {
    super(`message exceeds ${limit} bytes`);
    this.name = 'MessageTooLargeError';
  }
}

type Callback = (err?: Error | null, message?: string) => void;

/** What became of the pipeline's receive: its verdict, or the error it threw. */
type Outcome = { kind: 'verdict'; verdict: Verdict & { messageId?: string } } | { kind: 'error'; err: unknown };

/** Chunks buffered between the socket and the pipeline before the socket is paused. */
const BODY_HIGH_WATER_MARK = 64 * 1024;

export function createDataHandler(ctx: HandlerContext) {
  return (stream: SMTPServerDataStream, session: SMTPServerSession, reply: Callback): void => {
    const state = ctx.registry.of(session);
    const callback = once(reply);
    const limit = ctx.limits.maxMessageBytes;
    const envelope = envelopeOf(state);
    const body = new PassThrough({ highWaterMark: BODY_HIGH_WATER_MARK });
    let size = 0;
    let tooLarge = false;

    const received = new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (tooLarge || body.destroyed) return; // discarding
        if (size > limit) {
          tooLarge = true;
          body.destroy(new MessageTooLargeError(limit));
          return;
        }
        if (!body.write(chunk)) {
          // Back-pressure from the pipeline (blob store slower than the client); resumed on drain,
          // or on close when the pipeline stops reading early.
          stream.pause();
          const resume = () => {
            body.off('drain', resume);
            body.off('close', resume);
            stream.resume();
          };
          body.on('drain', resume);
          body.on('close', resume);
        }
      });
      stream.once('end', () => {
        if (!tooLarge && !body.destroyed) body.end();
        resolve();
      });
      // The client went away mid-message: smtp-server destroys the stream; nothing may be stored.
      stream.once('error', (err) => body.destroy(err));
      stream.once('close', () => {
        if (!body.writableEnded && !body.destroyed) body.destroy(new Error('message stream closed before its end'));
        resolve();
      });
    });

    const work = async () => {
      let outcome: Outcome;
      try {
        outcome = { kind: 'verdict', verdict: await ctx.pipeline.receive({ ...state.info }, envelope, body) };
      } catch (err) {
        outcome = { kind: 'error', err };
      }
      // A pipeline that answered before reading everything must not leave the socket paused.
      if (!body.destroyed) body.destroy();
      if (stream.isPaused()) stream.resume();
      await received;
      state.transaction = undefined;
      answer(ctx, state.log, { size, tooLarge, outcome }, callback);
    };
    track(ctx, state, work, () => {
      if (!body.destroyed) body.destroy();
      // smtp-server answers only after the message stream has ended; keep reading it.
      stream.resume();
      callback(replyError(REPLIES.TEMP_LOCAL_ERROR));
    });
  };
}

function answer(ctx: HandlerContext, log: Logger, result: { size: number; tooLarge: boolean; outcome: Outcome }, callback: Callback): void {
  const count = (r: 'accepted' | 'rejected' | 'tempfail') => ctx.metrics?.smtpMessages.inc({ listener: ctx.metricLabel, result: r });
  const { size, tooLarge, outcome } = result;
  if (tooLarge) {
    count('rejected');
    log.info({ size, limit: ctx.limits.maxMessageBytes }, 'message refused: too large');
    return callback(replyError(REPLIES.MESSAGE_TOO_BIG));
  }
  if (outcome.kind === 'error') {
    count('tempfail');
    log.error({ err: outcome.err, size }, 'message could not be received');
    return callback(replyError(REPLIES.TEMP_LOCAL_ERROR));
  }
  const { verdict } = outcome;
  if (verdict.ok) {
    count('accepted');
    log.info({ size, message_id: verdict.messageId }, 'message accepted');
    return callback(null, replyText(verdict.reply ?? REPLIES.MESSAGE_ACCEPTED));
  }
  const reply = verdict.reply;
  count(reply.code >= 500 ? 'rejected' : 'tempfail');
  log.info({ size, reply: reply.code }, 'message refused');
  callback(replyError(reply));
}
