/**
 * The state of one message on its way through the inbound stages (stages.ts). Each stage reads
 * what earlier ones left and adds its own part; nothing here touches storage.
 */
import type { Readable } from 'node:stream';
import type { Envelope, SmtpSessionInfo } from './contract.js';
import type { HeaderBlock } from './header-block.js';
import type { SpooledMessage } from './spool.js';
import type { PolicyDecision } from '../../outbound/types.js';

/** Where a local recipient's copy goes, as a pre_delivery hook may choose it (SPEC §3.1 step 5). */
export interface DeliveryChoice {
  /** A folder name; unknown names fall back to INBOX (mailbox-state "implicit keep"). */
  folderName?: string;
  flags?: string[];
  keywords?: string[];
}

export interface SpamOutcome {
  score: number;
  requiredScore: number;
  action: string;
  source: string;
}

export interface CommitOutcome {
  /** One stored message row per tenant that got a copy. */
  messageIds: string[];
  tenantIds: string[];
  /** Local mailboxes that received the message. */
  delivered: number;
  /** Local mailboxes skipped because they were over quota at commit (see commit.ts). */
  overQuota: number;
  /** The outbound job of a submission with remote recipients. */
  outboundJobId: string | null;
  /** Size of the stored message (with the prepended fields). */
  storedSize: number;
}

export interface InboundMessage {
  readonly session: SmtpSessionInfo;
  readonly envelope: Envelope;
  /** The DATA stream; consumed by the first stage. */
  readonly data: Readable;
  /** Our id for this message: the Received ID clause and `queue_id` in the log. */
  readonly queueId: string;
  readonly receivedAt: Date;
  /** The received bytes (set by the `data` stage). */
  source?: SpooledMessage;
  /** The header section of `source` (set by the `header-checks` stage). */
  headers?: HeaderBlock;
  /** Byte ranges of `source` left out of the stored message (forged Authentication-Results). */
  dropRanges: [number, number][];
  /**
   * Complete header fields (CRLF-terminated) stored above the original header, in this order:
   * `dkim` first (a submission's DKIM-Signature, added last, just before commit, over everything
   * below it), then the trace and result fields.
   */
  prepend: { dkim: string; received: string; authResults: string; spam: string };
  /** The Authentication-Results value for the messages.auth_results column. */
  authResults: string | null;
  /** DMARC disposition (SPEC §3.1 step 3). */
  disposition: 'accept' | 'quarantine' | 'reject';
  spam: SpamOutcome | null;
  /** File every local copy into the recipient's Junk folder (spam or DMARC quarantine). */
  junk: boolean;
  /** Per local mailbox id: a pre_delivery hook's choice. */
  choices: Map<string, DeliveryChoice>;
  /** Local mailbox ids whose copy a pre_delivery hook dropped (→ the reason, for the log). */
  dropped: Map<string, string>;
  /**
   * Metadata pre_receive plugins wrote, per tenant then plugin id (SPEC §7 namespace
   * `plugin:<id>:`), written with the tenant's message row at commit.
   */
  pluginMetadata: Map<string, Record<string, Record<string, unknown>>>;
  /**
   * Submission only (stage `outbound-policy`, SPEC §8): the outbound policy engine's decision, kept
   * for the outbound queue record; absent on MX and when no policy is configured.
   */
  policyDecision?: PolicyDecision;
  /** Submission only: a soft-limited message waits this long in the outbound queue (0 = send now). */
  outboundDelayMs: number;
  /** Set by the `commit` stage. */
  committed?: CommitOutcome;
}

export function newInboundMessage(session: SmtpSessionInfo, envelope: Envelope, data: Readable, queueId: string, receivedAt = new Date()): InboundMessage {
  return {
    session,
    envelope,
    data,
    queueId,
    receivedAt,
    dropRanges: [],
    prepend: { dkim: '', received: '', authResults: '', spam: '' },
    authResults: null,
    disposition: 'accept',
    spam: null,
    junk: false,
    choices: new Map(),
    dropped: new Map(),
    pluginMetadata: new Map(),
    outboundDelayMs: 0,
  };
}

/**
 * The prepended fields in storage order. DKIM-Signature first: it is computed last, over the
 * message exactly as stored below it (`signedText`), and a field added above a signature does not
 * break it (RFC 6376 §5.4: only the fields named in h= are covered, and trace fields are not
 * named). Then Received (newest trace on top, RFC 5321 §4.4), Authentication-Results, spam.
 */
export function prependedText(msg: InboundMessage): string {
  return msg.prepend.dkim + signedText(msg);
}

/** The prepended fields below the DKIM-Signature: what the signer sees above the original header. */
export function signedText(msg: InboundMessage): string {
  return msg.prepend.received + msg.prepend.authResults + msg.prepend.spam;
}
