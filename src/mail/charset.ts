/**
 * Charset repair for what the MIME parser cannot decode on its own: legacy Japanese mail that does
 * not label its charset (raw ISO-2022-JP or Shift_JIS bytes in headers, bodies without a `charset`
 * parameter). Labelled charsets are decoded by the parser (libmime/iconv-lite); this module only
 * sniffs and decodes the unlabelled cases.
 */
import { isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';

export type SniffedCharset = 'US-ASCII' | 'UTF-8' | 'ISO-2022-JP' | 'Shift_JIS' | 'EUC-JP' | 'windows-1252';

const ESC = 0x1b;
const REPLACEMENT = '\ufffd';

/**
 * True when `text` holds an ISO-2022-JP designation escape (RFC 1468 §2: ESC $ @, ESC $ B for
 * JIS X 0208; ESC ( I for half-width katakana, ESC $ ( D for JIS X 0212 from RFC 2237).
 */
export function hasIso2022jpEscapes(text: string): boolean {
  return /\x1b(?:\$[@B]|\$\(D|\(I)/.test(text);
}

type JisMode = 'ascii' | 'jis0208' | 'kana' | 'jis0212';

/**
 * Decodes ISO-2022-JP escape runs inside `text` and leaves every other character as it is, so a
 * string that is partly decoded already (an RFC 2047 word next to raw ISO-2022-JP bytes read as
 * Latin-1) comes out right. JIS X 0208 bytes become EUC-JP (same code points, high bit set) and
 * iconv-lite's EUC-JP table decodes them — it includes the NEC row-13 characters (①, ㈱) that
 * Japanese Windows mailers put into ISO-2022-JP (CP50221).
 */
export function decodeIso2022jp(text: string): string {
  if (!text.includes('\x1b')) return text;
  let out = '';
  let mode: JisMode = 'ascii';
  let euc: number[] = [];
  const flush = () => {
    if (euc.length > 0) out += iconv.decode(Buffer.from(euc), 'euc-jp');
    euc = [];
  };
  const isJisByte = (c: number) => c >= 0x21 && c <= 0x7e;

  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === ESC) {
      const seq = text.slice(i + 1, i + 4);
      const designation = /^(\$[@B]|\$\(D|\([BJI])/.exec(seq)?.[1];
      if (designation) {
        flush();
        mode = designation === '(B' || designation === '(J' ? 'ascii' : designation === '(I' ? 'kana' : designation === '$(D' ? 'jis0212' : 'jis0208';
        i += designation.length;
        continue;
      }
      // An unknown escape is dropped rather than shown as a control character.
      continue;
    }
    if (c === 0x0d || c === 0x0a) {
      // RFC 1468 §3: every line ends in ASCII, so a line break also ends a forgotten kanji run.
      flush();
      mode = 'ascii';
      out += text[i];
      continue;
    }
    if (mode === 'ascii') {
      flush();
      out += text[i];
    } else if (mode === 'kana') {
      // JIS X 0201 katakana: EUC-JP carries it after the SS2 (0x8E) prefix.
      if (c >= 0x21 && c <= 0x5f) {
        euc.push(0x8e, c | 0x80);
      } else {
        flush();
        out += REPLACEMENT;
      }
    } else {
      // JIS X 0208 and JIS X 0212 are both two 7-bit bytes per character; EUC-JP marks 0212
      // with the SS3 (0x8F) prefix.
      const c2 = text.charCodeAt(i + 1);
      if (isJisByte(c) && isJisByte(c2)) {
        if (mode === 'jis0212') euc.push(0x8f);
        euc.push(c | 0x80, c2 | 0x80);
        i += 1;
      } else {
        flush();
        out += REPLACEMENT;
      }
    }
  }
  flush();
  return out;
}

/** Counts how plausible `text` is as Japanese prose: kana and kanji up, replacement chars down. */
function japaneseScore(text: string): number {
  let score = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0xfffd) score -= 10;
    else if (cp >= 0x3040 && cp <= 0x30ff) score += 2; // hiragana, katakana
    else if (cp >= 0x4e00 && cp <= 0x9fff) score += 1; // CJK unified ideographs
    else if (cp >= 0x3000 && cp <= 0x303f) score += 1; // CJK punctuation
    else if (cp >= 0xff01 && cp <= 0xff5e) score += 1; // full-width ASCII
    else if (cp >= 0xff61 && cp <= 0xff9f) score -= 1; // half-width katakana: rare, a sign of misreading EUC-JP as Shift_JIS
    else if (cp < 0x20 && cp !== 0x09 && cp !== 0x0a && cp !== 0x0d) score -= 5;
  }
  return score;
}

/**
 * Counts how plausible `bytes` are as windows-1252 Western text: an accented letter (0xC0–0xFF)
 * next to an ASCII letter, as in "Crème". Japanese double-byte text almost never has that shape —
 * its high bytes come in pairs — even though it happens to decode to some kanji.
 */
function westernScore(bytes: Buffer): number {
  const isAsciiLetter = (b: number | undefined) => b !== undefined && ((b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a));
  let score = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] >= 0xc0 && (isAsciiLetter(bytes[i - 1]) || isAsciiLetter(bytes[i + 1]))) score += 3;
  }
  return score;
}

/**
 * Guesses the charset of unlabelled bytes. Only the charsets that appear unlabelled in practice are
 * considered: ASCII, UTF-8 (RFC 6532 raw headers), ISO-2022-JP (7-bit, recognised by its escapes),
 * the 8-bit Japanese charsets, told apart by decoding with both and scoring, and windows-1252 for
 * 8-bit text that reads as neither (a Western mailer's unlabelled "Café").
 */
export function sniffCharset(bytes: Buffer): SniffedCharset {
  let ascii = true;
  for (const b of bytes) {
    if (b >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return hasIso2022jpEscapes(bytes.toString('latin1')) ? 'ISO-2022-JP' : 'US-ASCII';
  if (isUtf8(bytes)) return 'UTF-8';
  // Scoring a sample is enough to tell the two apart; a character cut at the sample's end costs
  // one replacement character in both.
  const sample = bytes.subarray(0, 64 * 1024);
  const sjis = japaneseScore(iconv.decode(sample, 'shift_jis'));
  const euc = japaneseScore(iconv.decode(sample, 'euc-jp'));
  const japanese = Math.max(sjis, euc);
  if (japanese <= 0 || westernScore(sample) > japanese) return 'windows-1252';
  return euc > sjis ? 'EUC-JP' : 'Shift_JIS';
}

/** Decodes bytes in `charset`; unknown charsets fall back to UTF-8 with replacement characters. */
export function decodeBytes(bytes: Buffer, charset: string): string {
  if (/^iso-?2022-?jp/i.test(charset)) return decodeIso2022jp(bytes.toString('latin1'));
  if (/^(us-?ascii|utf-?8)$/i.test(charset) || !iconv.encodingExists(charset)) return bytes.toString('utf8');
  return iconv.decode(bytes, charset);
}

/** Sniffs and decodes unlabelled bytes (a raw header value, an unlabelled body). */
export function decodeUnlabelled(bytes: Buffer): string {
  return decodeBytes(bytes, sniffCharset(bytes));
}

/** RFC 2045 §6.7 quoted-printable decoding over bytes (soft line breaks removed, =XX decoded). */
export function decodeQuotedPrintable(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1').replace(/=[ \t]*\r?\n/g, '');
  const out = Buffer.alloc(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const hex = text[i] === '=' ? text.slice(i + 1, i + 3) : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      out[n++] = Number.parseInt(hex, 16);
      i += 2;
    } else {
      out[n++] = text.charCodeAt(i);
    }
  }
  return out.subarray(0, n);
}

/** Where the header block of `raw` ends and the body starts (RFC 5322 §2.1: the first empty line). */
export function splitHeaderBlock(raw: Buffer): { headerEnd: number; bodyStart: number } | null {
  if (raw[0] === 0x0a) return { headerEnd: 0, bodyStart: 1 };
  if (raw[0] === 0x0d && raw[1] === 0x0a) return { headerEnd: 0, bodyStart: 2 };
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return null;
  if (lf >= 0 && (crlf < 0 || lf < crlf)) return { headerEnd: lf + 1, bodyStart: lf + 2 };
  return { headerEnd: crlf + 2, bodyStart: crlf + 4 };
}

const RELABELLED = new Set<SniffedCharset>(['ISO-2022-JP', 'Shift_JIS', 'EUC-JP', 'windows-1252']);

/**
 * Old Japanese mailers often send a single-part text body in ISO-2022-JP or Shift_JIS without a
 * `charset` parameter; RFC 2045 §5.2 would make it US-ASCII, which turns the text into escape
 * sequences or U+FFFD. When the top-level part is text with no charset and its bytes sniff as a
 * legacy charset (Japanese or windows-1252), this returns the message with that charset added to
 * Content-Type, so the MIME parser decodes it; otherwise `raw` itself. (Parts of a multipart message are not
 * relabelled; unlabelled ISO-2022-JP there is still repaired afterwards by `decodeIso2022jp`.)
 */
export function labelUnlabelledBody(raw: Buffer): Buffer {
  const split = splitHeaderBlock(raw);
  if (!split || split.headerEnd === 0) return raw;
  const headerText = raw.subarray(0, split.headerEnd).toString('latin1');
  const lines = headerText.split(/(?<=\n)/);
  let contentType: string | null = null;
  let transferEncoding = '';
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const name = /^([!-9;-~]+)[ \t]*:/.exec(lines[i])?.[1].toLowerCase();
    let field = lines[i];
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1])) field += lines[++i];
    const value = field.slice(field.indexOf(':') + 1).replace(/\r?\n/g, '').trim();
    if (name === 'content-type' && contentType === null) {
      contentType = value;
      continue;
    }
    if (name === 'content-transfer-encoding') transferEncoding = value.toLowerCase();
    kept.push(field);
  }
  if (contentType !== null && (!/^text\//i.test(contentType) || /(^|;)\s*charset\s*=/i.test(contentType))) return raw;

  let body = raw.subarray(split.bodyStart);
  if (transferEncoding === 'base64') body = Buffer.from(body.toString('latin1'), 'base64');
  else if (transferEncoding === 'quoted-printable') body = decodeQuotedPrintable(body);
  const charset = sniffCharset(body);
  if (!RELABELLED.has(charset)) return raw;

  const type = (contentType ?? 'text/plain').replace(/[;\s]+$/, '');
  const header = `Content-Type: ${type}; charset=${charset}\r\n` + kept.join('');
  return Buffer.concat([Buffer.from(header, 'latin1'), raw.subarray(split.headerEnd)]);
}
