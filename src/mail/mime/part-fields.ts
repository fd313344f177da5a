/**
 * Turns the Content-* fields of one part's header into the part's MIME properties (RFC 2045 §5–§8,
 * RFC 2183, RFC 3282, RFC 2557) and tells the parser what the part's body holds.
 */
import { decodeFileName, decodeParameters, splitStructuredValue, type DecodedParameter } from './params.js';
import { trimBytes } from './header.js';
import type { MimeContentType, MimeDefectCode, MimePart } from './structure.js';

/** The fields the structure needs; every other field is only counted while parsing. */
export const CONTENT_FIELDS: ReadonlySet<string> = new Set([
  'content-type',
  'content-transfer-encoding',
  'content-id',
  'content-description',
  'content-md5',
  'content-disposition',
  'content-language',
  'content-location',
]);

/** Which default Content-Type a part without one gets. */
export type ContentTypeDefault = 'text' | 'digest-member';

/** RFC 2045 §5.1 token: printable ASCII except tspecials. */
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;

export function defaultContentType(context: ContentTypeDefault): MimeContentType {
  // RFC 2046 §5.1.5: in a digest the default is message/rfc822; elsewhere RFC 2045 §5.2.
  return context === 'digest-member'
    ? { type: 'message', subtype: 'rfc822', params: {} }
    : { type: 'text', subtype: 'plain', params: { charset: 'us-ascii' } };
}

export interface ContentFieldResult {
  /** The multipart boundary as raw bytes, or null. */
  boundary: Buffer | null;
  defects: MimeDefectCode[];
}

function textParams(decoded: Map<string, DecodedParameter>): Record<string, string> {
  const out: Record<string, string> = {};
  // defineProperty, not assignment: a parameter named "__proto__" must stay a plain entry.
  for (const [name, value] of decoded) Object.defineProperty(out, name, { value: value.text, enumerable: true, writable: true, configurable: true });
  return out;
}

function trimTrailingSpace(bytes: Buffer | null): Buffer | null {
  if (bytes === null) return null;
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09)) end--;
  return bytes.subarray(0, end);
}

/** Header bytes as text: UTF-8 with replacement characters (RFC 6532 allows raw UTF-8). */
function text(bytes: Buffer | undefined): string | null {
  if (bytes === undefined) return null;
  return trimBytes(bytes).toString('utf8');
}

/** Fills `part` from its Content-* fields (lower-cased name → unfolded raw value bytes). */
export function applyContentFields(part: MimePart, fields: ReadonlyMap<string, Buffer>, context: ContentTypeDefault): ContentFieldResult {
  const defects: MimeDefectCode[] = [];
  let boundary: Buffer | null = null;
  let typeParams = new Map<string, DecodedParameter>();

  const contentType = fields.get('content-type');
  if (contentType !== undefined) {
    const structured = splitStructuredValue(contentType.toString('latin1'));
    const slash = structured.value.indexOf('/');
    const type = structured.value.slice(0, slash).toLowerCase();
    const subtype = structured.value.slice(slash + 1).toLowerCase();
    if (slash > 0 && TOKEN.test(type) && TOKEN.test(subtype)) {
      typeParams = decodeParameters(structured.params);
      part.contentType = { type, subtype, params: textParams(typeParams) };
      // RFC 2046 §5.1.1: a boundary cannot end in a space; one written so anyway is read without it
      // (the padding rule then lets the delimiter lines match with or without it).
      if (type === 'multipart') boundary = trimTrailingSpace(typeParams.get('boundary')?.bytes ?? null);
    } else {
      // RFC 2045 §5.2: a syntactically invalid Content-Type is treated as the default text/plain.
      defects.push('invalid-content-type');
      part.contentType = defaultContentType('text');
    }
  }

  const encoding = text(fields.get('content-transfer-encoding'));
  if (encoding) part.encoding = encoding.replace(/\([^)]*\)/g, '').trim().toLowerCase() || '7bit';
  part.id = text(fields.get('content-id'));
  part.description = text(fields.get('content-description'));
  part.md5 = text(fields.get('content-md5'));
  const location = text(fields.get('content-location'));
  // RFC 2557 §4.4.1: a folded URI is read with the folding whitespace removed.
  part.location = location === null ? null : location.replace(/[ \t\r\n]+/g, '');
  const language = text(fields.get('content-language'));
  if (language !== null) {
    const tags = language
      .replace(/\([^)]*\)/g, '')
      .split(',')
      .map((tag) => tag.trim())
      .filter((tag) => tag !== '');
    part.language = tags.length > 0 ? tags : null;
  }

  let dispositionParams = new Map<string, DecodedParameter>();
  const disposition = fields.get('content-disposition');
  if (disposition !== undefined) {
    const structured = splitStructuredValue(disposition.toString('latin1'));
    dispositionParams = decodeParameters(structured.params);
    const type = structured.value.toLowerCase();
    if (TOKEN.test(type)) part.disposition = { type, params: textParams(dispositionParams) };
  }

  const name = dispositionParams.get('filename')?.text ?? typeParams.get('name')?.text;
  if (name !== undefined) part.filename = decodeFileName(name) || null;
  return { boundary, defects };
}
