/**
 * Header fields as raw bytes, for IMAP responses that must return header text as it was written
 * (ENVELOPE strings are not decoded: RFC 9051 §7.5.2). Unlike `headerFieldsOf` in src/mail/mime,
 * values stay bytes, so 8-bit text that is not UTF-8 is not replaced on the way.
 */
import { fieldNameEnd, isContinuationByte } from '../mime/header.js';

const LF = 0x0a;
const CR = 0x0d;

function isWsp(b: number): boolean {
  return b === 0x20 || b === 0x09;
}

/**
 * The first occurrence of each wanted field (lower-case names) in a header block: unfolded
 * (RFC 5322 §2.2.3: only the line breaks are removed; the folding whitespace stays) and trimmed of
 * leading and trailing whitespace. Reading stops at the blank line that ends the header. Lines that
 * are neither a field nor a continuation are skipped.
 */
export function firstHeaderFields(header: Buffer, wanted: ReadonlySet<string>): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let current: string | null = null;
  let chunks: Buffer[] = [];
  const flush = () => {
    if (current !== null && !out.has(current)) out.set(current, trim(Buffer.concat(chunks)));
    current = null;
    chunks = [];
  };
  let pos = 0;
  while (pos < header.length && out.size < wanted.size) {
    let lineEnd = header.indexOf(LF, pos);
    lineEnd = lineEnd < 0 ? header.length : lineEnd + 1;
    let contentEnd = lineEnd;
    if (contentEnd > pos && header[contentEnd - 1] === LF) contentEnd--;
    if (contentEnd > pos && header[contentEnd - 1] === CR) contentEnd--;
    if (contentEnd === pos) break; // the blank line
    if (isContinuationByte(header[pos])) {
      if (current !== null) chunks.push(header.subarray(pos, contentEnd));
    } else {
      flush();
      const colon = fieldNameEnd(header, pos, contentEnd);
      if (colon >= 0) {
        const name = header.toString('latin1', pos, colon).trimEnd().toLowerCase();
        if (wanted.has(name) && !out.has(name)) {
          current = name;
          chunks.push(header.subarray(colon + 1, contentEnd));
        }
      }
    }
    pos = lineEnd;
  }
  flush();
  return out;
}

function trim(bytes: Buffer): Buffer {
  let start = 0;
  let end = bytes.length;
  while (start < end && isWsp(bytes[start])) start++;
  while (end > start && isWsp(bytes[end - 1])) end--;
  return bytes.subarray(start, end);
}
