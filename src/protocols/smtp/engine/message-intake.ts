/**
 * One message on its way from the wire into `pipeline.receive` (DATA or BDAT), with the reply it
 * ends in (SPEC §3.1 step 6: `250` only when receive resolved ok — the message is durable).
 *
 * - Streaming with back-pressure: when the pipeline (blob store) is slower than the client, `write`
 *   waits for the stream to drain; the session does not read the socket meanwhile, so TCP pushes
 *   back on the client. The wait is bounded by `dataTimeoutMs`.
 * - Size (RFC 1870): bytes are counted as they arrive. Past `maxMessageBytes` the pipeline's stream
 *   is destroyed at once (it stores nothing), the rest of the message is counted and dropped, and
 *   the reply is `552 5.3.4` — never 250.
 * - A pipeline that answers before reading everything (an early reject) has its stream destroyed,
 *   so the rest of the message is dropped instead of waiting for a reader that is gone; an early
 *   *accept* cannot have stored the whole message and is answered 451 4.3.0.
 * - A pipeline that does not decide within `dataTimeoutMs` after the end of the message, or that
 *   throws, is answered `451 4.3.0`: the client keeps the message and retries.
 */
import { PassThrough } from 'node:stream';
import type { Envelope, InboundPipeline, SmtpSessionInfo, Verdict } from '../../../pipeline/inbound/contract.js';
import { REPLIES, type SmtpReply } from '../replies.js';
import { bounded } from './bounded.js';

export class MessageTooLargeError extends Error {
  readonly code = 'MESSAGE_TOO_LARGE';
  constructor(limit: number) {
    super(`message exceeds ${limit} bytes`);
    this.name = 'MessageTooLargeError';
  }
}

export class PipelineStalledError extends Error {
  readonly code = 'PIPELINE_STALLED';
  constructor(ms: number) {
    super(`the pipeline took no message data for ${ms} ms`);
    this.name = 'PipelineStalledError';
  }
}

export type IntakeResult = 'accepted' | 'rejected' | 'tempfail';

export interface IntakeOutcome {
  reply: SmtpReply;
  result: IntakeResult;
  size: number;
  messageId?: string;
  /** What went wrong, for the log. */
  err?: unknown;
}

type Received = { kind: 'verdict'; verdict: Verdict & { messageId?: string } } | { kind: 'error'; err: unknown };

/** Chunks buffered between the socket and the pipeline before `write` waits. */
export const BODY_HIGH_WATER_MARK = 64 * 1024;

export class MessageIntake {
  private readonly body = new PassThrough({ highWaterMark: BODY_HIGH_WATER_MARK });
  private readonly received: Promise<Received>;
  private size = 0;
  private tooLarge = false;
  private stalled = false;
  /** The pipeline decided before the message was complete (it cannot have stored all of it). */
  private decidedEarly = false;

  constructor(
    pipeline: InboundPipeline,
    session: SmtpSessionInfo,
    envelope: Envelope,
    private readonly opts: { maxMessageBytes: number; dataTimeoutMs: number },
  ) {
    // The pipeline sees a destroyed stream as an error; nobody else must crash on it.
    this.body.on('error', () => {});
    this.received = pipeline.receive({ ...session }, envelope, this.body).then(
      (verdict): Received => ({ kind: 'verdict', verdict }),
      (err: unknown): Received => ({ kind: 'error', err }),
    );
    // Decided before the end of the message: nobody reads the rest, drop it.
    void this.received.then(() => {
      if (this.body.writableEnded) return;
      this.decidedEarly = true;
      if (!this.body.destroyed) this.body.destroy();
    });
  }

  /** The message size so far (after dot-unstuffing). */
  get bytes(): number {
    return this.size;
  }

  /** True once the message is over the limit (the reply will be 552 5.3.4). */
  get overLimit(): boolean {
    return this.tooLarge;
  }

  /** Passes message bytes on; resolves when the pipeline can take more. */
  async write(chunks: readonly Buffer[]): Promise<void> {
    for (const chunk of chunks) {
      this.size += chunk.length;
      if (this.tooLarge || this.body.destroyed) continue;
      if (this.size > this.opts.maxMessageBytes) {
        this.tooLarge = true;
        this.body.destroy(new MessageTooLargeError(this.opts.maxMessageBytes));
        continue;
      }
      if (!this.body.write(chunk)) await this.drained();
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.body.off('drain', done);
        this.body.off('close', done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.stalled = true;
        this.body.destroy(new PipelineStalledError(this.opts.dataTimeoutMs));
        done();
      }, this.opts.dataTimeoutMs);
      this.body.on('drain', done);
      this.body.on('close', done);
    });
  }

  /** The client went away or the session ended mid-message: nothing may be stored. */
  abort(err: Error): void {
    if (!this.body.writableEnded && !this.body.destroyed) this.body.destroy(err);
  }

  /** The message is complete on the wire: waits for the pipeline's decision and returns the reply. */
  async finish(): Promise<IntakeOutcome> {
    const size = this.size;
    if (!this.tooLarge && !this.body.destroyed) this.body.end();
    let received: Received;
    try {
      received = await bounded(this.received, this.opts.dataTimeoutMs, 'pipeline.receive');
    } catch (err) {
      this.abort(err as Error);
      received = { kind: 'error', err };
    }
    if (this.tooLarge) return { reply: REPLIES.MESSAGE_TOO_BIG, result: 'rejected', size };
    if (this.stalled) return { reply: REPLIES.TEMP_LOCAL_ERROR, result: 'tempfail', size, err: new PipelineStalledError(this.opts.dataTimeoutMs) };
    if (received.kind === 'error') return { reply: REPLIES.TEMP_LOCAL_ERROR, result: 'tempfail', size, err: received.err };
    const { verdict } = received;
    if (verdict.ok && this.decidedEarly) {
      return { reply: REPLIES.TEMP_LOCAL_ERROR, result: 'tempfail', size, err: new Error('the pipeline accepted a message before its end') };
    }
    if (verdict.ok) return { reply: verdict.reply ?? REPLIES.MESSAGE_ACCEPTED, result: 'accepted', size, messageId: verdict.messageId };
    return { reply: verdict.reply, result: verdict.reply.code >= 500 ? 'rejected' : 'tempfail', size };
  }
}
