/**
 * A small MIME walker over a message sample, for the built-in spam rules: the top-level header
 * fields, and every leaf part the sample reaches with its type, charset, transfer encoding,
 * file names and (still encoded) body bytes.
 *
 * Pure and never throws. It reads a possibly truncated message (the sample ends where it ends)
 * and malformed input as far as it makes sense; nesting and part count are bounded. Header values
 * are decoded the way mail clients show them: raw UTF-8 (RFC 6532) or sniffed legacy Japanese
 * charsets, RFC 2047 encoded words, RFC 2231 parameter values (libmime).
 */
import { isUtf8 } from 'node:buffer';
import libmime from 'libmime';
import { decodeBytes, decodeIso2022jp, decodeQuotedPrintable, decodeUnlabelled, splitHeaderBlock } from '../mail/charset.js';

/** Nesting of multiparts and attached messages followed (RFC 2046 sets no limit; spam does). */
export const MAX_DEPTH = 10;
/** Leaf parts collected; the rest of a huge multipart is not examined. */
export const MAX_PARTS = 200;
/** Header fields kept per entity. */
export const MAX_FIELDS = 1000;

export interface HeaderField {
  /** Lower-case field name. */
  name: string;
  /** Unfolded value as text (charset of raw 8-bit bytes sniffed); encoded words not yet decoded. */
  value: string;
}

export interface SampledPart {
  /** Lower-case `type/subtype` (RFC 2045 §5.2 default `text/plain`). */
  contentType: string;
  charset: string | null;
  /** Lower-case Content-Transfer-Encoding (default `7bit`). */
  transferEncoding: string;
  /** `attachment` or `inline` from Content-Disposition, lower-case; null when absent. */
  disposition: string | null;
  /** Decoded file names: Content-Disposition `filename` and Content-Type `name`. */
  filenames: string[];
  /** Body bytes as in the message (transfer encoding not undone). */
  body: Buffer;
}

export interface MessageSample {
  headers: HeaderField[];
  /** Leaf parts in message order (a single-part message has one). */
  parts: SampledPart[];
  /** The sample ends before the message does. */
  truncated: boolean;
  /** The whole top-level header is in the sample (a missing field is really missing). */
  headerComplete: boolean;
}

/** Header bytes as text: UTF-8 when valid (RFC 6532), else sniffed (raw Shift_JIS, ISO-2022-JP…). */
function headerText(latin1: string): string {
  if (!/[\x80-\xff\x1b]/.test(latin1)) return latin1;
  const bytes = Buffer.from(latin1, 'latin1');
  return isUtf8(bytes) && !latin1.includes('\x1b') ? bytes.toString('utf8') : decodeUnlabelled(bytes);
}

/** RFC 5322 §2.2: fields are `name: value`, continued on lines that start with WSP (§2.2.3). */
export function parseHeaderFields(block: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  const lines = block.toString('latin1').split(/\r?\n/);
  let current: { name: string; raw: string } | null = null;
  const flush = () => {
    if (current && fields.length < MAX_FIELDS) fields.push({ name: current.name, value: headerText(current.raw).trim() });
    current = null;
  };
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      if (current) current.raw += line;
      continue;
    }
    flush();
    const m = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:(.*)$/.exec(line);
    if (m) current = { name: m[1].toLowerCase(), raw: m[2] };
  }
  flush();
  return fields;
}

export function headerValue(fields: HeaderField[], name: string): string | null {
  return fields.find((f) => f.name === name)?.value ?? null;
}

/** A header value as a reader sees it: RFC 2047 encoded words and raw ISO-2022-JP decoded. */
export function decodeHeaderText(value: string): string {
  let text = value;
  try {
    text = libmime.decodeWords(value);
  } catch {
    // A malformed encoded word stays as it is.
  }
  return decodeIso2022jp(text);
}

interface Structured {
  value: string;
  params: Record<string, string>;
}

function structured(value: string | null): Structured | null {
  if (value === null) return null;
  try {
    const parsed = libmime.parseHeaderValue(value);
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(parsed.params ?? {})) if (typeof v === 'string') params[k.toLowerCase()] = v;
    return { value: String(parsed.value ?? '').trim().toLowerCase(), params };
  } catch {
    return null;
  }
}

function entity(fields: HeaderField[], body: Buffer, defaultType: string): SampledPart {
  const ct = structured(headerValue(fields, 'content-type'));
  const cd = structured(headerValue(fields, 'content-disposition'));
  const filenames: string[] = [];
  // RFC 2231 values arrive decoded from libmime; RFC 2047 words inside a quoted name are not
  // standard (RFC 2047 §5) but what many mailers send, so they are decoded too.
  for (const raw of [cd?.params.filename, ct?.params.name]) {
    if (raw) filenames.push(decodeHeaderText(raw));
  }
  const type = ct && /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(ct.value) ? ct.value : defaultType;
  return {
    contentType: type,
    charset: ct?.params.charset ?? null,
    transferEncoding: (headerValue(fields, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase(),
    disposition: cd?.value || null,
    filenames,
    body,
  };
}

/**
 * The body parts of a multipart body (RFC 2046 §5.1.1): delimiter lines are `--boundary`,
 * possibly followed by transport padding; `--boundary--` closes. The CRLF before a delimiter
 * belongs to the delimiter. A truncated sample yields the parts it reaches, the last one cut.
 */
export function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const text = body.toString('latin1');
  const delimiter = `--${boundary}`;
  const parts: Buffer[] = [];
  let start = -1;
  let pos = 0;
  while (pos <= text.length) {
    const lineEnd = text.indexOf('\n', pos);
    const end = lineEnd < 0 ? text.length : lineEnd;
    const line = text.slice(pos, end).replace(/\r$/, '');
    if (line.startsWith(delimiter)) {
      const rest = line.slice(delimiter.length);
      const close = rest.startsWith('--');
      if (close || /^[ \t]*$/.test(rest)) {
        if (start >= 0) {
          const partEnd = pos >= 2 && text[pos - 2] === '\r' ? pos - 2 : Math.max(start, pos - 1);
          parts.push(Buffer.from(text.slice(start, Math.max(start, partEnd)), 'latin1'));
        }
        if (close || parts.length >= MAX_PARTS) return parts;
        start = lineEnd < 0 ? text.length : lineEnd + 1;
      }
    }
    if (lineEnd < 0) break;
    pos = lineEnd + 1;
  }
  if (start >= 0 && start < text.length) parts.push(Buffer.from(text.slice(start), 'latin1'));
  return parts;
}

function walk(bytes: Buffer, depth: number, defaultType: string, out: SampledPart[]): HeaderField[] {
  const split = splitHeaderBlock(bytes);
  // No empty line: all header (a sample cut inside the header, or a message without a body).
  const fields = parseHeaderFields(split ? bytes.subarray(0, split.headerEnd) : bytes);
  const body = split ? bytes.subarray(split.bodyStart) : Buffer.alloc(0);
  const part = entity(fields, body, defaultType);
  const boundary = structured(headerValue(fields, 'content-type'))?.params.boundary;

  if (part.contentType.startsWith('multipart/') && boundary && depth < MAX_DEPTH) {
    // RFC 2046 §5.1.5: in multipart/digest the default part type is message/rfc822.
    const childDefault = part.contentType === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    for (const child of splitMultipart(body, boundary)) {
      if (out.length >= MAX_PARTS) break;
      walk(child, depth + 1, childDefault, out);
    }
  } else if (part.contentType === 'message/rfc822' && part.transferEncoding !== 'base64' && part.filenames.length === 0 && depth < MAX_DEPTH) {
    // An attached message's own parts are looked at too (its attachments are attachments).
    walk(body, depth + 1, 'text/plain', out);
  } else if (out.length < MAX_PARTS) {
    out.push(part);
  }
  return fields;
}

export function parseMessageSample(bytes: Buffer, truncated: boolean): MessageSample {
  const parts: SampledPart[] = [];
  const headers = walk(bytes, 0, 'text/plain', parts);
  return { headers, parts, truncated, headerComplete: !truncated || splitHeaderBlock(bytes) !== null };
}

/** A text part's content as text: transfer encoding undone (RFC 2045 §6), charset decoded. */
export function partText(part: SampledPart): string {
  let bytes = part.body;
  if (part.transferEncoding === 'base64') bytes = Buffer.from(bytes.toString('latin1').replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
  else if (part.transferEncoding === 'quoted-printable') bytes = decodeQuotedPrintable(bytes);
  return part.charset ? decodeBytes(bytes, part.charset) : decodeUnlabelled(bytes);
}
