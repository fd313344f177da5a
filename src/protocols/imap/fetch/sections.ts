/**
 * The bytes of BODY[section]<partial> (RFC 9051 §6.4.5) and BINARY[part]<partial> (RFC 3516) of a
 * stored message, located with the MIME structure's byte offsets.
 *
 * Section bodies are byte ranges of the blob, streamed (a 50 MB attachment is never held in
 * memory), except HEADER.FIELDS[.NOT], which is built from the header lines and is as small as the
 * header. BINARY content is decoded from its Content-Transfer-Encoding.
 */
import { Readable } from 'node:stream';
import { findPart, type MimePart } from '../../../mail/mime/index.js';
import { transferDecoder } from '../../../mail/parts.js';
import type { Partial, SectionSpec } from '../parser/types.js';
import { HeaderFieldFilter } from './header-filter.js';
import type { MessageContent } from './message-content.js';

/** A section's bytes: their exact size (for the literal header) and a way to stream them. */
export type SectionBody = { size: number; open(): Promise<Readable> };

/** BINARY of a part whose transfer encoding is not known: `NO [UNKNOWN-CTE]` (RFC 3516 §4.3). */
export class UnknownCteError extends Error {
  constructor(readonly encoding: string) {
    super(`unknown Content-Transfer-Encoding ${JSON.stringify(encoding.slice(0, 40))}`);
    this.name = 'UnknownCteError';
  }
}

/** The section names a part the message does not have (or HEADER/TEXT of a part that is no message). */
export class NoSuchPartError extends Error {
  constructor(readonly part: number[], readonly text?: string) {
    super(`no such section ${[...part, ...(text ? [text] : [])].join('.') || '(whole message)'}`);
    this.name = 'NoSuchPartError';
  }
}

/** Encodings whose bytes are the content as they are (RFC 2045 §6.2); '' stands for no header at all. */
const IDENTITY = new Set(['7bit', '8bit', 'binary', '']);

function partOf(content: MessageContent, part: number[], text?: string): MimePart {
  if (part.length === 0) return content.structure.root;
  const found = findPart(content.structure.root, part.join('.'));
  if (!found) throw new NoSuchPartError(part, text);
  return found;
}

/**
 * The message a HEADER/TEXT/HEADER.FIELDS section refers to: the whole message, or the message
 * encapsulated in a message/rfc822 (or message/global) part (RFC 9051 §6.4.5).
 */
function messageOf(content: MessageContent, section: SectionSpec): MimePart {
  if (section.part.length === 0) return content.structure.root;
  const part = partOf(content, section.part, section.text);
  if (part.message === null) throw new NoSuchPartError(section.part, section.text);
  return part.message;
}

/** [start, end) of the section in the message, before the partial is applied. */
function sectionRange(content: MessageContent, section: SectionSpec): { start: number; end: number } {
  switch (section.text) {
    case undefined: {
      if (section.part.length === 0) return { start: 0, end: content.size };
      // A part's body; for a non-multipart message part '1' is its body (findPart).
      const part = partOf(content, section.part);
      return { start: part.bodyStart, end: part.bodyEnd };
    }
    case 'MIME': {
      // MIME is only defined after a part number: the part's own MIME header (RFC 9051 §6.4.5).
      if (section.part.length === 0) throw new NoSuchPartError(section.part, 'MIME');
      const part = partOf(content, section.part, 'MIME');
      return { start: part.headerStart, end: part.headerEnd };
    }
    case 'HEADER': {
      const message = messageOf(content, section);
      return { start: message.headerStart, end: message.headerEnd };
    }
    case 'TEXT': {
      const message = messageOf(content, section);
      return { start: message.bodyStart, end: message.bodyEnd };
    }
    default: {
      const message = messageOf(content, section);
      return { start: message.headerStart, end: message.headerEnd };
    }
  }
}

/** Bytes of a `<start.length>` partial within a section of `size` bytes: a start past the end is empty. */
export function partialWindow(size: number, partial?: Partial): { offset: number; length: number } {
  if (!partial) return { offset: 0, length: size };
  if (partial.start >= size) return { offset: size, length: 0 };
  return { offset: partial.start, length: Math.max(0, Math.min(partial.length, size - partial.start)) };
}

function fromMemory(bytes: Buffer): SectionBody {
  return { size: bytes.length, open: async () => Readable.from(bytes.length > 0 ? [bytes] : []) };
}

async function filteredHeader(content: MessageContent, range: { start: number; end: number }, fields: string[], not: boolean): Promise<Buffer> {
  const filter = new HeaderFieldFilter(fields, not);
  const stream = await content.open(range.start, range.end);
  try {
    for await (const chunk of stream) {
      filter.write(chunk as Buffer);
      if (filter.done) break;
    }
  } finally {
    stream.destroy();
  }
  return filter.end();
}

/**
 * BODY[section]<partial>: the size and a stream of the bytes. Throws NoSuchPartError for a part
 * the message does not have.
 */
export async function fetchSection(content: MessageContent, section: SectionSpec, partial?: Partial): Promise<SectionBody> {
  const range = sectionRange(content, section);
  if (section.text === 'HEADER.FIELDS' || section.text === 'HEADER.FIELDS.NOT') {
    const bytes = await filteredHeader(content, range, section.fields ?? [], section.text === 'HEADER.FIELDS.NOT');
    const w = partialWindow(bytes.length, partial);
    return fromMemory(bytes.subarray(w.offset, w.offset + w.length));
  }
  const size = Math.max(0, Math.min(range.end, content.size) - range.start);
  const w = partialWindow(size, partial);
  const start = range.start + w.offset;
  return { size: w.length, open: () => content.open(start, start + w.length) };
}

// ── BINARY (RFC 3516) ────────────────────────────────────────────────────────────────────────────

/** The part BINARY names and how its body is stored. `[]` is the whole message, sent as it is. */
function binaryPart(content: MessageContent, part: number[]): { start: number; end: number; encoding: string } {
  if (part.length === 0) return { start: 0, end: content.size, encoding: '' };
  const p = partOf(content, part);
  // A multipart's body is its parts with their boundaries: no transfer encoding applies to it as a
  // whole (RFC 2045 §6.4 allows only identity encodings on multipart).
  const encoding = p.contentType.type === 'multipart' && p.children.length > 0 ? '' : p.encoding;
  if (!IDENTITY.has(encoding) && encoding !== 'base64' && encoding !== 'quoted-printable') throw new UnknownCteError(encoding);
  return { start: p.bodyStart, end: p.bodyEnd, encoding };
}

/**
 * BINARY[part]<partial>: the part's content with its Content-Transfer-Encoding undone (base64,
 * quoted-printable; identity encodings as they are). UnknownCteError for any other encoding,
 * NoSuchPartError for a part the message does not have.
 */
export async function fetchBinary(content: MessageContent, part: number[], partial?: Partial): Promise<Buffer> {
  const p = binaryPart(content, part);
  if (IDENTITY.has(p.encoding)) {
    const size = Math.max(0, Math.min(p.end, content.size) - p.start);
    const w = partialWindow(size, partial);
    return content.read(p.start + w.offset, p.start + w.offset + w.length);
  }
  // Only the bytes of the window are kept, and decoding stops once it is complete: clients fetch
  // large attachments as a series of BINARY.PEEK[n]<offset.length> windows.
  const from = partial?.start ?? 0;
  const to = partial ? from + partial.length : Number.POSITIVE_INFINITY;
  const kept: Buffer[] = [];
  let pos = 0;
  await decoded(content, p, (chunk) => {
    const chunkEnd = pos + chunk.length;
    if (chunkEnd > from && pos < to) kept.push(chunk.subarray(Math.max(0, from - pos), Math.min(chunk.length, to - pos)));
    pos = chunkEnd;
    return pos < to;
  });
  return Buffer.concat(kept);
}

/** BINARY.SIZE[part] (RFC 3516 §4.2): the size of the decoded content, counted while streaming. */
export async function binarySize(content: MessageContent, part: number[]): Promise<number> {
  const p = binaryPart(content, part);
  if (IDENTITY.has(p.encoding)) return Math.max(0, Math.min(p.end, content.size) - p.start);
  let size = 0;
  await decoded(content, p, (chunk) => ((size += chunk.length), true));
  return size;
}

/**
 * Streams the decoded body of a part to `sink`, chunk by chunk, until the sink returns false (a
 * partial window is complete: the rest is not decoded). Read errors reach the caller.
 */
async function decoded(content: MessageContent, p: { start: number; end: number; encoding: string }, sink: (chunk: Buffer) => boolean): Promise<void> {
  const raw = await content.open(p.start, p.end);
  const decoder = transferDecoder(p.encoding);
  if (!decoder) {
    raw.destroy();
    throw new UnknownCteError(p.encoding);
  }
  raw.on('error', (err) => decoder.destroy(err));
  raw.pipe(decoder);
  try {
    for await (const chunk of decoder) {
      if (!sink(chunk as Buffer)) break;
    }
  } finally {
    raw.unpipe(decoder);
    raw.destroy();
    decoder.destroy();
  }
}
