/**
 * Values of IMAP responses (RFC 9051 §4, §7), encoded by ./encode.ts. A response is built as a
 * tree of these and encoded once; the encoder chooses quoted string or literal for text, so no
 * caller ever formats IMAP syntax by hand.
 */
export type ImapValue =
  /** NIL */
  | null
  /** number, number64 (MODSEQ fits in a JS number: MODSEQs here stay below 2^53) */
  | number
  /**
   * A string (RFC 9051 §4.3): quoted when it can be (7-bit, or UTF-8 when the client enabled
   * UTF8=ACCEPT / IMAP4rev2, no CR/LF/NUL, short), otherwise a literal.
   */
  | string
  /** Always a literal `{n}` with these bytes (message sections). */
  | Buffer
  | { atom: string }
  /** Literal8 `~{n}` (RFC 3516 BINARY). */
  | { literal8: Buffer }
  /** Pre-encoded text, written as is (e.g. `BODY[HEADER]<0>` item names, flag lists built elsewhere). */
  | { raw: string }
  /**
   * Values written one after another with no space between them, where the grammar has none:
   * `1*body` in a multipart BODYSTRUCTURE and `1*address` in an ENVELOPE address list (RFC 9051 §9),
   * e.g. `[{ concat: [[…], […]] }]` → `((…)(…))`.
   */
  | { concat: ImapValue[] }
  | ImapValue[];

export interface EncodeOptions {
  /** Client enabled UTF8=ACCEPT or IMAP4rev2: UTF-8 may appear in quoted strings (RFC 6855 §3). */
  utf8: boolean;
}
