/**
 * The MIME structure of a message with byte offsets: what IMAP needs for BODYSTRUCTURE and
 * BODY[section]<partial> (RFC 9051 §6.4.5, §7.5.2) and what SMTP DATA records while the message
 * streams into the blob store. Offsets index the raw message bytes; no body bytes are kept.
 */

/** A Content-Type value (RFC 2045 §5.1): type and subtype lower-cased, parameter names lower-cased. */
export interface MimeContentType {
  type: string;
  subtype: string;
  /** Parameter values decoded to text (RFC 2231 continuations and charsets applied). */
  params: Record<string, string>;
}

/** A Content-Disposition value (RFC 2183): type lower-cased, parameter names lower-cased. */
export interface MimeDisposition {
  type: string;
  params: Record<string, string>;
}

export interface MimePart {
  /**
   * IMAP part specifier (RFC 9051 §6.4.5): '' for the root message, '1', '1.2', '2.1'… A
   * non-multipart root's body is part '1' (the root itself; see `findPart`). The root of a message
   * encapsulated in a message/rfc822 part carries that part's number, and its own parts are
   * numbered below it ('2' → '2.1', '2.2').
   */
  part: string;
  /** Byte range of the header block; `headerEnd` is the first byte after the blank line. */
  headerStart: number;
  headerEnd: number;
  /**
   * Byte range of the body. For a part of a multipart, the line break before the next boundary
   * delimiter is not part of the body (RFC 2046 §5.1.1: it belongs to the delimiter).
   */
  bodyStart: number;
  bodyEnd: number;
  /**
   * Lines in the body (BODYSTRUCTURE size in lines for text/* and message/rfc822): the number of
   * line breaks in [bodyStart, bodyEnd), plus one when the body ends with an unterminated line.
   */
  bodyLines: number;
  /**
   * Defaults: text/plain; charset=us-ascii (RFC 2045 §5.2), also for a syntactically invalid
   * Content-Type; message/rfc822 for a part of multipart/digest (RFC 2046 §5.1.5).
   */
  contentType: MimeContentType;
  /** Content-Transfer-Encoding, lower-cased; '7bit' when absent (RFC 2045 §6.1). */
  encoding: string;
  /** Content-ID, Content-Description, Content-MD5 (RFC 2045 §7, §8; RFC 1864): unfolded, undecoded. */
  id: string | null;
  description: string | null;
  md5: string | null;
  disposition: MimeDisposition | null;
  /** Content-Language tags (RFC 3282). */
  language: string[] | null;
  /** Content-Location (RFC 2557 §4), folding whitespace removed. */
  location: string | null;
  /** Decoded file name: Content-Disposition `filename`, else Content-Type `name` (RFC 2231, RFC 2047). */
  filename: string | null;
  /** The parts of a multipart, in order. Empty for a multipart whose boundary never occurs. */
  children: MimePart[];
  /** For message/rfc822 and message/global: the encapsulated message's root part. */
  message: MimePart | null;
}

/**
 * Something the message got wrong or a limit that was hit. Recorded, never thrown: a mail store
 * keeps whatever it was given, and the SMTP layer decides whether a defect is worth a rejection.
 */
export type MimeDefectCode =
  | 'header-without-colon' // a header line that is neither a field nor a continuation (kept in the header)
  | 'missing-header-separator' // a part's header was ended by a boundary or the end of the message, not a blank line
  | 'invalid-content-type' // unparsable Content-Type; text/plain assumed (RFC 2045 §5.2)
  | 'multipart-without-boundary' // multipart/* with no usable boundary parameter; kept as a leaf
  | 'boundary-too-long' // boundary longer than RFC 2046's 70 characters, still used (limit: maxBoundaryLength)
  | 'boundary-over-limit' // boundary longer than maxBoundaryLength; the multipart is kept as a leaf
  | 'boundary-not-found' // a multipart in which no delimiter line occurs
  | 'missing-close-delimiter' // a multipart ended (by an outer boundary or the end) without `--boundary--`
  | 'encoded-message' // message/rfc822 with a transfer encoding other than 7bit/8bit/binary (RFC 2046 §5.2.1); opaque
  | 'depth-limit' // nesting deeper than maxDepth: this part's content is not parsed
  | 'part-limit' // more than maxParts parts: the remaining parts of this multipart are not listed
  | 'header-too-large' // header block over maxHeaderBlockBytes: later fields are not interpreted
  | 'header-line-too-long'; // one field over maxHeaderLineBytes: that field is not interpreted

export interface MimeDefect {
  code: MimeDefectCode;
  /** Part specifier of the part concerned. */
  part: string;
  /** Byte offset where it was noticed. */
  offset: number;
}

export interface MimeStructure {
  root: MimePart;
  /** Total bytes of the message. */
  size: number;
  /** Lines of the whole message (same counting as `bodyLines`). */
  lines: number;
  /** A limit was hit; the structure below the point where it was hit is flattened or missing. */
  truncated: boolean;
  /** At most MAX_DEFECTS entries, in the order they were found. */
  defects: MimeDefect[];
}
