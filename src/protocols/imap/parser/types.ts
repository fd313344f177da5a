/**
 * The IMAP command syntax tree (RFC 9051 §9 formal syntax; RFC 3501 §9), shared by the pure parser
 * (this folder) and the command modules (../commands/). The parser turns bytes into a
 * `ParsedCommand` of generic tokens; each command module interprets its own arguments with the
 * grammar helpers of this folder (sequence sets, fetch items, search keys, dates, mailbox names).
 */

/** One argument of a command, as the generic tokenizer sees it. */
export type ImapToken =
  /** An atom, number, sequence set, flag (`\Seen`), `NIL`, `*`, `$`… exactly as sent (case kept). */
  | { type: 'atom'; value: string }
  /**
   * A quoted string or a literal (`{n}`, `{n+}`; `~{n}` / `~{n+}` is a literal8 with `binary: true`,
   * RFC 3516 §4.2). Bytes as sent: mailbox names and search strings are decoded by their grammar
   * helper, message literals (APPEND) are stored as they are.
   */
  | { type: 'string'; value: Buffer; literal: boolean; binary?: boolean }
  | { type: 'list'; items: ImapToken[] }
  /**
   * An atom directly followed by `[…]` and optionally `<…>` (fetch items such as
   * `BODY.PEEK[HEADER.FIELDS (Subject)]<0.100>`, `BINARY[1.2]`, `BINARY.SIZE[2]`). `name` is the
   * atom before `[` (case kept), `section` the tokens between the brackets, `partial` the raw
   * numbers inside `<>` (`<5>` → [5]; `<0.100>` → [0, 100]).
   */
  | { type: 'section'; name: string; section: ImapToken[]; partial?: number[] };

export interface ParsedCommand {
  tag: string;
  /** Upper-cased command name; `UID FETCH`, `UID STORE`… for UID-prefixed commands. */
  name: string;
  args: ImapToken[];
}

/** `*` is the largest number in use (RFC 9051 §6.4.8: in a UID set, the largest UID in use). */
export type SeqNumber = number | '*';

export type SequenceSet =
  /** Ranges as written (`from` may be greater than `to`: `4:2` is 2, 3, 4). */
  | { kind: 'ranges'; ranges: { from: SeqNumber; to: SeqNumber }[] }
  /** `$`: the result saved by SEARCH RETURN (SAVE) (RFC 5182 §2.1). */
  | { kind: 'saved' };

/** A BODY[section] specifier (RFC 9051 §6.4.5). `part: []` is the whole message. */
export interface SectionSpec {
  part: number[];
  text?: 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';
  /** Upper-cased field names for HEADER.FIELDS and HEADER.FIELDS.NOT. */
  fields?: string[];
}

export interface Partial {
  start: number;
  /** Absent for `<start>` in a response; requests always carry a length. */
  length: number;
}

export type FetchItem =
  | { kind: 'FLAGS' | 'UID' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'MODSEQ' | 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT' | 'SAVEDATE' | 'EMAILID' | 'THREADID' }
  /** `BODY` without a section is the non-extensible BODYSTRUCTURE (RFC 9051 §6.4.5). */
  | { kind: 'BODY-STRUCTURE-SHORT' }
  | { kind: 'BODY'; peek: boolean; section: SectionSpec; partial?: Partial }
  /** RFC 3516 BINARY[part]<partial> and BINARY.PEEK; `part` as in SectionSpec. */
  | { kind: 'BINARY'; peek: boolean; part: number[]; partial?: Partial }
  | { kind: 'BINARY.SIZE'; part: number[] };

export interface FetchRequest {
  items: FetchItem[];
  /** RFC 7162 §3.1.4 CHANGEDSINCE modifier. */
  changedSince?: number;
  /** RFC 7162 §3.2.6 VANISHED modifier (UID FETCH only, with CHANGEDSINCE). */
  vanished?: boolean;
}

export type TextSearchField = 'BCC' | 'BODY' | 'CC' | 'FROM' | 'SUBJECT' | 'TEXT' | 'TO';
export type DateSearchField = 'BEFORE' | 'ON' | 'SINCE' | 'SENTBEFORE' | 'SENTON' | 'SENTSINCE';

export type SearchKey =
  | { op: 'all' }
  /** A system flag (`\Seen`…) or keyword; `set: false` for UNSEEN, UNKEYWORD… NEW/OLD/RECENT map to \Recent. */
  | { op: 'flag'; flag: string; set: boolean }
  | { op: 'seq'; set: SequenceSet }
  | { op: 'uid'; set: SequenceSet }
  /** Decoded with the command's CHARSET (UTF-8 or US-ASCII). */
  | { op: 'text'; field: TextSearchField; value: string }
  /** Field name as sent; an empty value matches every message that has the field (RFC 9051 §6.4.4). */
  | { op: 'header'; name: string; value: string }
  /** `date`: the day as 'YYYY-MM-DD' (dates in SEARCH have no time or zone; RFC 9051 §6.4.4). */
  | { op: 'date'; field: DateSearchField; date: string }
  | { op: 'size'; cmp: 'LARGER' | 'SMALLER'; size: number }
  /** RFC 5032 WITHIN: OLDER/YOUNGER n seconds. */
  | { op: 'age'; cmp: 'OLDER' | 'YOUNGER'; seconds: number }
  /** RFC 7162 §3.1.5; entry-name/entry-type-req are parsed and ignored (per-flag MODSEQs are not kept). */
  | { op: 'modseq'; modseq: number }
  | { op: 'not'; key: SearchKey }
  | { op: 'or'; a: SearchKey; b: SearchKey }
  | { op: 'and'; keys: SearchKey[] };

export type SearchReturnOption = 'MIN' | 'MAX' | 'ALL' | 'COUNT' | 'SAVE';

export interface SearchRequest {
  /** RFC 4731 RETURN (…); absent = classic `* SEARCH` response. `RETURN ()` = `['ALL']`. */
  returnOptions?: SearchReturnOption[];
  charset: 'UTF-8' | 'US-ASCII';
  key: SearchKey;
}

export type StoreMode = 'replace' | 'add' | 'remove';

export interface StoreRequest {
  mode: StoreMode;
  silent: boolean;
  flags: string[];
  /** RFC 7162 §3.1.3 UNCHANGEDSINCE. */
  unchangedSince?: number;
}
