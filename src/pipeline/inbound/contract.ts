/**
 * The seam between the SMTP protocol layer (src/protocols/smtp) and the mail pipeline
 * (src/pipeline). The protocol layer knows bytes, commands and replies; the pipeline knows
 * recipients, policy and storage. Neither imports the other's internals.
 *
 * Every method answers with a `Verdict`: accept, or an SMTP reply from the reply table.
 * `receive` resolves only after the message is durable (blob stored and rows committed):
 * the protocol layer sends `250` on that and only on that (SPEC §3.1 step 6).
 */
import type { Readable } from 'node:stream';
import type { SmtpReply } from '../../protocols/smtp/replies.js';

export type ListenerKind = 'mx' | 'submission';

export interface AuthenticatedUser {
  id: string;
  tenantId: string;
  email: string;
  role: string;
}

export interface SmtpSessionInfo {
  /** Unique per connection; appears in logs as `session_id`. */
  id: string;
  listener: ListenerKind;
  remoteAddress: string;
  remotePort: number;
  /** The HELO/EHLO argument. */
  helo: string;
  /** TLS is active (STARTTLS done or implicit TLS). */
  secure: boolean;
  /** Set after a successful AUTH. */
  user?: AuthenticatedUser;
}

export type Verdict = { ok: true; reply?: SmtpReply } | { ok: false; reply: SmtpReply };

/** A recipient the pipeline accepted at RCPT time, with what it resolved to. */
export interface AcceptedRecipient {
  /** The address as given in RCPT TO (after removing the angle brackets). */
  address: string;
  /** Local delivery: tenant and mailbox ids; remote (submission only): undefined. */
  tenantId?: string;
  mailboxIds?: string[];
  /** `+tag` of plus-addressing, kept for filing rules. */
  subaddress?: string;
}

export interface Envelope {
  /** Envelope sender; null for the null reverse-path `<>` (bounces, RFC 5321 §4.5.5). */
  mailFrom: string | null;
  /** SIZE= parameter of MAIL FROM, if the client sent one (RFC 1870). */
  declaredSize?: number;
  recipients: AcceptedRecipient[];
}

export interface InboundPipeline {
  /** MAIL FROM: for submission, the sender must be an address the user owns (553 5.7.1). */
  checkSender(session: SmtpSessionInfo, mailFrom: string | null, declaredSize?: number): Promise<Verdict>;
  /**
   * RCPT TO: hosted mailbox/alias (550 5.1.1 if unknown), never an open relay (554 5.7.1),
   * quota checked early (452 4.2.2). On success returns the resolved recipient.
   */
  checkRecipient(session: SmtpSessionInfo, envelope: Envelope, address: string): Promise<Verdict & { recipient?: AcceptedRecipient }>;
  /**
   * DATA/BDAT: consumes the message stream, runs the stages, and commits. Resolves with the
   * verdict once the message is durable (or rejected). The stream must be fully consumed or
   * destroyed in every case.
   */
  receive(session: SmtpSessionInfo, envelope: Envelope, data: Readable): Promise<Verdict & { messageId?: string }>;
}
