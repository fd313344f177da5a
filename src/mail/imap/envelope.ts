/**
 * The IMAP ENVELOPE of a message (RFC 9051 §7.5.2) from its header block: date, subject, from,
 * sender, reply-to, to, cc, bcc, in-reply-to and message-id, in that order.
 *
 * Strings are the header text as written, unfolded but not decoded (RFC 2047 encoded words are the
 * client's business). 8-bit header text (RFC 6532) is passed on as it is: valid UTF-8 becomes a
 * string (the encoder quotes it for UTF-8 clients and sends a literal otherwise); bytes that are not
 * UTF-8 (a raw Shift_JIS subject, say) become a literal of those exact bytes.
 */
import { isUtf8 } from 'node:buffer';
import type { ImapValue } from '../../protocols/imap/encoder/types.js';
import { parseAddressList, type EnvelopeAddress } from './address-list.js';
import { firstHeaderFields } from './header-bytes.js';

const FIELDS = ['date', 'subject', 'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'in-reply-to', 'message-id'] as const;
const WANTED: ReadonlySet<string> = new Set(FIELDS);

/** How header text is decoded and re-encoded: as UTF-8, or byte for byte (latin1) for other 8-bit text. */
interface TextCodec {
  decode(bytes: Buffer): string;
  value(text: string): ImapValue;
}

const UTF8: TextCodec = {
  decode: (bytes) => bytes.toString('utf8'),
  value: (text) => text,
};

/**
 * Each char holds one byte. ASCII text stays a string; text with 8-bit bytes becomes a literal of
 * exactly those bytes (NUL dropped: a literal cannot carry it).
 */
const BYTES: TextCodec = {
  decode: (bytes) => bytes.toString('latin1'),
  value: (text) => {
    if (!/[^\x00-\x7f]/.test(text)) return text;
    const bytes = Buffer.from(text, 'latin1');
    return bytes.includes(0) ? Buffer.from(bytes.filter((b) => b !== 0)) : bytes;
  },
};

function codecOf(bytes: Buffer): TextCodec {
  return isUtf8(bytes) ? UTF8 : BYTES;
}

function text(bytes: Buffer | undefined): ImapValue {
  if (bytes === undefined) return null;
  const codec = codecOf(bytes);
  return codec.value(codec.decode(bytes));
}

function nstring(codec: TextCodec, s: string | null): ImapValue {
  return s === null ? null : codec.value(s);
}

/** An address list, or NIL when the field is absent or holds no address (RFC 9051 §7.5.2). */
function addresses(bytes: Buffer | undefined): ImapValue[] | null {
  if (bytes === undefined) return null;
  const codec = codecOf(bytes);
  const list = parseAddressList(codec.decode(bytes));
  if (list.length === 0) return null;
  // env-to = "(" 1*address ")": the addresses follow each other without spaces (RFC 9051 §9).
  return [{ concat: list.map((a: EnvelopeAddress) => [nstring(codec, a.name), nstring(codec, a.route), nstring(codec, a.mailbox), nstring(codec, a.host)]) }];
}

/** The ENVELOPE list of a header block (the bytes of the header, as stored; the blank line may be included). */
export function buildEnvelope(header: Buffer): ImapValue {
  const f = firstHeaderFields(header, WANTED);
  const from = addresses(f.get('from'));
  // "If the Sender or Reply-To lines are absent in the [RFC-5322] header, or are present but
  // empty, the server sets the corresponding member of the envelope to be the same value as the
  // from member" (RFC 9051 §7.5.2).
  const sender = addresses(f.get('sender')) ?? from;
  const replyTo = addresses(f.get('reply-to')) ?? from;
  return [
    text(f.get('date')),
    text(f.get('subject')),
    from,
    sender,
    replyTo,
    addresses(f.get('to')),
    addresses(f.get('cc')),
    addresses(f.get('bcc')),
    text(f.get('in-reply-to')),
    text(f.get('message-id')),
  ];
}
