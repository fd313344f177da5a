/**
 * Mailbox names on the wire. IMAP4rev1 clients use modified UTF-7 (RFC 3501 §5.1.3); a client that
 * enabled UTF8=ACCEPT or IMAP4rev2 sends and receives UTF-8 as is (RFC 6855 §3, RFC 9051 §5.1).
 * Inside MaiRust a folder name is always the Unicode string, and INBOX is spelled `INBOX`.
 */
import { ImapSyntaxError } from '../session/types.js';

const AMP = 0x26;
const DASH = 0x2d;
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Modified BASE64 (RFC 3501 §5.1.3): RFC 2045 base64 with `,` for `/`, no padding. */
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';
const B64_VALUE = new Map([...B64].map((ch, i) => [ch.charCodeAt(0), i]));

function invalid(why: string): never {
  throw new ImapSyntaxError(`Invalid mailbox name: ${why}`);
}

/** A name equal to INBOX in any case is INBOX (RFC 9051 §5.1). */
function normaliseInbox(name: string): string {
  return name.length === 5 && name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
}

/**
 * The folder name a client sent (the astring's bytes). With `utf8` the bytes must be valid UTF-8;
 * without, modified UTF-7, checked strictly (no 8-bit, every shift closed, no null or adjacent
 * shifts, no ASCII hidden in BASE64, surrogates paired). Control characters are never accepted.
 */
export function decodeMailboxName(raw: Buffer, utf8: boolean): string {
  let name: string;
  if (utf8) {
    try {
      name = utf8Strict.decode(raw);
    } catch {
      invalid('not valid UTF-8');
    }
  } else {
    name = decodeModifiedUtf7(raw);
  }
  if (/[\x00-\x1f\x7f]/.test(name)) invalid('control character');
  return normaliseInbox(name);
}

function decodeModifiedUtf7(raw: Buffer): string {
  let out = '';
  let i = 0;
  /** Where the last BASE64 shift ended: a new one starting right there is a null shift. */
  let lastShiftEnd = -1;
  while (i < raw.length) {
    const b = raw[i];
    if (b >= 0x80) invalid('8-bit characters must be sent as modified UTF-7');
    if (b !== AMP) {
      out += String.fromCharCode(b);
      i++;
      continue;
    }
    const end = raw.indexOf(DASH, i + 1);
    if (end < 0) invalid("'&' without a closing '-'");
    if (end === i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    if (i === lastShiftEnd) invalid('adjacent modified BASE64 sequences');
    out += decodeShifted(raw.subarray(i + 1, end));
    i = end + 1;
    lastShiftEnd = i;
  }
  return out;
}

/** The characters of one `&…-` sequence: modified BASE64 of UTF-16BE. */
function decodeShifted(b64: Buffer): string {
  const bytes: number[] = [];
  let bits = 0;
  let nbits = 0;
  for (const c of b64) {
    const v = B64_VALUE.get(c);
    if (v === undefined) invalid('bad character in modified BASE64');
    bits = (bits << 6) | v;
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      bytes.push((bits >> nbits) & 0xff);
      bits &= (1 << nbits) - 1;
    }
  }
  // Left-over bits are padding: fewer than 6 and all zero (RFC 4648 §3.5 canonical encoding).
  if (nbits >= 6 || bits !== 0) invalid('bad modified BASE64 padding');
  if (bytes.length % 2 !== 0) invalid('modified BASE64 is not whole UTF-16 units');
  let out = '';
  for (let k = 0; k < bytes.length; k += 2) {
    const unit = (bytes[k] << 8) | bytes[k + 1];
    if (unit >= 0x20 && unit <= 0x7e) invalid('printable ASCII must not be BASE64 encoded');
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const low = k + 3 < bytes.length ? (bytes[k + 2] << 8) | bytes[k + 3] : -1;
      if (low < 0xdc00 || low > 0xdfff) invalid('unpaired UTF-16 surrogate');
      out += String.fromCharCode(unit, low);
      k += 2;
      continue;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) invalid('unpaired UTF-16 surrogate');
    out += String.fromCharCode(unit);
  }
  return out;
}

/** The wire form of a folder name: as is for UTF-8 clients, modified UTF-7 otherwise. */
export function encodeMailboxName(name: string, utf8: boolean): string {
  if (utf8) return name;
  let out = '';
  let i = 0;
  while (i < name.length) {
    const code = name.charCodeAt(i);
    if (code >= 0x20 && code <= 0x7e) {
      out += code === AMP ? '&-' : name[i];
      i++;
      continue;
    }
    // One shift for the whole run of characters that need it (RFC 3501 §5.1.3: no adjacent shifts).
    let j = i;
    while (j < name.length && !(name.charCodeAt(j) >= 0x20 && name.charCodeAt(j) <= 0x7e)) j++;
    const utf16be = Buffer.from(name.slice(i, j), 'utf16le').swap16();
    out += `&${utf16be.toString('base64').replace(/=+$/, '').replace(/\//g, ',')}-`;
    i = j;
  }
  return out;
}
