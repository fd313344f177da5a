/**
 * Building the full hook payload of a message (SPEC §6 "Payload to plugin"), before permissions
 * are applied: `filterPayload` (src/plugins/permissions.ts) then keeps only what a plugin was
 * granted. This module only reads the message; it never decides what a plugin may see.
 *
 *  - headers: every top-level field, name lower-cased, values unfolded (RFC 5322 §2.2.3) and decoded
 *    for reading (RFC 6532 UTF-8 or sniffed legacy charsets, RFC 2047 encoded words, raw ISO-2022-JP),
 *    in order; repeated fields keep every value;
 *  - body text: the first inline text/plain part, else the first text/html part rendered to text
 *    (the same part choice as the message view, src/mail/parts.ts), decoded (RFC 2045 §6, RFC 2046
 *    §4.1.2) and capped at BODY_TEXT_MAX_BYTES;
 *  - attachments: every other leaf (an encapsulated message counts as one), with its decoded bytes.
 *
 * Work is bounded: a message over PAYLOAD_PARSE_MAX_BYTES (25 MiB) is read only up to its header
 * block — body text '' and no attachments — so a huge message costs a hook chain no more than its
 * headers. The MIME structure parser itself is bounded in depth and parts (src/mail/mime/limits.ts).
 */
import { BODY_TEXT_MAX_BYTES } from '../mail/extract.js';
import { splitHeaderBlock } from '../mail/charset.js';
import { decodeBody, decodeTransfer, planParts } from '../mail/parts.js';
import { cutUtf8, htmlToText } from '../mail/preview.js';
import { parseMimeStructure, type MimePart } from '../mail/mime/index.js';
import { decodeHeaderBlock } from '../protocols/imap/search/header-text.js';
import type { AttachmentSource, HookPayloadSource } from '../plugins/permissions.js';
import type { FilterSubject, HookType } from './types.js';

/** Messages larger than this are not parsed beyond their header block. */
export const PAYLOAD_PARSE_MAX_BYTES = 25 * 1024 * 1024;
/** Header bytes read (the MIME parser's own per-part bound, src/mail/mime/limits.ts). */
export const PAYLOAD_HEADER_MAX_BYTES = 256 * 1024;
/** Header fields kept; a message with more is hostile or broken, and later fields say nothing new. */
export const PAYLOAD_MAX_HEADER_FIELDS = 1000;
/** Attachments listed (the MIME parser stops at 1000 parts anyway). */
export const PAYLOAD_MAX_ATTACHMENTS = 1000;

export interface PayloadInput {
  hookType: HookType;
  /** MaiRust's message id (the stored message, or the inbound transaction's id before it is stored). */
  messageId: string;
  tenantId: string | null;
  /** The recipient mailbox address when the payload concerns one mailbox (pre_delivery, post_receive). */
  mailbox: string | null;
  envelope: { from: string; to: readonly string[] };
  raw: Buffer;
  receivedAt: Date;
  clientIp: string | null;
  callbackUrl: string | null;
}

/** The header block of `raw`, bounded: everything when no blank line ends it (a headers-only message). */
function headerBlockOf(raw: Buffer): Buffer {
  const split = splitHeaderBlock(raw.subarray(0, PAYLOAD_HEADER_MAX_BYTES + 4));
  const end = split ? split.headerEnd : Math.min(raw.length, PAYLOAD_HEADER_MAX_BYTES);
  return raw.subarray(0, Math.min(end, PAYLOAD_HEADER_MAX_BYTES));
}

/**
 * Lower-cased field name → decoded values, in order. A field named `__proto__` is legal RFC 5322
 * syntax but would set the prototype of the plain objects the payload is copied into downstream
 * (`headers[name] = …`), so it is dropped.
 */
export function parseHeaders(raw: Buffer): Record<string, string[]> {
  const entries = new Map<string, string[]>();
  let kept = 0;
  for (const field of decodeHeaderBlock(headerBlockOf(raw))) {
    if (kept >= PAYLOAD_MAX_HEADER_FIELDS) break;
    if (field.name === '__proto__' || field.name === '') continue;
    const value = field.value.replace(/\u0000/g, '');
    const list = entries.get(field.name);
    if (list) list.push(value);
    else entries.set(field.name, [value]);
    kept++;
  }
  return Object.fromEntries(entries);
}

function bodyTextOf(raw: Buffer, text: MimePart | null, html: MimePart | null): string {
  // The encoded body of a part is at most the message size (≤ 25 MiB here); decodeBody caps the text.
  if (text) {
    const body = decodeBody(text, raw.subarray(text.bodyStart, text.bodyEnd), BODY_TEXT_MAX_BYTES).content.trim();
    if (body !== '' || !html) return body;
  }
  if (html) {
    const markup = decodeBody(html, raw.subarray(html.bodyStart, html.bodyEnd), BODY_TEXT_MAX_BYTES * 4).content;
    return cutUtf8(htmlToText(markup, BODY_TEXT_MAX_BYTES).trim(), BODY_TEXT_MAX_BYTES);
  }
  return '';
}

function attachmentOf(raw: Buffer, part: MimePart): AttachmentSource {
  const encoded = raw.subarray(part.bodyStart, part.bodyEnd);
  // An encapsulated message (message/rfc822) is handed over as the message itself, headers included.
  const content = part.message !== null ? raw.subarray(part.headerStart, part.bodyEnd) : decodeTransfer(part.encoding, encoded);
  return {
    filename: part.filename,
    content_type: `${part.contentType.type}/${part.contentType.subtype}`,
    size: content.length,
    content,
  };
}

/** A multipart whose boundary never occurs (no parts found): its body is text, not an attachment. */
function isBrokenMultipart(part: MimePart): boolean {
  return part.message === null && part.contentType.type === 'multipart' && part.children.length === 0;
}

/** Body text and attachments of a message small enough to parse. */
function parseBody(raw: Buffer): { text: string; attachments: AttachmentSource[] } {
  const structure = parseMimeStructure(raw);
  const plan = planParts(structure.root);
  const broken = plan.attachments.filter(isBrokenMultipart);
  const leaves = plan.attachments.filter((p) => !isBrokenMultipart(p));
  const attachments = leaves.slice(0, PAYLOAD_MAX_ATTACHMENTS).map((p) => attachmentOf(raw, p));
  let text = bodyTextOf(raw, plan.text, plan.html);
  if (text === '' && broken.length > 0) {
    // Keep the words of a message with a broken boundary visible to plugins, as the text index does.
    const part = broken[0];
    text = decodeBody(part, raw.subarray(part.bodyStart, part.bodyEnd), BODY_TEXT_MAX_BYTES).content.trim();
  }
  return { text, attachments };
}

/** Whether a parsed message has attachments (the same rule as the payload's list). */
function hasAttachmentParts(raw: Buffer): boolean {
  return planParts(parseMimeStructure(raw).root).attachments.some((p) => !isBrokenMultipart(p));
}

/**
 * Whether a message too large to parse has attachments, from its top-level Content-Type alone:
 * multipart/mixed is the type that carries attachments (RFC 2046 §5.1.3); anything else is
 * reported as none rather than guessed.
 */
function looksLikeAttachments(headers: Record<string, string[]>): boolean {
  const type = headers['content-type']?.[0]?.trim().toLowerCase() ?? '';
  return type.startsWith('multipart/mixed');
}

/** The full, unfiltered payload source of one message for one hook type. */
export function buildPayloadSource(input: PayloadInput): HookPayloadSource {
  const headers = parseHeaders(input.raw);
  let text = '';
  let attachments: AttachmentSource[] = [];
  let hasAttachments: boolean;
  if (input.raw.length > PAYLOAD_PARSE_MAX_BYTES) {
    hasAttachments = looksLikeAttachments(headers);
  } else {
    ({ text, attachments } = parseBody(input.raw));
    hasAttachments = attachments.length > 0;
  }
  return {
    hook_type: input.hookType,
    message_id: input.messageId,
    tenant_id: input.tenantId,
    mailbox: input.mailbox,
    envelope: { from: input.envelope.from, to: [...input.envelope.to] },
    headers,
    body: { text: text.replace(/\u0000/g, ''), size: input.raw.length, has_attachments: hasAttachments, attachments },
    callback_url: input.callbackUrl,
    metadata: { received_at: input.receivedAt.toISOString(), client_ip: input.clientIp },
  };
}

/**
 * What hook filters look at (SPEC §6 `filter`). From a built payload source, or — cheaper, for a
 * chain whose payload is built lazily — from the envelope and the raw message: then only the header
 * block and the MIME structure (no body decoding) are read, and messages over
 * PAYLOAD_PARSE_MAX_BYTES judge `has_attachments` from the top-level Content-Type as the payload does.
 */
export function filterSubjectOf(input: HookPayloadSource | { envelope: { from: string; to: readonly string[] }; raw: Buffer }): FilterSubject {
  if ('raw' in input) {
    const headers = parseHeaders(input.raw);
    let hasAttachments: boolean;
    if (input.raw.length > PAYLOAD_PARSE_MAX_BYTES) hasAttachments = looksLikeAttachments(headers);
    else hasAttachments = hasAttachmentParts(input.raw);
    return {
      recipients: [...input.envelope.to],
      sender: input.envelope.from,
      subject: headers.subject?.[0] ?? '',
      hasAttachments,
      size: input.raw.length,
    };
  }
  return {
    recipients: [...input.envelope.to],
    sender: input.envelope.from,
    subject: input.headers.subject?.[0] ?? '',
    hasAttachments: input.body.has_attachments,
    size: input.body.size,
  };
}
