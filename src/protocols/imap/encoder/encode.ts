/**
 * Encodes IMAP response values (RFC 9051 §4 data formats) into bytes. Callers build a tree of
 * `ImapValue`s; this is the one place that decides between atom, quoted string and literal, so no
 * response is ever formatted by hand and no client-controlled text can break out of a string.
 */
import type { EncodeOptions, ImapValue } from './types.js';

export type { EncodeOptions, ImapValue } from './types.js';

/**
 * Longest string sent as a quoted string; longer ones go as a literal. RFC 9051 puts no limit on a
 * quoted string, but many clients read a response line into a bounded buffer, and a literal costs
 * the client nothing extra.
 */
export const MAX_QUOTED_BYTES = 1024;

const NIL = Buffer.from('NIL');
const SPACE = Buffer.from(' ');
const OPEN = Buffer.from('(');
const CLOSE = Buffer.from(')');

/**
 * A character that may stand in a quoted string without turning it into a literal: printable
 * US-ASCII and TAB (RFC 9051 §9 TEXT-CHAR excludes CR and LF; other controls are legal but some
 * clients choke on them, so they go as a literal too). `"` and `\` are escaped.
 */
function isQuotableAscii(c: number): boolean {
  return (c >= 0x20 && c < 0x7f) || c === 0x09;
}

/**
 * Whether `s` can be sent as a quoted string (RFC 9051 §4.3): no CR, LF or NUL, at most
 * MAX_QUOTED_BYTES, and 7-bit unless the client accepts UTF-8 there (RFC 6855 §3, IMAP4rev2
 * `QUOTED-CHAR =/ UTF8-2 / UTF8-3 / UTF8-4`).
 */
function canQuote(s: string, utf8: boolean): boolean {
  if (s.length > MAX_QUOTED_BYTES) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (!isQuotableAscii(c)) return false;
    } else if (!utf8) {
      return false;
    }
  }
  // Non-ASCII characters take up to 3 UTF-8 bytes per UTF-16 unit.
  return Buffer.byteLength(s, 'utf8') <= MAX_QUOTED_BYTES;
}

function quote(s: string): Buffer {
  return Buffer.from(`"${s.replace(/["\\]/g, '\\$&')}"`, 'utf8');
}

/**
 * `{n}\r\n` (or `~{n}\r\n` for a literal8, RFC 3516 §4.2): what precedes `n` bytes of a literal.
 * Used directly by callers that stream a large body after it.
 */
export function literalPrefix(size: number, binary = false): string {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid literal size ${size}`);
  return `${binary ? '~' : ''}{${size}}\r\n`;
}

/**
 * A literal of text. A literal is CHAR8 (RFC 9051 §4.3: any byte except NUL); a NUL in text (from a
 * hostile header, say) is dropped rather than sent, since only literal8 may carry it.
 */
function textLiteral(s: string): Buffer[] {
  const bytes = Buffer.from(s.includes('\u0000') ? s.replaceAll('\u0000', '') : s, 'utf8');
  return [Buffer.from(literalPrefix(bytes.length)), bytes];
}

function push(v: ImapValue, opts: EncodeOptions, out: Buffer[]): void {
  if (v === null) {
    out.push(NIL);
  } else if (typeof v === 'number') {
    // number / number64 (RFC 9051 §4.2, RFC 7162 §7 mod-sequence-value): non-negative integers.
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not an IMAP number: ${v}`);
    out.push(Buffer.from(String(v)));
  } else if (typeof v === 'string') {
    if (canQuote(v, opts.utf8)) out.push(quote(v));
    else out.push(...textLiteral(v));
  } else if (Buffer.isBuffer(v)) {
    out.push(Buffer.from(literalPrefix(v.length)), v);
  } else if (Array.isArray(v)) {
    out.push(OPEN);
    v.forEach((item, i) => {
      if (i > 0) out.push(SPACE);
      push(item, opts, out);
    });
    out.push(CLOSE);
  } else if ('atom' in v) {
    out.push(Buffer.from(v.atom, 'utf8'));
  } else if ('concat' in v) {
    for (const item of v.concat) push(item, opts, out);
  } else if ('literal8' in v) {
    out.push(Buffer.from(literalPrefix(v.literal8.length, true)), v.literal8);
  } else {
    out.push(Buffer.from(v.raw, 'utf8'));
  }
}

/** One value as bytes. */
export function encodeValue(v: ImapValue, opts: EncodeOptions): Buffer {
  const out: Buffer[] = [];
  push(v, opts, out);
  return out.length === 1 ? out[0] : Buffer.concat(out);
}

/** Several values joined by single spaces, without a line end (the caller adds `* ` and CRLF). */
export function encodeValues(values: ImapValue[], opts: EncodeOptions): Buffer {
  const out: Buffer[] = [];
  values.forEach((v, i) => {
    if (i > 0) out.push(SPACE);
    push(v, opts, out);
  });
  return Buffer.concat(out);
}

/**
 * A flag list `(\Seen $Forwarded)` (RFC 9051 §7.5.2 FLAGS). Flags are system flags or keywords that
 * the mailbox-state service has already validated as atoms, so they are written as they are.
 */
export function flagList(flags: string[]): ImapValue {
  return flags.map((flag) => ({ atom: flag }));
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * INTERNALDATE text (RFC 9051 §9 date-time, without the quotes): `02-Nov-2026 10:00:00 +0000`.
 * Always in UTC: the zone a message arrived in is not kept, and +0000 names the instant exactly.
 */
export function formatInternalDate(ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) throw new RangeError(`invalid date ${ms}`);
  const year = String(d.getUTCFullYear()).padStart(4, '0');
  return `${pad2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${year} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`;
}

/**
 * Whether `s` may be sent as an atom (RFC 9051 §9): one or more ATOM-CHARs, i.e. printable US-ASCII
 * except atom-specials `( ) { SP % * " \ ]` (and controls).
 */
export function isAtomSafe(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
    if (c === 0x28 || c === 0x29 || c === 0x7b || c === 0x25 || c === 0x2a || c === 0x22 || c === 0x5c || c === 0x5d) return false;
  }
  return true;
}
