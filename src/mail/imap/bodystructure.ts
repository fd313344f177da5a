/**
 * IMAP BODYSTRUCTURE and BODY (RFC 9051 §7.5.2, formal syntax §9 `body`) from the MIME structure
 * with byte offsets. Everything comes from the stored structure except the ENVELOPE of each
 * encapsulated message (message/rfc822, message/global), whose header block the caller supplies, so
 * a FETCH of many BODYSTRUCTUREs reads only those header ranges from the blob store.
 *
 * Output follows Dovecot where the RFC leaves room (clients are tested against it): lower-case
 * type names as parsed, a default `charset us-ascii` parameter for text parts without one, the
 * language always as a list, and a multipart whose boundary never occurs reported as one empty
 * text/plain part.
 */
import type { ImapValue } from '../../protocols/imap/encoder/types.js';
import type { MimePart } from '../mime/structure.js';
import { buildEnvelope } from './envelope.js';

/** RFC 2045 §5.1 token, for values that must be one (a transfer encoding). */
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;

function params(p: Record<string, string> | undefined, defaultCharset: boolean): ImapValue[] | null {
  const out: ImapValue[] = [];
  let charset = false;
  for (const [name, value] of Object.entries(p ?? {})) {
    if (name === 'charset') charset = true;
    out.push(name, value);
  }
  // RFC 2045 §5.2: text without a charset parameter is us-ascii; said explicitly, as Dovecot does.
  if (defaultCharset && !charset) out.push('charset', 'us-ascii');
  return out.length > 0 ? out : null;
}

/** body-fld-dsp = "(" string SP body-fld-param ")" / nil */
function disposition(part: MimePart): ImapValue {
  return part.disposition === null ? null : [part.disposition.type, params(part.disposition.params, false)];
}

/** body-fld-lang: a list of language tags (RFC 3282), or NIL. */
function language(part: MimePart): ImapValue {
  return part.language === null || part.language.length === 0 ? null : [...part.language];
}

/** What encapsulates a message: message/rfc822 (RFC 2046 §5.2.1) and message/global (RFC 6532 §3.7), once parsed. */
function isEncapsulating(part: MimePart): part is MimePart & { message: MimePart } {
  return part.message !== null && part.contentType.type === 'message';
}

/** A multipart with no parts is not allowed (RFC 2046 §5.1.1); it is shown as one empty text/plain part. */
function emptyTextPart(extensible: boolean): ImapValue {
  const basic: ImapValue[] = ['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 0, 0];
  return extensible ? [...basic, null, null, null, null] : basic;
}

function multipart(part: MimePart, headerOf: (part: MimePart) => Buffer, extensible: boolean): ImapValue[] {
  const parts = part.children.length > 0 ? part.children.map((child) => body(child, headerOf, extensible)) : [emptyTextPart(extensible)];
  // body-type-mpart = 1*body SP media-subtype: the parts follow each other without spaces (RFC 9051 §9).
  const out: ImapValue[] = [{ concat: parts }, part.contentType.subtype];
  // body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
  if (extensible) out.push(params(part.contentType.params, false), disposition(part), language(part), part.location);
  return out;
}

function singlePart(part: MimePart, headerOf: (part: MimePart) => Buffer, extensible: boolean): ImapValue[] {
  const { type, subtype } = part.contentType;
  const text = type === 'text';
  // body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets
  const out: ImapValue[] = [
    type,
    subtype,
    params(part.contentType.params, text),
    part.id,
    part.description,
    TOKEN.test(part.encoding) ? part.encoding : '7bit',
    part.bodyEnd - part.bodyStart,
  ];
  if (isEncapsulating(part)) {
    // body-type-msg: ... SP envelope SP body SP body-fld-lines
    out.push(buildEnvelope(headerOf(part.message)), body(part.message, headerOf, extensible), part.bodyLines);
  } else if (text) {
    out.push(part.bodyLines);
  }
  // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
  if (extensible) out.push(part.md5, disposition(part), language(part), part.location);
  return out;
}

function body(part: MimePart, headerOf: (part: MimePart) => Buffer, extensible: boolean): ImapValue[] {
  return part.contentType.type === 'multipart' ? multipart(part, headerOf, extensible) : singlePart(part, headerOf, extensible);
}

/**
 * BODYSTRUCTURE (`extensible`) or BODY (not) of the message whose root part is `root`. `headerOf`
 * returns the header block of an encapsulated message's root (`part.message`), for its ENVELOPE.
 */
export function buildBodyStructure(root: MimePart, headerOf: (part: MimePart) => Buffer, extensible: boolean): ImapValue {
  return body(root, headerOf, extensible);
}

/** The encapsulated messages' roots whose headers `buildBodyStructure` will ask for, outermost first. */
export function encapsulatedMessages(root: MimePart): MimePart[] {
  const out: MimePart[] = [];
  const stack: MimePart[] = [root];
  while (stack.length > 0) {
    const part = stack.pop()!;
    if (isEncapsulating(part)) {
      out.push(part.message);
      stack.push(part.message);
    }
    for (let i = part.children.length - 1; i >= 0; i--) stack.push(part.children[i]);
  }
  return out;
}
