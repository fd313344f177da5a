/**
 * Structured MIME header values: Content-Type (RFC 2045 §5.1) and Content-Disposition (RFC 2183)
 * with their parameters, including RFC 2231 continuations and charsets, and the RFC 2047 encoded
 * words that many mailers put into file names although RFC 2047 §5 forbids them in quoted strings.
 *
 * Input is a "byte string": each char holds one byte of the raw header (latin1), so 8-bit values
 * survive until they are decoded here. Parsing is lenient the way real mail needs (unquoted values
 * with spaces, unterminated quotes, comments, stray semicolons) and never throws; its work is
 * linear in the length of the value, which the caller bounds.
 */
import { isUtf8 } from 'node:buffer';
import libmime from 'libmime';
import { decodeBytes, decodeIso2022jp, decodeUnlabelled } from '../charset.js';

/** One parameter as written: lower-cased name (with any RFC 2231 `*N*` suffix), value unquoted but undecoded. */
export interface RawParameter {
  name: string;
  value: string;
}

export interface StructuredValue {
  /** The value before the first parameter, comments and whitespace removed ("text/plain"). */
  value: string;
  params: RawParameter[];
}

/** A parameter after RFC 2231 reassembly: its text, and its bytes before charset decoding. */
export interface DecodedParameter {
  text: string;
  bytes: Buffer;
}

const SEMICOLON = 0x3b;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x28;
const CLOSE = 0x29;
const EQUALS = 0x3d;

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** Index after the comment that opens at `pos` (RFC 5322 §3.2.2: nested, with quoted-pairs); the end if unterminated. */
function skipComment(s: string, pos: number): number {
  let depth = 0;
  for (let i = pos; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === OPEN) depth++;
    else if (c === CLOSE && --depth === 0) return i + 1;
  }
  return s.length;
}

/** Index of the next `;` that is outside quotes and comments, or the end. */
function nextSemicolon(s: string, pos: number): number {
  for (let i = pos; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === SEMICOLON) return i;
    if (c === OPEN) i = skipComment(s, i) - 1;
    else if (c === QUOTE) i = readQuoted(s, i).end - 1;
  }
  return s.length;
}

/** A quoted-string starting at the quote at `pos` (RFC 5322 §3.2.4); an unterminated one runs to the end. */
function readQuoted(s: string, pos: number): { text: string; end: number } {
  let text = '';
  for (let i = pos + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === BACKSLASH && i + 1 < s.length) {
      text += s[++i];
    } else if (c === QUOTE) {
      return { text, end: i + 1 };
    } else if (c !== 0x0d && c !== 0x0a) {
      text += s[i];
    }
  }
  return { text, end: s.length };
}

/** Comments and whitespace removed: what is left of a main value such as "text / plain (comment)". */
function stripCommentsAndSpace(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === OPEN) i = skipComment(s, i) - 1;
    else if (!isWhitespace(c)) out += s[i];
  }
  return out;
}

/**
 * An unquoted value up to the next `;`. RFC 2045's own example `charset=us-ascii (Plain text)`
 * carries a trailing comment, which is dropped; parentheses inside a value (`report (1).pdf`,
 * unquoted by careless mailers) are kept, since a comment cannot be followed by more value.
 * One backward scan: trailing comments are peeled off while each is preceded by whitespace.
 */
function unquotedValue(raw: string): string {
  const text = raw.trim();
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === CLOSE) {
    let depth = 0;
    let open = -1;
    for (let i = end - 1; i >= 0; i--) {
      const c = text.charCodeAt(i);
      if (c === CLOSE) depth++;
      else if (c === OPEN && --depth === 0) {
        open = i;
        break;
      }
    }
    if (open <= 0 || !isWhitespace(text.charCodeAt(open - 1))) break;
    end = open;
    while (end > 0 && isWhitespace(text.charCodeAt(end - 1))) end--;
  }
  return text.slice(0, end);
}

/**
 * Splits a structured value into its main value and its parameters as written. Parameters without
 * `=` are dropped; names are lower-cased; the first occurrence of a name wins (RFC 2045 §5.1 does
 * not allow repeats, and the first is what the sender's MIME library wrote).
 */
export function splitStructuredValue(input: string): StructuredValue {
  let pos = nextSemicolon(input, 0);
  const value = stripCommentsAndSpace(input.slice(0, pos));
  const params: RawParameter[] = [];
  const seen = new Set<string>();
  while (pos < input.length) {
    pos++; // the ';'
    const end = nextSemicolon(input, pos);
    const segment = input.slice(pos, end);
    const equals = segment.indexOf(String.fromCharCode(EQUALS));
    if (equals > 0) {
      const name = stripCommentsAndSpace(segment.slice(0, equals)).toLowerCase();
      let rest = segment.slice(equals + 1);
      let paramValue: string;
      const firstNonSpace = rest.search(/[^ \t\r\n]/);
      if (firstNonSpace >= 0 && rest.charCodeAt(firstNonSpace) === QUOTE) {
        paramValue = readQuoted(rest, firstNonSpace).text;
      } else {
        // Strip leading comments: `charset=(comment) utf-8` is legal RFC 822 and occurs.
        rest = rest.trimStart();
        while (rest.charCodeAt(0) === OPEN) rest = rest.slice(skipComment(rest, 0)).trimStart();
        paramValue = unquotedValue(rest);
      }
      if (name !== '' && !seen.has(name)) {
        seen.add(name);
        params.push({ name, value: paramValue });
      }
    }
    pos = end;
  }
  return { value, params };
}

/** RFC 2231 §4: `%XX` octets in an extended value; a `%` not followed by two hex digits is literal. */
function percentDecode(s: string): Buffer {
  const out = Buffer.allocUnsafe(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < s.length && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out[n++] = Number.parseInt(s.slice(i + 1, i + 3), 16);
      i += 2;
    } else {
      out[n++] = c & 0xff;
    }
  }
  return out.subarray(0, n);
}

/** Text of raw parameter bytes that carry no charset label: ASCII, UTF-8 (RFC 6532), or sniffed legacy Japanese. */
function decodeUnlabelledValue(bytes: Buffer): string {
  for (const b of bytes) {
    if (b >= 0x80) return isUtf8(bytes) ? bytes.toString('utf8') : decodeUnlabelled(bytes);
  }
  // ESC sequences: raw ISO-2022-JP, which old Japanese mailers wrote into parameters.
  return decodeIso2022jp(bytes.toString('latin1'));
}

function decodeLabelled(bytes: Buffer, charset: string): string {
  return charset === '' ? decodeUnlabelledValue(bytes) : decodeBytes(bytes, charset);
}

interface Segment {
  raw: string;
  extended: boolean;
}

/** RFC 2231 §3, §4: `name*`, `name*N`, `name*N*`. */
const RFC2231_NAME = /^(.+?)\*(?:(\d{1,6})(\*)?)?$/;

/**
 * Reassembles RFC 2231 parameters and decodes every value to text. A parameter given both plainly
 * and in RFC 2231 form takes the RFC 2231 form (it is the one written for MIME-aware readers).
 * Continuations are joined in index order; a value's charset is the one on its first segment.
 */
export function decodeParameters(params: RawParameter[]): Map<string, DecodedParameter> {
  const plain = new Map<string, string>();
  const segmented = new Map<string, Map<number, Segment>>();
  for (const { name, value } of params) {
    const m = RFC2231_NAME.exec(name);
    if (!m) {
      if (!plain.has(name)) plain.set(name, value);
      continue;
    }
    const base = m[1];
    const index = m[2] === undefined ? 0 : Number(m[2]);
    const extended = m[2] === undefined || m[3] === '*';
    let segments = segmented.get(base);
    if (!segments) segmented.set(base, (segments = new Map()));
    if (!segments.has(index)) segments.set(index, { raw: value, extended });
  }

  const out = new Map<string, DecodedParameter>();
  for (const [name, value] of plain) {
    const bytes = Buffer.from(value, 'latin1');
    out.set(name, { text: decodeUnlabelledValue(bytes), bytes });
  }
  for (const [name, segments] of segmented) {
    const indexes = [...segments.keys()].sort((a, b) => a - b);
    let charset = '';
    const parts: Buffer[] = [];
    indexes.forEach((index, position) => {
      const segment = segments.get(index)!;
      let raw = segment.raw;
      if (segment.extended && position === 0) {
        // charset'language'value (RFC 2231 §4); the language is not needed for decoding.
        const m = /^([^']*)'[^']*'(.*)$/s.exec(raw);
        if (m) {
          charset = m[1].trim();
          raw = m[2];
        }
      }
      parts.push(segment.extended ? percentDecode(raw) : Buffer.from(raw, 'latin1'));
    });
    const bytes = Buffer.concat(parts);
    out.set(name, { text: decodeLabelled(bytes, charset), bytes });
  }
  return out;
}

/** RFC 2047 encoded words in a file name (not allowed there by §5, but common); never throws. */
export function decodeFileName(text: string): string {
  let out = text;
  if (out.includes('=?')) {
    try {
      out = libmime.decodeWords(out);
    } catch {
      // A malformed word stays as it was written.
    }
  }
  return decodeIso2022jp(out).replace(/[\u0000-\u001f\u007f]/g, '').trim();
}
