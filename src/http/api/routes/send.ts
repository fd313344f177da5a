/**
 * `POST /send` (SPEC §3.2, §11 `send`): a message from the API, through THE SAME pipeline as SMTP
 * submission — sender ownership (the envelope sender and every From: address must be the caller's,
 * SPEC §3.2 step 1), the outbound policy and pre_send hooks (step 2), DKIM, the Sent copy, local
 * delivery and the outbound queue (step 3). The API is one more submission client: it builds the
 * message and the envelope and speaks the pipeline's MAIL / RCPT / DATA contract.
 *
 * Two request forms (bounded by `api.body_limit_bytes`):
 *  - structured: `{from, to[], cc[], bcc[], subject, text, html, attachments[], headers{}, reply_to,
 *    in_reply_to, references}` — built with nodemailer's MailComposer (CRLF, MIME, RFC 2047/2231
 *    encoding). Bcc recipients are in the envelope only, never in the header (RFC 5322 §3.6.3:
 *    the blind copies must not be visible to the other recipients). File and URL access of the
 *    composer is off: attachment content comes only from the request.
 *  - raw: `{raw, raw_encoding: "text"|"base64"}` — an RFC 5322 message as written by a mail client;
 *    line ends are normalised to CRLF and Bcc fields removed. The envelope is `from` / `to` / `cc`
 *    / `bcc` of the request when given, else the From: / To: / Cc: / Bcc: fields.
 *
 * Answers 202 `{message_id, queue_id, accepted, rejected}` once the message is durable ("accepted"
 * means stored and, for remote recipients, queued — not yet delivered). Refusals keep the SMTP
 * reply in `details.smtp`: sender not owned or account suspended → 403 FORBIDDEN; rate limits and
 * other temporary policy refusals (4.7.x) → 429 RATE_LIMITED; other temporary trouble → 503;
 * the message itself refused (size, content, a pre_send plugin's 5xx) → 422 / 403.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import MailComposer from 'nodemailer/lib/mail-composer';
import { parseAddressHeader, type EmailAddress } from 'mailparser';
import { tryParseAddress } from '../../../core/tenancy/addresses.js';
import type { AcceptedRecipient, Envelope, SmtpSessionInfo } from '../../../pipeline/inbound/contract.js';
import { formatReply, type SmtpReply } from '../../../protocols/smtp/replies.js';
import { ApiError } from '../../errors.js';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { Data, errors } from '../schemas.js';

/** Envelope recipients of one send (SPEC §5.1 default max recipients). */
export const MAX_SEND_RECIPIENTS = 100;
export const MAX_ATTACHMENTS = 100;
/** RFC 5322 §2.1.1 line limit for a custom header value. */
const MAX_HEADER_VALUE = 998;
const MAX_CUSTOM_HEADERS = 50;

/** Fields the structured form sets itself or the server owns: not accepted in `headers{}`. */
const RESERVED_HEADERS = new Set([
  'from', 'to', 'cc', 'bcc', 'subject', 'date', 'message-id', 'reply-to', 'in-reply-to', 'references', 'sender',
  'mime-version', 'content-type', 'content-transfer-encoding', 'content-disposition', 'content-id',
  'received', 'return-path', 'dkim-signature', 'authentication-results', 'arc-seal', 'arc-message-signature', 'arc-authentication-results',
  'x-spam-status', 'x-spam-score', 'x-spam-flag',
]);

const Address = Type.String({ minLength: 3, maxLength: 320, description: 'An address, optionally with a display name: `Ann <ann@example.com>`.' });
const AddressList = Type.Array(Address, { maxItems: MAX_SEND_RECIPIENTS });

const SendBody = Type.Object(
  {
    from: Type.Optional(Address),
    to: Type.Optional(AddressList),
    cc: Type.Optional(AddressList),
    bcc: Type.Optional(AddressList),
    subject: Type.Optional(Type.String({ maxLength: 998 })),
    text: Type.Optional(Type.String()),
    html: Type.Optional(Type.String()),
    attachments: Type.Optional(
      Type.Array(
        Type.Object(
          {
            filename: Type.String({ minLength: 1, maxLength: 255 }),
            content_type: Type.Optional(Type.String({ minLength: 3, maxLength: 255, pattern: '^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$' })),
            content_base64: Type.String({ description: 'The content, base64.' }),
          },
          { additionalProperties: false },
        ),
        { maxItems: MAX_ATTACHMENTS },
      ),
    ),
    headers: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9-]{0,75}$' }), Type.String({ maxLength: MAX_HEADER_VALUE }), { description: 'Extra header fields (e.g. `X-Campaign`); standard and trace fields are refused.' })),
    reply_to: Type.Optional(Address),
    in_reply_to: Type.Optional(Type.String({ maxLength: 998 })),
    references: Type.Optional(Type.String({ maxLength: 998 * 4 })),
    raw: Type.Optional(Type.String({ minLength: 1, description: 'A complete RFC 5322 message instead of the structured fields.' })),
    raw_encoding: Type.Optional(Type.Union([Type.Literal('text'), Type.Literal('base64')], { default: 'text' })),
  },
  { additionalProperties: false },
);

const Rejected = Type.Object({ address: Type.String(), reply: Type.String({ description: 'The SMTP reply the recipient got.' }) });
const SendResult = Type.Object({
  message_id: Type.Union([Type.String(), Type.Null()], { description: 'The stored message (the Sent copy / local copies); null when nothing was stored.' }),
  queue_id: Type.Union([Type.String(), Type.Null()], { description: 'The outbound queue entry for remote recipients (`GET /queue/{id}`); null when every recipient is local.' }),
  accepted: Type.Array(Type.String()),
  rejected: Type.Array(Rejected),
});

type Body = Static<typeof SendBody>;

function invalid(message: string, field: string): ApiError {
  return new ApiError('VALIDATION_ERROR', message, { field, errors: [{ path: `/${field}`, message }] });
}

function flatten(list: EmailAddress[], out: string[]): void {
  for (const a of list) {
    if (a.group) flatten(a.group, out);
    else if (a.address) out.push(a.address);
  }
}

/** The bare address of `text` (`Ann <ann@x>` or `ann@x`), or a 422 naming `field`. */
function addressOf(text: string, field: string): string {
  if (/[\r\n]/.test(text)) throw invalid('line breaks are not allowed in addresses', field);
  const out: string[] = [];
  flatten(parseAddressHeader(text).value, out);
  if (out.length !== 1 || !tryParseAddress(out[0])) throw invalid(`not one valid address: ${text.slice(0, 100)}`, field);
  return out[0];
}

/** Index of the blank line ending the header section (after its CRLF), or -1. */
function headerEnd(raw: Buffer): number {
  if (raw.subarray(0, 2).toString('latin1') === '\r\n') return 2;
  const i = raw.indexOf('\r\n\r\n');
  return i < 0 ? -1 : i + 4;
}

/** Header fields of a raw message (unfolded), name lower-cased. */
function rawFields(header: string): { name: string; value: string; text: string }[] {
  const fields: { name: string; value: string; text: string }[] = [];
  for (const line of header.split('\r\n')) {
    if (line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length) {
      const f = fields[fields.length - 1];
      f.value += ` ${line.trim()}`;
      f.text += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim(), text: line });
  }
  return fields;
}

interface Built {
  bytes: Buffer;
  mailFrom: string;
  recipients: string[];
}

/** Normalises a raw message (CRLF, no Bcc fields) and derives the envelope where the request has none. */
function fromRaw(body: Body): Built {
  let bytes = body.raw_encoding === 'base64' ? Buffer.from(body.raw!, 'base64') : Buffer.from(body.raw!, 'utf8');
  // RFC 5322 §2.1 / RFC 5321 §2.3.8: lines end with CRLF; bare LF and CR are normalised.
  bytes = Buffer.from(bytes.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
  const end = headerEnd(bytes);
  if (end < 0) throw invalid('the raw message has no header section ending in a blank line', 'raw');
  const headerText = bytes.subarray(0, end).toString('latin1');
  const fields = rawFields(headerText);
  const listOf = (name: string) => {
    const out: string[] = [];
    for (const f of fields.filter((x) => x.name === name)) flatten(parseAddressHeader(f.value).value, out);
    return out;
  };
  if (fields.some((f) => f.name === 'bcc')) {
    // The blind copies travel in the envelope only (RFC 5322 §3.6.3, first method: remove the field).
    const kept = fields.filter((f) => f.name !== 'bcc').map((f) => `${f.text}\r\n`).join('');
    bytes = Buffer.concat([Buffer.from(`${kept}\r\n`, 'latin1'), bytes.subarray(end)]);
  }
  const mailFrom = body.from ? addressOf(body.from, 'from') : listOf('from')[0];
  if (!mailFrom) throw invalid('no sender: give `from` or a From: field', 'from');
  const explicit = body.to || body.cc || body.bcc;
  const recipients = explicit
    ? [...(body.to ?? []), ...(body.cc ?? []), ...(body.bcc ?? [])].map((a, i) => addressOf(a, `to/${i}`))
    : [...listOf('to'), ...listOf('cc'), ...listOf('bcc')];
  return { bytes, mailFrom, recipients };
}

async function fromStructured(body: Body): Promise<Built> {
  if (!body.from) throw invalid('`from` is required (or send `raw`)', 'from');
  const mailFrom = addressOf(body.from, 'from');
  const lists = { to: body.to ?? [], cc: body.cc ?? [], bcc: body.bcc ?? [] };
  const recipients: string[] = [];
  for (const [field, list] of Object.entries(lists)) list.forEach((a, i) => recipients.push(addressOf(a, `${field}/${i}`)));
  const headers: Record<string, string> = {};
  const custom = Object.entries(body.headers ?? {});
  if (custom.length > MAX_CUSTOM_HEADERS) throw invalid(`at most ${MAX_CUSTOM_HEADERS} custom headers`, 'headers');
  for (const [name, value] of custom) {
    if (RESERVED_HEADERS.has(name.toLowerCase()) || /^(resent-|list-)/i.test(name)) throw invalid(`header ${name} cannot be set here`, `headers/${name}`);
    // SPEC §10: header CRLF injection impossible.
    if (/[\r\n\u0000]/.test(value)) throw invalid('line breaks are not allowed in header values', `headers/${name}`);
    headers[name] = value;
  }
  for (const [field, v] of [['subject', body.subject], ['in_reply_to', body.in_reply_to], ['references', body.references]] as const) {
    if (v !== undefined && /[\r\n\u0000]/.test(v)) throw invalid('line breaks are not allowed here', field);
  }
  const attachments = (body.attachments ?? []).map((a, i) => {
    if (/[\r\n\u0000/\\]/.test(a.filename)) throw invalid('invalid file name', `attachments/${i}/filename`);
    if (!/^[A-Za-z0-9+/=\s]*$/.test(a.content_base64)) throw invalid('not base64', `attachments/${i}/content_base64`);
    return { filename: a.filename, contentType: a.content_type ?? 'application/octet-stream', content: Buffer.from(a.content_base64, 'base64') };
  });
  const composer = new MailComposer({
    from: body.from,
    to: lists.to.length ? lists.to : undefined,
    cc: lists.cc.length ? lists.cc : undefined,
    bcc: lists.bcc.length ? lists.bcc : undefined,
    replyTo: body.reply_to,
    inReplyTo: body.in_reply_to,
    references: body.references,
    subject: body.subject ?? '',
    text: body.text,
    html: body.html,
    attachments,
    headers,
    newline: 'win',
    xMailer: false,
    // Content comes from the request only, never from the server's files or the network (SSRF).
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  // keepBcc stays false: MimeNode leaves Bcc out of the header it builds.
  const bytes = await composer.compile().build();
  return { bytes, mailFrom, recipients };
}

/** An SMTP refusal as the API error of SPEC §11, with the reply in `details`. */
function refusal(reply: SmtpReply, extra: Record<string, unknown> = {}): ApiError {
  const details = { smtp: formatReply(reply), smtp_code: reply.code, smtp_enhanced: reply.enhanced, ...extra };
  const cls = reply.enhanced ?? '';
  if (reply.code >= 400 && reply.code < 500) {
    if (cls.startsWith('4.7.')) return new ApiError('RATE_LIMITED', reply.message, details);
    return new ApiError('SERVICE_UNAVAILABLE', reply.message, details);
  }
  // 5.7.x: security or policy (sender not owned, account suspended, a plugin's rejection).
  if (cls.startsWith('5.7.')) return new ApiError('FORBIDDEN', reply.message, details);
  return new ApiError('VALIDATION_ERROR', reply.message, details);
}

export async function sendRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.post<{ Body: Body }>(
    '/send',
    {
      config: { action: 'mail.send' },
      schema: {
        tags: ['send'],
        summary: 'Send a message',
        description:
          'Structured fields or a raw RFC 5322 message. Runs the submission pipeline: the sender must be one of your addresses; the outbound policy and pre_send hooks apply; the message is DKIM-signed, copied to your Sent folder, delivered to local recipients and queued for remote ones. 202 once stored and queued.',
        body: SendBody,
        response: { 202: Data(SendResult), ...errors(403, 422, 503) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const pipeline = deps.pipeline;
      if (!pipeline) throw new ApiError('SERVICE_UNAVAILABLE', 'sending is not available on this server');
      const body = request.body;
      const built = body.raw !== undefined ? fromRaw(body) : await fromStructured(body);
      const recipients = [...new Map(built.recipients.map((a) => [a.toLowerCase(), a])).values()];
      if (recipients.length === 0) throw invalid('no recipients', 'to');
      if (recipients.length > MAX_SEND_RECIPIENTS) throw invalid(`at most ${MAX_SEND_RECIPIENTS} recipients`, 'to');

      const session: SmtpSessionInfo & { via: 'api' } = {
        id: `api-${randomBytes(6).toString('hex')}`,
        listener: 'submission',
        remoteAddress: request.ip,
        remotePort: 0,
        helo: 'api',
        // The request reached us over the API's transport; the message never crossed an
        // unencrypted SMTP hop. Marked so the policy engine can tell the API's sends apart.
        secure: true,
        user: { id: p.user.id, tenantId: p.user.tenantId, email: p.user.email, role: p.user.role },
        via: 'api',
      };
      const sender = await pipeline.checkSender(session, built.mailFrom, built.bytes.length);
      if (!sender.ok) throw refusal(sender.reply);

      const envelope: Envelope = { mailFrom: built.mailFrom, declaredSize: built.bytes.length, recipients: [] as AcceptedRecipient[] };
      const rejected: { address: string; reply: string }[] = [];
      for (const address of recipients) {
        const v = await pipeline.checkRecipient(session, envelope, address);
        if (v.ok && v.recipient) envelope.recipients.push(v.recipient);
        else rejected.push({ address, reply: v.reply ? formatReply(v.reply) : 'refused' });
      }
      if (envelope.recipients.length === 0) {
        throw new ApiError('VALIDATION_ERROR', 'no recipient was accepted', { rejected, errors: rejected.map((r) => ({ path: '/to', message: `${r.address}: ${r.reply}` })) });
      }

      const verdict = await pipeline.receive(session, envelope, Readable.from([built.bytes]));
      if (!verdict.ok) throw refusal(verdict.reply, { rejected });
      const messageId = verdict.messageId ?? null;
      let queueId = (verdict as { queueId?: string }).queueId ?? null;
      if (!queueId && messageId && envelope.recipients.some((r) => !r.tenantId)) {
        const row = await deps.app.db.kysely
          .selectFrom('outbound_messages')
          .select('id')
          .where('message_id', '=', messageId)
          .where('tenant_id', '=', p.user.tenantId)
          .executeTakeFirst();
        queueId = row?.id ?? null;
      }
      reply.code(202);
      return { data: { message_id: messageId, queue_id: queueId, accepted: envelope.recipients.map((r) => r.address), rejected } };
    },
  );
}

export default sendRoutes;
