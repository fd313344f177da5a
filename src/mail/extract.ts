/**
 * Message metadata extraction: the parsed header fields, body text, preview and attachment list
 * stored with every message (SPEC §4 "Messages") and fed to the text index (SPEC §4 "Search").
 *
 * MIME decoding (RFC 2045–2047, RFC 2231 parameters, labelled charsets including ISO-2022-JP,
 * Shift_JIS and EUC-JP) is mailparser's; this module adds what a mail store needs on top:
 * unlabelled legacy Japanese repaired (see charset.ts), a Date that is null rather than "now" when
 * unparsable, text from HTML-only messages, byte caps, and never throwing on malformed input.
 */
import { isUtf8 } from 'node:buffer';
import { MailParser, parseAddressHeader, type AddressObject, type EmailAddress, type HeaderLines } from 'mailparser';
import { decodeIso2022jp, decodeUnlabelled, labelUnlabelledBody, splitHeaderBlock } from './charset.js';
import { cutUtf8, htmlToText, makePreview } from './preview.js';

export interface MessageAttachment {
  filename: string | null;
  contentType: string;
  /** Decoded size in bytes. */
  size: number;
}

export interface MessageMeta {
  messageIdHeader: string | null;
  subject: string | null;
  /** First From address as `Name <addr>` or bare `addr`. */
  from: string | null;
  to: string[];
  cc: string[];
  /** Date header in ms since the epoch; null when missing or unparsable. */
  date: number | null;
  preview: string;
  /** Text for the index: the text/plain parts, or the HTML as text; at most BODY_TEXT_MAX_BYTES. */
  bodyText: string;
  hasAttachments: boolean;
  attachments: MessageAttachment[];
}

export interface ExtractOptions {
  /** Preview budget in UTF-8 bytes; default 4096, clamped to 1024..16384 (SPEC §2). */
  previewBytes?: number;
}

export const DEFAULT_PREVIEW_BYTES = 4096;
export const MIN_PREVIEW_BYTES = 1024;
export const MAX_PREVIEW_BYTES = 16384;
/**
 * Cap on indexed body text (UTF-8 bytes). Search is over what people read: a megabyte of text is
 * several hundred pages, and beyond it the trigram index grows without helping anyone.
 */
export const BODY_TEXT_MAX_BYTES = 1024 * 1024;

export function clampPreviewBytes(value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value)) return DEFAULT_PREVIEW_BYTES;
  return Math.min(MAX_PREVIEW_BYTES, Math.max(MIN_PREVIEW_BYTES, Math.floor(value)));
}

interface ParsedMime {
  headers: Map<string, unknown>;
  headerLines: HeaderLines;
  text?: string;
  html?: string;
  attachments: MessageAttachment[];
}

/**
 * Runs the streaming parser and collects what is needed. Attachment content is counted and
 * discarded, never buffered. A parser error ends the parse with whatever was collected so far.
 */
function parseMime(raw: Buffer): Promise<ParsedMime> {
  return new Promise((resolve) => {
    const result: ParsedMime = { headers: new Map(), headerLines: [], attachments: [] };
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const parser = new MailParser({
      skipHtmlToText: true, // HTML is converted here, only when there is no text part
      skipImageLinks: true,
      skipTextToHtml: true,
      skipTextLinks: true,
      checksumAlgo: false,
    });
    parser.on('headers', (headers) => {
      result.headers = headers;
      result.headerLines = parser.headerLines || [];
    });
    parser.on('data', (data) => {
      if (data.type === 'text') {
        if (typeof data.text === 'string') result.text = data.text;
        if (typeof data.html === 'string') result.html = data.html;
        return;
      }
      const attachment: MessageAttachment = {
        filename: data.filename ? cleanHeaderText(decodeIso2022jp(data.filename)) || null : null,
        contentType: data.contentType || 'application/octet-stream',
        size: 0,
      };
      result.attachments.push(attachment);
      const release = () => {
        if (data.release) data.release();
      };
      data.content.on('data', (chunk: Buffer) => {
        attachment.size += chunk.length;
      });
      data.content.once('end', release);
      data.content.once('error', release);
    });
    parser.once('error', finish);
    parser.once('end', finish);
    parser.once('close', finish);
    try {
      parser.end(raw);
    } catch {
      finish();
    }
  });
}

/** Header text for storage: control characters dropped (PostgreSQL text cannot hold NUL), spaces collapsed. */
function cleanHeaderText(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000e-\u001f\u007f]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The unparsed values of every `key` header, unfolded, as the bytes the message carried. */
function rawHeaderValues(lines: HeaderLines, key: string): Buffer[] {
  return lines
    .filter((l) => l.key === key)
    .map((l) => Buffer.from(l.line.slice(l.line.indexOf(':') + 1).replace(/\r?\n(?=[ \t])/g, '').trim(), 'latin1'));
}

/**
 * True when a raw header value is 8-bit but not UTF-8: legacy mailers put raw Shift_JIS or EUC-JP
 * into headers instead of RFC 2047 encoded words, and the parser reads those as UTF-8 (U+FFFD).
 * Raw UTF-8 (RFC 6532) is decoded correctly by the parser already.
 */
function isUnlabelled8bit(bytes: Buffer): boolean {
  return bytes.some((b) => b >= 0x80) && !isUtf8(bytes);
}

function isMultipart(parsed: ParsedMime): boolean {
  const contentType = parsed.headers.get('content-type') as { value?: string } | undefined;
  return typeof contentType?.value === 'string' && contentType.value.toLowerCase().startsWith('multipart/');
}

function subjectOf(parsed: ParsedMime): string | null {
  const raw = rawHeaderValues(parsed.headerLines, 'subject')[0];
  const decoded = parsed.headers.get('subject');
  let subject: string | null = typeof decoded === 'string' ? decoded : null;
  if (raw && isUnlabelled8bit(raw)) subject = decodeUnlabelled(raw);
  // Raw ISO-2022-JP (7-bit, so it passes the parser unchanged) is decoded here.
  return subject === null ? null : cleanHeaderText(decodeIso2022jp(subject));
}

function flattenAddresses(list: EmailAddress[], out: string[]): void {
  for (const entry of list) {
    if (entry.group) {
      // RFC 5322 §3.4 groups: the members count, the group's display name does not.
      flattenAddresses(entry.group, out);
      continue;
    }
    const name = cleanHeaderText(decodeIso2022jp(entry.name ?? ''));
    const address = cleanHeaderText(entry.address ?? '');
    if (address && name && name !== address) out.push(`${name} <${address}>`);
    else if (address || name) out.push(address || name);
  }
}

function addressesOf(parsed: ParsedMime, key: 'from' | 'to' | 'cc'): string[] {
  const raws = rawHeaderValues(parsed.headerLines, key);
  let objects: AddressObject[];
  if (raws.some(isUnlabelled8bit)) {
    objects = [parseAddressHeader(raws.map((r) => decodeUnlabelled(r)))];
  } else {
    const value = parsed.headers.get(key) as AddressObject | AddressObject[] | undefined;
    objects = value === undefined ? [] : Array.isArray(value) ? value : [value];
  }
  const out: string[] = [];
  for (const object of objects) flattenAddresses(object?.value ?? [], out);
  return out;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
/** RFC 5322 §4.3 obsolete zone names; military letters are treated as -0000 as that section says. */
const ZONES: Record<string, number> = { ut: 0, gmt: 0, z: 0, edt: -4, est: -5, cdt: -5, cst: -6, mdt: -6, mst: -7, pdt: -7, pst: -8 };

/**
 * Parses an RFC 5322 §3.3 date-time (with the §4.3 obsolete forms: two-digit years, zone names,
 * comments). Returns null rather than guessing when it does not match — the parser library would
 * return the current time instead, which would misdate the message.
 */
export function parseDateHeader(value: string): number | null {
  const text = value.replace(/\([^()]*\)/g, ' ').replace(/\s+/g, ' ').trim();
  const m = /^(?:[a-z]{3,9},? ?)?(\d{1,2}) ?([a-z]{3})[a-z]* ?(\d{2,4}) (\d{1,2}):(\d{2})(?::(\d{2}))? ?([+-]\d{4}|[a-z]{1,5})?\b/i.exec(text);
  if (m) {
    const [, dd, mon, yy, hh, mi, ss, zone] = m;
    const month = MONTHS.indexOf(mon.toLowerCase());
    let year = Number(yy);
    // RFC 5322 §4.3: two-digit years 00–49 are 20xx, 50–99 are 19xx; three-digit years add 1900.
    if (yy.length === 2) year += year < 50 ? 2000 : 1900;
    else if (yy.length === 3) year += 1900;
    const day = Number(dd);
    const hour = Number(hh);
    const minute = Number(mi);
    const second = Math.min(Number(ss ?? 0), 59); // leap second 60 → 59
    if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59) return null;
    let offsetMinutes = 0;
    if (zone && /^[+-]\d{4}$/.test(zone)) {
      const sign = zone[0] === '-' ? -1 : 1;
      offsetMinutes = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5)));
    } else if (zone) {
      offsetMinutes = (ZONES[zone.toLowerCase()] ?? 0) * 60;
    }
    return Date.UTC(year, month, day, hour, minute, second) - offsetMinutes * 60_000;
  }
  // Not RFC 5322, but some generators write ISO 8601; accept only the full date-time form.
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(text)) {
    const ms = Date.parse(text.replace(' ', 'T'));
    return Number.isFinite(ms) ? ms : null;
  }
  return null;
}

/**
 * Text of a multipart message whose parts could not be found (the declared boundary never occurs):
 * the whole body as text, minus lines that look like boundaries or part headers, so the words in
 * it stay searchable.
 */
function salvageBrokenMultipart(raw: Buffer): string {
  const split = splitHeaderBlock(raw);
  if (!split) return '';
  const body = raw.subarray(split.bodyStart, split.bodyStart + BODY_TEXT_MAX_BYTES);
  return decodeIso2022jp(decodeUnlabelled(body))
    .split(/\r?\n/)
    .filter((line) => !/^--[!-~]+$/.test(line.trim()) && !/^content-[a-z-]+:/i.test(line))
    .join('\n');
}

function bodyTextOf(parsed: ParsedMime, raw: Buffer): string {
  let text = '';
  if (parsed.text !== undefined && parsed.text.trim() !== '') text = decodeIso2022jp(parsed.text);
  else if (parsed.html !== undefined) text = htmlToText(parsed.html, BODY_TEXT_MAX_BYTES);
  else if (parsed.attachments.length === 0 && isMultipart(parsed)) text = salvageBrokenMultipart(raw);
  // NUL cannot be stored in PostgreSQL text; other controls are harmless and kept.
  return cutUtf8(text.replace(/\u0000/g, '').trim(), BODY_TEXT_MAX_BYTES);
}

/**
 * Extracts the stored metadata of a raw RFC 5322 message. Never throws on malformed input: missing
 * headers, broken MIME boundaries and non-mail bytes give whatever fields could be read.
 */
export async function extractMessageMeta(raw: Buffer, opts: ExtractOptions = {}): Promise<MessageMeta> {
  const previewBytes = clampPreviewBytes(opts.previewBytes);
  let parsed: ParsedMime;
  try {
    parsed = await parseMime(labelUnlabelledBody(raw));
  } catch {
    parsed = { headers: new Map(), headerLines: [], attachments: [] };
  }
  const messageId = parsed.headers.get('message-id');
  const dateRaw = rawHeaderValues(parsed.headerLines, 'date')[0];
  const bodyText = bodyTextOf(parsed, raw);
  const from = addressesOf(parsed, 'from');
  return {
    messageIdHeader: typeof messageId === 'string' ? cleanHeaderText(messageId) || null : null,
    subject: subjectOf(parsed),
    from: from[0] ?? null,
    to: addressesOf(parsed, 'to'),
    cc: addressesOf(parsed, 'cc'),
    date: dateRaw ? parseDateHeader(dateRaw.toString('latin1')) : null,
    preview: makePreview(bodyText, previewBytes),
    bodyText,
    hasAttachments: parsed.attachments.length > 0,
    attachments: parsed.attachments,
  };
}
