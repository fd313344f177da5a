/**
 * Header fields as a reader sees them, for SEARCH HEADER/BCC/FROM/TO/CC/SUBJECT/TEXT (RFC 9051
 * §6.4.4: case-insensitive substring match of the field's text). Values are unfolded (RFC 5322
 * §2.2.3), their bytes decoded (UTF-8 per RFC 6532, or sniffed legacy charsets such as Shift_JIS),
 * then RFC 2047 encoded words and raw ISO-2022-JP escape runs are decoded, so a search for 会議
 * finds `=?ISO-2022-JP?B?…?=` as well as 8-bit Shift_JIS written by an old mailer.
 */
import { isUtf8 } from 'node:buffer';
import libmime from 'libmime';
import { decodeIso2022jp, decodeUnlabelled } from '../../../mail/charset.js';
import { fieldNameEnd, isContinuationByte, trimBytes } from '../../../mail/mime/header.js';

export interface DecodedField {
  /** Lower-cased field name. */
  name: string;
  /** Unfolded, decoded text. */
  value: string;
}

const LF = 0x0a;
const CR = 0x0d;

/** Decodes one unfolded field value. Never throws: malformed encoded words stay as written. */
export function decodeFieldValue(raw: Buffer): string {
  let text = isUtf8(raw) ? raw.toString('utf8') : decodeUnlabelled(raw);
  try {
    text = libmime.decodeWords(text);
  } catch {
    // A malformed encoded word is searched as written.
  }
  return decodeIso2022jp(text);
}

/** The fields of a header block (bytes up to and including the blank line), in order. */
export function decodeHeaderBlock(block: Buffer): DecodedField[] {
  const fields: DecodedField[] = [];
  let name: string | null = null;
  let chunks: Buffer[] = [];
  const flush = () => {
    if (name !== null) fields.push({ name, value: decodeFieldValue(trimBytes(Buffer.concat(chunks))) });
    name = null;
    chunks = [];
  };
  let pos = 0;
  while (pos < block.length) {
    let lineEnd = block.indexOf(LF, pos);
    lineEnd = lineEnd < 0 ? block.length : lineEnd + 1;
    let contentEnd = lineEnd;
    if (contentEnd > pos && block[contentEnd - 1] === LF) contentEnd--;
    if (contentEnd > pos && block[contentEnd - 1] === CR) contentEnd--;
    if (contentEnd === pos) break; // the blank line that ends the header
    if (isContinuationByte(block[pos])) {
      if (name !== null) chunks.push(block.subarray(pos, contentEnd));
    } else {
      flush();
      const colon = fieldNameEnd(block, pos, contentEnd);
      if (colon >= 0) {
        name = trimBytes(block, pos, colon).toString('latin1').toLowerCase();
        chunks.push(block.subarray(colon + 1, contentEnd));
      }
    }
    pos = lineEnd;
  }
  flush();
  return fields;
}

/** Case-insensitive substring test (RFC 9051 §6.4.4); the empty string is in every text. */
export function containsText(haystack: string, needle: string): boolean {
  if (needle === '') return true;
  return haystack.toLowerCase().includes(needle.toLowerCase());
}

/** A decoded header, with the lookups the search keys need. */
export class DecodedHeader {
  readonly fields: DecodedField[];
  private wholeText: string | null = null;

  constructor(block: Buffer) {
    this.fields = decodeHeaderBlock(block);
  }

  /** True when a field named `name` (case-insensitive) contains `value`; `""` = the field exists. */
  fieldContains(name: string, value: string): boolean {
    const wanted = name.toLowerCase();
    return this.fields.some((f) => f.name === wanted && containsText(f.value, value));
  }

  /** The first value of a field, or null. */
  first(name: string): string | null {
    const wanted = name.toLowerCase();
    return this.fields.find((f) => f.name === wanted)?.value ?? null;
  }

  /** The whole decoded header as `name: value` lines (TEXT searches the header too). */
  text(): string {
    this.wholeText ??= this.fields.map((f) => `${f.name}: ${f.value}`).join('\n');
    return this.wholeText;
  }
}
