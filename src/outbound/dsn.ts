/**
 * Delivery Status Notifications (SPEC §3.3 "Bounces are RFC 3464 DSNs sent to the envelope sender
 * (never for a null sender); delay warnings … optional").
 *
 *   buildDsn()        pure: the bytes of a multipart/report (RFC 3462, now RFC 6522) with
 *                     report-type=delivery-status: a human-readable part (English), the
 *                     message/delivery-status part (RFC 3464 §2.2/§2.3) and the original header
 *                     section as text/rfc822-headers (RFC 6522 §4).
 *   createDsnSender() sends one: with the null sender, to the original envelope sender; never for
 *                     a message whose sender was null (RFC 3464 §2, RFC 5321 §6.1: no bounce of a
 *                     bounce, which could loop). A local sender finds it in INBOX (through
 *                     mailbox-state, like any delivery); a remote one gets it through the queue.
 *
 * Addresses with non-ASCII characters use the `utf-8` address type and
 * message/global-delivery-status (RFC 6533 §3, §6).
 */
import { returnPathField } from '../pipeline/inbound/stages/data.js';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { MailboxStateService } from '../core/mailbox-state/service.js';
import type { TenancyService } from '../core/tenancy/service.js';
import { systemScope, tenantScope } from '../core/scope.js';
import type { Database } from '../store/db/database.js';
import { newId } from '../store/db/database.js';
import type { Queue } from '../queue/queue.js';
import { createOutboundRecord, OUTBOUND_QUEUE, type RetryConfig } from './records.js';

export interface DsnRecipient {
  /** The recipient as given in RCPT TO (Original-/Final-Recipient). */
  address: string;
  action: 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';
  /** RFC 3463 status code, e.g. `5.1.1`. */
  status: string;
  /** The host that answered, when one did. */
  remoteMta?: string | null;
  /** The server's reply (`550 5.1.1 No such user`) or our own reason. */
  diagnostic?: string | null;
  lastAttemptAt?: number | null;
}

export interface DsnInput {
  /** Our host name: Reporting-MTA and the From/Message-ID domain. */
  reportingMta: string;
  /** The original envelope sender (To: of the DSN). */
  to: string;
  /** Our queue id of the original message (an X- field, RFC 3464 §2.2.2 extension). */
  envelopeId: string;
  arrivalDate: Date;
  recipients: DsnRecipient[];
  /** The original message's header section (CRLF line ends), or '' when it could not be read. */
  originalHeaders: string;
  /** For `delayed`: when we stop trying (Will-Retry-Until). */
  willRetryUntil?: Date | null;
  date?: Date;
}

const NON_ASCII = /[^\x00-\x7f]/;

/** Enhanced status code from a stored reply `550 5.1.1 text`, else from the basic code class. */
export function statusOf(reply: string | null | undefined, fallback: string): string {
  const m = /^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})\b/.exec(reply ?? '');
  if (m) return m[1];
  const code = /^(\d)\d\d\b/.exec(reply ?? '');
  if (code && (code[1] === '4' || code[1] === '5')) return `${code[1]}.0.0`;
  return fallback;
}

/** RFC 5322 date (`Thu, 03 Dec 2026 10:00:00 +0000`). */
export function rfc5322Date(d: Date): string {
  return d.toUTCString().replace('GMT', '+0000');
}

function addressType(address: string): string {
  return NON_ASCII.test(address) ? `utf-8; ${address}` : `rfc822; ${address}`;
}

/** Folds nothing: field values here are short; strips CR/LF so a reply text cannot inject fields. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim();
}

function humanPart(input: DsnInput): string {
  const failed = input.recipients.filter((r) => r.action === 'failed');
  const delayed = input.recipients.filter((r) => r.action === 'delayed');
  const lines: string[] = [`This is the mail system at host ${input.reportingMta}.`, ''];
  if (failed.length) {
    lines.push(
      'I am sorry to have to tell you that your message could not be delivered to one or more',
      'recipients. It is attached below (its header section).',
      '',
      'The following recipients failed permanently:',
      '',
    );
    for (const r of failed) lines.push(`  <${r.address}>: ${oneLine(r.diagnostic ?? r.status)}`);
    lines.push('');
  }
  if (delayed.length) {
    lines.push('Your message has not been delivered yet to the following recipients. The mail system will keep', 'trying; you do not need to send it again.', '');
    for (const r of delayed) lines.push(`  <${r.address}>: ${oneLine(r.diagnostic ?? r.status)}`);
    if (input.willRetryUntil) lines.push('', `Delivery will be attempted until ${rfc5322Date(input.willRetryUntil)}.`);
    lines.push('');
  }
  lines.push(`Queue id: ${input.envelopeId}`);
  return lines.join('\r\n') + '\r\n';
}

function statusPart(input: DsnInput): string {
  // Per-message fields, blank line, then one block of per-recipient fields each (RFC 3464 §2.1).
  const blocks: string[] = [[`Reporting-MTA: dns; ${input.reportingMta}`, `X-MaiRust-Queue-ID: ${input.envelopeId}`, `Arrival-Date: ${rfc5322Date(input.arrivalDate)}`].join('\r\n')];
  for (const r of input.recipients) {
    const f = [`Final-Recipient: ${addressType(r.address)}`, `Original-Recipient: ${addressType(r.address)}`, `Action: ${r.action}`, `Status: ${r.status}`];
    if (r.remoteMta) f.push(`Remote-MTA: dns; ${oneLine(r.remoteMta)}`);
    if (r.diagnostic) f.push(`Diagnostic-Code: smtp; ${oneLine(r.diagnostic)}`);
    if (r.lastAttemptAt) f.push(`Last-Attempt-Date: ${rfc5322Date(new Date(r.lastAttemptAt))}`);
    if (r.action === 'delayed' && input.willRetryUntil) f.push(`Will-Retry-Until: ${rfc5322Date(input.willRetryUntil)}`);
    blocks.push(f.join('\r\n'));
  }
  return blocks.join('\r\n\r\n') + '\r\n';
}

/** The DSN message (CRLF line ends), ready to store or send. */
export function buildDsn(input: DsnInput): Buffer {
  const date = input.date ?? new Date();
  const boundary = `=_mairust_dsn_${randomBytes(12).toString('hex')}`;
  const delayOnly = input.recipients.every((r) => r.action === 'delayed');
  const subject = delayOnly ? 'Delayed Mail (still being retried)' : 'Undelivered Mail Returned to Sender';
  const global = input.recipients.some((r) => NON_ASCII.test(r.address)) || NON_ASCII.test(input.to);
  const headers = input.originalHeaders.replace(/\r?\n/g, '\r\n').replace(/(\r\n)*$/, '\r\n');
  const eightBitHeaders = NON_ASCII.test(headers);
  const parts = [
    `From: Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`,
    `To: <${input.to}>`,
    `Subject: ${subject}`,
    `Date: ${rfc5322Date(date)}`,
    `Message-ID: <${newId()}@${input.reportingMta}>`,
    // RFC 3834 §5: automatic responses are marked so that responders do not answer them.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated delivery status notification.',
    '',
    `--${boundary}`,
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${NON_ASCII.test(humanPart(input)) ? '8bit' : '7bit'}`,
    '',
    humanPart(input),
    `--${boundary}`,
    'Content-Description: Delivery report',
    `Content-Type: message/${global ? 'global-delivery-status' : 'delivery-status'}`,
    '',
    statusPart(input),
    `--${boundary}`,
    'Content-Description: Undelivered message headers',
    // RFC 6532 headers with UTF-8 are message/global-headers (RFC 6533 §6.3).
    `Content-Type: ${eightBitHeaders ? 'message/global-headers' : 'text/rfc822-headers'}`,
    '',
    headers,
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(parts.join('\r\n'), 'utf8');
}

/** The header section of a message stream (up to the first empty line), at most `max` bytes. */
export async function readHeaderSection(stream: Readable, max = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      chunks.push(b);
      size += b.length;
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end >= 0) return all.subarray(0, end + 2).toString('utf8');
      const lf = all.indexOf('\n\n');
      if (lf >= 0) return all.subarray(0, lf + 1).toString('utf8');
      if (size >= max) return all.subarray(0, max).toString('utf8');
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

// ── Sending ────────────────────────────────────────────────────────────────────────────────────

export interface DsnRequest {
  tenantId: string;
  /** The original record. */
  outboundId: string;
  messageId: string;
  /** The original envelope sender; '' means none is sent. */
  mailFrom: string;
  arrivedAt: number;
  recipients: DsnRecipient[];
  willRetryUntil?: number | null;
}

/** Where a DSN went: nowhere (null sender), into a local INBOX, or into the queue. */
export type DsnOutcome = 'none' | 'local' | 'remote';

export interface DsnSender {
  send(req: DsnRequest): Promise<DsnOutcome>;
}

export interface DsnSenderDeps {
  db: Database;
  mailboxState: MailboxStateService;
  tenancy: TenancyService;
  queue: Queue;
  hostname: string;
  retry?: () => RetryConfig;
  logger?: Logger;
}

export function createDsnSender(deps: DsnSenderDeps): DsnSender {
  return {
    async send(req) {
      // RFC 3464 §2 / RFC 5321 §6.1: a message with a null reverse-path is never bounced.
      if (req.mailFrom === '' || req.recipients.length === 0) return 'none';
      const scope = tenantScope(req.tenantId);
      let originalHeaders = '';
      try {
        originalHeaders = await readHeaderSection(await deps.mailboxState.openMessage(scope, req.messageId));
      } catch (err) {
        deps.logger?.warn({ outbound_id: req.outboundId, err: (err as Error).message }, 'original message unreadable: DSN sent without its headers');
      }
      const raw = buildDsn({
        reportingMta: deps.hostname,
        to: req.mailFrom,
        envelopeId: req.outboundId,
        arrivalDate: new Date(req.arrivedAt),
        recipients: req.recipients,
        originalHeaders,
        willRetryUntil: req.willRetryUntil ? new Date(req.willRetryUntil) : null,
      });
      const local = await deps.tenancy.resolveRecipient(systemScope, req.mailFrom);
      if (local) {
        const owner = tenantScope(local.tenantId);
        // Delivered here, so we are the final-delivery server: the DSN's reverse-path is null (RFC 5321 §4.4).
        const delivered = Buffer.concat([Buffer.from(returnPathField(null)), Buffer.isBuffer(raw) ? raw : Buffer.from(raw)]);
        for (const mailboxId of local.mailboxIds) {
          const inbox = await deps.mailboxState.findFolder(owner, mailboxId, 'INBOX');
          if (!inbox) continue;
          await deps.mailboxState.append(owner, mailboxId, inbox.id, delivered);
        }
        deps.logger?.info({ outbound_id: req.outboundId, to: req.mailFrom }, 'DSN delivered locally');
        return 'local';
      }
      // A remote sender: the DSN is a message of the original's tenant, queued with the null sender.
      const stored = await deps.mailboxState.storeMessage(scope, { raw });
      const id = randomBytes(8).toString('hex');
      await deps.db.kysely.transaction().execute((trx) =>
        createOutboundRecord(deps.queue, trx, {
          id,
          tenantId: req.tenantId,
          messageId: stored.id,
          userId: null,
          mailFrom: '',
          recipients: [req.mailFrom],
          size: raw.length,
          retry: deps.retry?.(),
        }),
      );
      deps.queue.wake?.(OUTBOUND_QUEUE);
      deps.logger?.info({ outbound_id: req.outboundId, dsn_id: id, to: req.mailFrom }, 'DSN queued for a remote sender');
      return 'remote';
    },
  };
}
