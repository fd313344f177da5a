/**
 * One mail transaction (RFC 5321 §3.3): MAIL FROM, RCPT TO…, then the message by DATA or BDAT,
 * decided by the pipeline contract (src/pipeline/inbound/contract.ts).
 *
 * Checked here, before the pipeline is asked:
 * - SIZE= over the announced maximum → `552 5.3.4` (RFC 1870 §6);
 * - a non-ASCII address without SMTPUTF8 → `553 5.6.7` (RFC 6531 §3.5);
 * - at most `maxRecipients` recipients → `452 4.5.3` (RFC 5321 §4.5.3.1.10: the client sends the rest
 *   in another transaction); a repeated recipient replaces the earlier one and does not count twice;
 * - DATA and BDAT are not mixed (RFC 3030 §2), DATA needs an accepted recipient (RFC 5321 §3.3).
 * Everything else is the pipeline's verdict; a pipeline call that throws or hangs past
 * `dataTimeoutMs` is `451 4.3.0` — the client retries, nothing was accepted.
 */
import type { Logger } from 'pino';
import type { AcceptedRecipient, Envelope, InboundPipeline, SmtpSessionInfo } from '../../../pipeline/inbound/contract.js';
import type { SmtpLimits } from '../limits.js';
import { REPLIES, type SmtpReply } from '../replies.js';
import { bounded } from './bounded.js';
import type { MailParams } from './command-parser.js';
import { MessageIntake, type IntakeOutcome } from './message-intake.js';
import type { ParsedMailbox } from './path.js';

export interface TransactionDeps {
  pipeline: InboundPipeline;
  limits: SmtpLimits;
  log: Logger;
}

export class MailTransaction {
  /** MAIL was accepted: the transaction exists. */
  started = false;
  private mailFrom: string | null = null;
  private declaredSize: number | undefined;
  private smtputf8 = false;
  private readonly recipients: AcceptedRecipient[] = [];
  private intake: MessageIntake | null = null;
  private mode: 'data' | 'bdat' | null = null;

  constructor(private readonly deps: TransactionDeps) {}

  async mail(session: SmtpSessionInfo, c: { from: ParsedMailbox | null; params: MailParams }): Promise<SmtpReply> {
    const { limits, pipeline, log } = this.deps;
    const size = c.params.size;
    if (size !== undefined && size > limits.maxMessageBytes) return REPLIES.MESSAGE_TOO_BIG;
    if (c.from?.utf8 && !c.params.smtputf8) return REPLIES.UTF8_REQUIRED;
    const mailFrom = c.from?.address ?? null;
    try {
      const verdict = await bounded(pipeline.checkSender({ ...session }, mailFrom, size), limits.dataTimeoutMs, 'pipeline.checkSender');
      if (!verdict.ok) {
        log.info({ mail_from: mailFrom, reply: verdict.reply.code }, 'MAIL FROM refused');
        return verdict.reply;
      }
      Object.assign(this, { started: true, mailFrom, declaredSize: size, smtputf8: c.params.smtputf8 });
      return verdict.reply ?? REPLIES.SENDER_OK;
    } catch (err) {
      log.error({ err }, 'MAIL FROM could not be checked');
      return REPLIES.TEMP_LOCAL_ERROR;
    }
  }

  async rcpt(session: SmtpSessionInfo, to: ParsedMailbox): Promise<SmtpReply> {
    const { limits, pipeline, log } = this.deps;
    if (this.mode) return REPLIES.BAD_SEQUENCE;
    if (to.utf8 && !this.smtputf8) return REPLIES.UTF8_REQUIRED;
    const key = to.address.toLowerCase();
    const repeated = this.recipients.findIndex((r) => r.address.toLowerCase() === key);
    if (repeated < 0 && this.recipients.length >= limits.maxRecipients) return REPLIES.TOO_MANY_RECIPIENTS;
    try {
      const verdict = await bounded(pipeline.checkRecipient({ ...session }, this.envelope(), to.address), limits.dataTimeoutMs, 'pipeline.checkRecipient');
      if (!verdict.ok) {
        log.info({ rcpt_to: to.address, reply: verdict.reply.code }, 'RCPT TO refused');
        return verdict.reply;
      }
      const recipient = verdict.recipient ?? { address: to.address };
      if (repeated >= 0) this.recipients[repeated] = recipient;
      else this.recipients.push(recipient);
      return verdict.reply ?? REPLIES.RECIPIENT_OK;
    } catch (err) {
      log.error({ err }, 'RCPT TO could not be checked');
      return REPLIES.TEMP_LOCAL_ERROR;
    }
  }

  /** Why DATA cannot start now, or null. */
  refuseData(): SmtpReply | null {
    if (this.mode === 'bdat') return REPLIES.DATA_AFTER_BDAT;
    if (this.recipients.length === 0) return REPLIES.NO_VALID_RECIPIENTS;
    return null;
  }

  /** Why a BDAT chunk cannot be taken now, or null. */
  refuseBdat(): SmtpReply | null {
    if (this.mode === 'data') return REPLIES.BAD_SEQUENCE;
    if (this.recipients.length === 0) return REPLIES.NO_VALID_RECIPIENTS;
    return null;
  }

  get opened(): boolean {
    return this.intake !== null;
  }

  get overLimit(): boolean {
    return this.intake?.overLimit ?? false;
  }

  /** Starts streaming the message into the pipeline. */
  open(session: SmtpSessionInfo, mode: 'data' | 'bdat' = 'data'): void {
    const { pipeline, limits } = this.deps;
    this.mode = mode;
    this.intake = new MessageIntake(pipeline, session, this.envelope(), limits);
  }

  write(chunks: readonly Buffer[]): Promise<void> {
    return this.intake!.write(chunks);
  }

  async finish(): Promise<IntakeOutcome> {
    const outcome = await this.intake!.finish();
    const { log } = this.deps;
    const fields = { size: outcome.size, reply: outcome.reply.code, message_id: outcome.messageId };
    if (outcome.result === 'accepted') log.info(fields, 'message accepted');
    else if (outcome.err) log.error({ ...fields, err: outcome.err }, 'message could not be received');
    else log.info(fields, 'message refused');
    return outcome;
  }

  abort(err: Error): void {
    this.intake?.abort(err);
  }

  /** The envelope as the pipeline sees it (a copy). */
  envelope(): Envelope {
    return { mailFrom: this.mailFrom, declaredSize: this.declaredSize, recipients: [...this.recipients] };
  }
}
