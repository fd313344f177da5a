/**
 * The parsed view of a stored message for readers (REST `GET /messages/:id`, the web UI): its text
 * and HTML bodies decoded to UTF-8, the list of attachments, and single parts streamed decoded.
 *
 * Built from the MIME structure with byte offsets (src/mail/mime, stored as `messages.structure_json`
 * when the message arrived over SMTP) so only the bytes that are needed are read from the blob: the
 * top-level header block and the two body parts, each capped. A message without a stored structure
 * (appended over IMAP or the API) is parsed once on the fly, in one streaming pass with bounded memory.
 *
 * Decoding: Content-Transfer-Encoding base64 and quoted-printable (RFC 2045 §6.7, §6.8), then the
 * part's charset (RFC 2046 §4.1.2); unlabelled or mislabelled legacy Japanese (ISO-2022-JP,
 * Shift_JIS, EUC-JP) is sniffed and repaired as src/mail/charset.ts does for the text index.
 */
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { decodeBytes, decodeIso2022jp, decodeQuotedPrintable, sniffCharset } from './charset.js';
import { cutUtf8 } from './preview.js';
import { findPart, headerFieldsOf, MimeStructureParser, type MimePart, type MimeStructure } from './mime/index.js';

/** Default cap on each decoded body (UTF-8 bytes) in the view; the rest is reported as `truncated`. */
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;
/** Top-level header bytes read for In-Reply-To / References (RFC 5322 allows no size, we do). */
const MAX_HEADER_READ = 256 * 1024;
/** Message ids kept from References (a long thread's list is cut, newest ids kept). */
export const MAX_REFERENCES = 100;

export interface BodyText {
  content: string;
  /** The decoded body was longer than the cap and was cut (on a UTF-8 character boundary). */
  truncated: boolean;
  /** The charset the bytes were decoded from (the label, or what sniffing found when unlabelled). */
  charset: string;
}

export interface AttachmentInfo {
  /** IMAP part specifier (RFC 9051 §6.4.5): what `openPart` takes. */
  partId: string;
  filename: string | null;
  /** `type/subtype`, lower case. */
  contentType: string;
  /** Decoded size in bytes; estimated from the encoded length for base64 and quoted-printable. */
  size: number;
  /** Content-Disposition type (`attachment`, `inline`) or null when the part has none. */
  disposition: string | null;
  /** Content-ID without its angle brackets (what `cid:` URLs in the HTML refer to), or null. */
  contentId: string | null;
}

export interface MessageView {
  inReplyTo: string | null;
  references: string[];
  text: BodyText | null;
  html: BodyText | null;
  attachments: AttachmentInfo[];
}

export interface ViewOptions {
  /** Cap per body in UTF-8 bytes (default 256 KiB). */
  maxBodyBytes?: number;
}

export type OpenBlob = () => Promise<Readable>;

export class PartNotFoundError extends Error {
  readonly code = 'PART_NOT_FOUND';
  constructor(readonly partId: string) {
    super(`no such MIME part: ${partId.slice(0, 40)}`);
    this.name = 'PartNotFoundError';
  }
}

// ── Structure ────────────────────────────────────────────────────────────────────────────────────

function looksLikePart(v: unknown): v is MimePart {
  const p = v as MimePart;
  return (
    typeof p === 'object' && p !== null && typeof p.part === 'string' &&
    [p.headerStart, p.headerEnd, p.bodyStart, p.bodyEnd].every((n) => Number.isSafeInteger(n) && n >= 0) &&
    typeof p.contentType?.type === 'string' && Array.isArray(p.children)
  );
}

/** The stored structure, or null when absent or not a structure (then the blob is parsed instead). */
export function parseStoredStructure(json: string | null): MimeStructure | null {
  if (!json) return null;
  try {
    const v = JSON.parse(json) as MimeStructure;
    return looksLikePart(v?.root) ? v : null;
  } catch {
    return null;
  }
}

/** The structure from `structure_json`, else parsed from the blob in one pass (bounded memory). */
export async function loadStructure(structureJson: string | null, open: OpenBlob): Promise<MimeStructure> {
  const stored = parseStoredStructure(structureJson);
  if (stored) return stored;
  const parser = new MimeStructureParser();
  for await (const chunk of await open()) parser.write(chunk as Buffer);
  return parser.end();
}

// ── Which parts are bodies and which are attachments ─────────────────────────────────────────────

export interface PartPlan {
  text: MimePart | null;
  html: MimePart | null;
  attachments: MimePart[];
}

/** The part specifier a client uses for `part`: a non-multipart top-level body is '1' (RFC 9051 §6.4.5). */
export function partIdOf(part: MimePart): string {
  return part.part === '' ? '1' : part.part;
}

function isBodyCandidate(part: MimePart, subtype: 'plain' | 'html'): boolean {
  return (
    part.contentType.type === 'text' &&
    part.contentType.subtype === subtype &&
    part.disposition?.type !== 'attachment' &&
    part.filename === null
  );
}

/**
 * The first inline text/plain and text/html leaves (depth first, in document order: in a
 * multipart/alternative these are the two alternatives) are the bodies; every other leaf is an
 * attachment, an encapsulated message (message/rfc822) being one attachment as a whole.
 */
export function planParts(root: MimePart): PartPlan {
  const plan: PartPlan = { text: null, html: null, attachments: [] };
  const visit = (part: MimePart) => {
    if (part.message === null && part.contentType.type === 'multipart' && part.children.length > 0) {
      for (const child of part.children) visit(child);
      return;
    }
    if (part.message === null && plan.text === null && isBodyCandidate(part, 'plain')) plan.text = part;
    else if (part.message === null && plan.html === null && isBodyCandidate(part, 'html')) plan.html = part;
    else plan.attachments.push(part);
  };
  visit(root);
  return plan;
}

/** Decoded size of a part's body; estimated for base64 (line breaks of `eolBytes` each) and quoted-printable. */
export function estimateDecodedSize(part: MimePart, eolBytes = 2): number {
  const encoded = Math.max(0, part.bodyEnd - part.bodyStart);
  if (part.encoding === 'base64') return Math.floor(Math.max(0, encoded - part.bodyLines * eolBytes) * 3 / 4);
  return encoded;
}

function contentIdOf(part: MimePart): string | null {
  if (!part.id) return null;
  const id = part.id.trim().replace(/^<(.*)>$/, '$1').trim();
  return id === '' ? null : id;
}

export function attachmentInfo(part: MimePart, eolBytes = 2): AttachmentInfo {
  return {
    partId: partIdOf(part),
    filename: part.filename,
    contentType: `${part.contentType.type}/${part.contentType.subtype}`,
    size: estimateDecodedSize(part, eolBytes),
    disposition: part.disposition?.type ?? null,
    contentId: contentIdOf(part),
  };
}

// ── Decoding ─────────────────────────────────────────────────────────────────────────────────────

/** Undoes the Content-Transfer-Encoding (RFC 2045 §6); 7bit/8bit/binary and unknown ones are identity. */
export function decodeTransfer(encoding: string, bytes: Buffer): Buffer {
  if (encoding === 'base64') return Buffer.from(bytes.toString('latin1'), 'base64');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(bytes);
  return bytes;
}

/** Text of decoded body bytes in the part's charset; unlabelled (or us-ascii labelled 8-bit) bytes are sniffed. */
export function decodeCharset(bytes: Buffer, label: string | undefined): { text: string; charset: string } {
  const charset = label?.trim().toLowerCase();
  if (!charset || (/^(us-?ascii|ascii)$/.test(charset) && bytes.some((b) => b >= 0x80 || b === 0x1b))) {
    const sniffed = sniffCharset(bytes);
    return { text: decodeBytes(bytes, sniffed), charset: sniffed.toLowerCase() };
  }
  // A labelled part may still carry raw ISO-2022-JP runs (mislabelled mail); decodeIso2022jp only acts on ESC.
  return { text: decodeIso2022jp(decodeBytes(bytes, charset)), charset };
}

/**
 * Decodes one body part's encoded bytes into text capped at `maxBytes` UTF-8 bytes. `cut` says the
 * encoded bytes given are only the beginning of the body (then the result is truncated in any case).
 */
export function decodeBody(part: MimePart, encoded: Buffer, maxBytes: number, cut = false): BodyText {
  const decoded = decodeTransfer(part.encoding, encoded);
  const { text, charset } = decodeCharset(decoded, part.contentType.params?.charset);
  const clean = text.replaceAll('\u0000', '');
  const content = cutUtf8(clean, maxBytes);
  return { content, truncated: cut || content.length < clean.length, charset };
}

/**
 * Encoded bytes to read for a body capped at `maxBytes` decoded: quoted-printable can take 3 bytes
 * (=XX) plus soft line breaks per decoded byte, base64 4 per 3; 4× covers both, so a body read only
 * partly still decodes to more than the cap and the cut falls in the cap, not in a broken escape.
 */
function encodedBudget(maxBytes: number): number {
  return maxBytes * 4 + 1024;
}

// ── Reading from the blob ────────────────────────────────────────────────────────────────────────

export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The bytes of each range (end exclusive) from one pass over `stream`; the stream is closed as soon
 * as the last range is complete, so nothing after it is read.
 */
export async function readRanges(stream: Readable, ranges: readonly ByteRange[]): Promise<Buffer[]> {
  const parts: Buffer[][] = ranges.map(() => []);
  const last = ranges.reduce((m, r) => Math.max(m, r.end), 0);
  let pos = 0;
  if (last > 0) {
    for await (const raw of stream) {
      const chunk = raw as Buffer;
      const chunkEnd = pos + chunk.length;
      ranges.forEach((r, i) => {
        const from = Math.max(r.start, pos);
        const to = Math.min(r.end, chunkEnd);
        if (to > from) parts[i].push(chunk.subarray(from - pos, to - pos));
      });
      pos = chunkEnd;
      if (pos >= last) break; // ends the iteration, which destroys the stream
    }
  }
  stream.destroy();
  return parts.map((p) => Buffer.concat(p));
}

function msgIds(value: string): string[] {
  return value.match(/<[^<>\s]{1,998}>/g) ?? [];
}

/** In-Reply-To (the first id) and References (RFC 5322 §3.6.4) from a top-level header block. */
export function threadHeaders(header: Buffer): { inReplyTo: string | null; references: string[] } {
  const fields = headerFieldsOf(header, { headerStart: 0, headerEnd: header.length } as MimePart, header.length);
  const first = (name: string) => fields.find((f) => f.name.toLowerCase() === name)?.value ?? '';
  const references = msgIds(first('references'));
  return { inReplyTo: msgIds(first('in-reply-to'))[0] ?? null, references: references.slice(-MAX_REFERENCES) };
}

/** The message's view: thread headers, decoded bodies (capped) and the attachment list. */
export async function readMessageView(structure: MimeStructure, open: OpenBlob, opts: ViewOptions = {}): Promise<MessageView> {
  const maxBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const root = structure.root;
  const plan = planParts(root);
  const budget = encodedBudget(maxBytes);
  const bodyRange = (p: MimePart): ByteRange => ({ start: p.bodyStart, end: Math.min(p.bodyEnd, p.bodyStart + budget) });
  const ranges: ByteRange[] = [{ start: root.headerStart, end: Math.min(root.headerEnd, root.headerStart + MAX_HEADER_READ) }];
  if (plan.text) ranges.push(bodyRange(plan.text));
  if (plan.html) ranges.push(bodyRange(plan.html));
  const [header, ...bodies] = await readRanges(await open(), ranges);
  const eolBytes = header.includes('\r\n') ? 2 : 1;
  const decode = (p: MimePart | null): BodyText | null => {
    if (!p) return null;
    const bytes = bodies.shift()!;
    return decodeBody(p, bytes, maxBytes, p.bodyEnd - p.bodyStart > bytes.length);
  };
  const text = decode(plan.text);
  const html = decode(plan.html);
  return { ...threadHeaders(header), text, html, attachments: plan.attachments.map((p) => attachmentInfo(p, eolBytes)) };
}

// ── Streaming one part, decoded ──────────────────────────────────────────────────────────────────

/** Passes through only bytes [start, end) of the source, closing the source once past `end`. */
export function sliceStream(source: Readable, start: number, end: number): Readable {
  async function* slice() {
    let pos = 0;
    try {
      for await (const raw of source) {
        const chunk = raw as Buffer;
        const chunkEnd = pos + chunk.length;
        const from = Math.max(start, pos);
        const to = Math.min(end, chunkEnd);
        if (to > from) yield chunk.subarray(from - pos, to - pos);
        pos = chunkEnd;
        if (pos >= end) break;
      }
    } finally {
      source.destroy();
    }
  }
  return Readable.from(slice(), { objectMode: false });
}

/** Byte → is it a base64 alphabet character or '=' padding (RFC 2045 §6.8 table 1). */
const BASE64_BYTE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=') BASE64_BYTE[c.charCodeAt(0)] = 1;

/**
 * Streaming base64 decoder: line breaks and other characters outside the alphabet are skipped
 * (RFC 2045 §6.8 says to ignore them); an incomplete 4-character quantum is kept for the next chunk.
 */
export class Base64DecodeStream extends Transform {
  private carry: Buffer = Buffer.alloc(0);

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const chars = Buffer.allocUnsafe(this.carry.length + chunk.length);
    this.carry.copy(chars, 0);
    let n = this.carry.length;
    for (let i = 0; i < chunk.length; i++) if (BASE64_BYTE[chunk[i]]) chars[n++] = chunk[i];
    const whole = n - (n % 4);
    this.carry = Buffer.from(chars.subarray(whole, n));
    if (whole > 0) this.push(Buffer.from(chars.toString('latin1', 0, whole), 'base64'));
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.carry.length > 0) this.push(Buffer.from(this.carry.toString('latin1'), 'base64'));
    done();
  }
}

/**
 * Streaming quoted-printable decoder (RFC 2045 §6.7). A chunk is decoded up to the last `=` whose
 * escape or soft line break may continue in the next chunk; that tail (at most a few bytes plus
 * transport padding, bounded) is kept for the next chunk.
 */
export class QuotedPrintableDecodeStream extends Transform {
  private pending: Buffer = Buffer.alloc(0);

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const keep = QuotedPrintableDecodeStream.incompleteTail(data);
    this.pending = Buffer.from(data.subarray(data.length - keep));
    const ready = data.subarray(0, data.length - keep);
    if (ready.length > 0) this.push(decodeQuotedPrintable(ready));
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.pending.length > 0) this.push(decodeQuotedPrintable(this.pending));
    done();
  }

  /** Bytes at the end of `data` that may be the start of an `=XX` escape or a `=[ \t]*\r?\n` soft break. */
  static incompleteTail(data: Buffer): number {
    // Transport padding between '=' and the line break is bounded: beyond 1 KiB it is not a soft break.
    const from = Math.max(0, data.length - 1024);
    const eq = data.lastIndexOf(0x3d, data.length - 1);
    if (eq < from) return 0;
    const after = data.subarray(eq + 1);
    if (after.length < 2 && /^[0-9A-Fa-f]?$/.test(after.toString('latin1'))) return data.length - eq;
    if (/^[ \t]*\r?$/.test(after.toString('latin1'))) return data.length - eq;
    return 0;
  }
}

/** A decoder for a part's transfer encoding, or null when the bytes are the content as they are. */
export function transferDecoder(encoding: string): Transform | null {
  if (encoding === 'base64') return new Base64DecodeStream();
  if (encoding === 'quoted-printable') return new QuotedPrintableDecodeStream();
  return null;
}

/**
 * One leaf part (an attachment, a body, an encapsulated message) streamed with its transfer
 * encoding undone. Throws PartNotFoundError for a specifier that names no part, or a multipart
 * container (which has no content of its own).
 */
export async function openPart(
  structure: MimeStructure,
  partId: string,
  open: OpenBlob,
): Promise<{ info: AttachmentInfo; charset: string | undefined; stream: Readable }> {
  const part = findPart(structure.root, partId);
  if (!part || partId === '' || (part.message === null && part.contentType.type === 'multipart' && part.children.length > 0)) {
    throw new PartNotFoundError(partId);
  }
  const info = attachmentInfo(part);
  const charset = part.contentType.params?.charset;
  const raw = sliceStream(await open(), part.bodyStart, part.bodyEnd);
  const decoder = transferDecoder(part.encoding);
  if (!decoder) return { info, charset, stream: raw };
  // pipeline, not pipe: a reader that goes away (destroying the decoder) closes the blob stream
  // too, and a blob read error reaches the reader. Errors surface on `decoder` itself.
  pipeline(raw, decoder, () => {});
  return { info, charset, stream: decoder };
}
