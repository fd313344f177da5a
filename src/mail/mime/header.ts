/**
 * Header fields of one part, read back from the raw message by the offsets the structure parser
 * recorded (RFC 5322 §2.2: `name: value`, continued by lines that start with whitespace).
 */
import { DEFAULT_MIME_LIMITS } from './limits.js';
import type { MimePart } from './structure.js';

export interface HeaderField {
  /** The field name as written (case kept). */
  name: string;
  /** Unfolded (RFC 5322 §2.2.3), surrounding whitespace trimmed, not decoded; 8-bit bytes read as UTF-8. */
  value: string;
}

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;

/**
 * Index of the colon that ends the field name on the line [start, end), or -1 when the line is no
 * field. RFC 5322 §2.2: a field name is printable US-ASCII except ':'; §4.5 (obsolete syntax)
 * allows whitespace before the colon. Reads only the name, never past `end`.
 */
export function fieldNameEnd(line: Buffer, start: number, end: number): number {
  let i = start;
  while (i < end && line[i] >= 0x21 && line[i] <= 0x7e && line[i] !== COLON) i++;
  if (i === start) return -1;
  while (i < end && (line[i] === 0x20 || line[i] === 0x09)) i++;
  return i < end && line[i] === COLON ? i : -1;
}

export function isContinuationByte(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09;
}

/** Trims spaces, tabs and line breaks from both ends of bytes [start, end). */
export function trimBytes(bytes: Buffer, start = 0, end = bytes.length): Buffer {
  while (start < end && (bytes[start] === 0x20 || bytes[start] === 0x09 || bytes[start] === CR || bytes[start] === LF)) start++;
  while (end > start && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09 || bytes[end - 1] === CR || bytes[end - 1] === LF)) end--;
  return bytes.subarray(start, end);
}

/**
 * The fields of `part`'s header block in order, from the raw message it was parsed from. Lines
 * that are neither a field nor a continuation are skipped. Only the first `maxBytes` of the block
 * are read (default: the parser's `maxHeaderBlockBytes`), so a huge header cannot blow up the
 * result.
 */
export function headerFieldsOf(raw: Buffer, part: MimePart, maxBytes = DEFAULT_MIME_LIMITS.maxHeaderBlockBytes): HeaderField[] {
  const start = Math.max(0, Math.min(part.headerStart, raw.length));
  const end = Math.max(start, Math.min(part.headerEnd, raw.length, start + maxBytes));
  const fields: HeaderField[] = [];
  let name: string | null = null;
  let chunks: Buffer[] = [];
  const flush = () => {
    if (name !== null) fields.push({ name, value: trimBytes(Buffer.concat(chunks)).toString('utf8') });
    name = null;
    chunks = [];
  };
  let pos = start;
  while (pos < end) {
    let lineEnd = raw.indexOf(LF, pos);
    lineEnd = lineEnd < 0 || lineEnd >= end ? end : lineEnd + 1;
    let contentEnd = lineEnd;
    if (contentEnd > pos && raw[contentEnd - 1] === LF) contentEnd--;
    if (contentEnd > pos && raw[contentEnd - 1] === CR) contentEnd--;
    if (contentEnd === pos) break; // the blank line that ends the header
    if (isContinuationByte(raw[pos])) {
      // Unfolding removes only the line break; the whitespace that folded the line stays.
      if (name !== null) chunks.push(raw.subarray(pos, contentEnd));
    } else {
      flush();
      const colon = fieldNameEnd(raw, pos, contentEnd);
      if (colon >= 0) {
        name = trimBytes(raw, pos, colon).toString('latin1');
        chunks.push(raw.subarray(colon + 1, contentEnd));
      }
    }
    pos = lineEnd;
  }
  flush();
  return fields;
}
