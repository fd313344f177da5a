/**
 * The generic IMAP tokenizer: one framed command (its lines and the literals between them, as
 * ./reader.ts assembled it) → `ParsedCommand` of generic tokens (RFC 9051 §4, §9 formal syntax).
 * What each argument means is left to the command modules and the grammar helpers; this file only
 * knows the shapes every command shares: atoms, quoted strings, literals, parenthesised lists and
 * the `BODY[…]<…>` section form of FETCH.
 *
 * The frame seam: `lines[i]` (without CRLF) ends with the announcement of `literals[i]` for every
 * i < literals.length; the last line ends the command. A literal token is produced where the
 * cursor reaches that announcement, and tokenizing continues at the start of the next line.
 */
import { ImapSyntaxError } from '../session/types.js';
import type { ImapToken, ParsedCommand } from './types.js';

/** Deepest list nesting accepted (a section counts as one level); bounds the recursion. */
export const MAX_LIST_DEPTH = 32;
/** Most tokens in one command (every atom, string, list and section counts). */
export const MAX_TOKENS = 100_000;

const SP = 0x20;
const LPAREN = 0x28;
const RPAREN = 0x29;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LT = 0x3c;
const GT = 0x3e;
const DOT = 0x2e;
const PLUS = 0x2b;
const TILDE = 0x7e;
const CR = 0x0d;
const LF = 0x0a;

const MAX_UINT32 = 0xffff_ffff;

/** Atoms that take a `[section]` directly after them (RFC 9051 §6.4.5, RFC 3516 §4.1). */
const SECTION_NAMES = new Set(['BODY', 'BODY.PEEK', 'BINARY', 'BINARY.PEEK', 'BINARY.SIZE']);
const MAX_SECTION_NAME = 'BINARY.PEEK'.length;

/**
 * ATOM-CHAR of RFC 9051 §9 (any CHAR except atom-specials) plus `%` and `*` (list-wildcards, and
 * `*` in sequence sets) and `]` (ASTRING-CHAR). `\` is handled by the caller (flag prefix only).
 */
function isAtomChar(b: number): boolean {
  return b > SP && b < 0x7f && b !== LPAREN && b !== RPAREN && b !== LBRACE && b !== DQUOTE && b !== BACKSLASH;
}

/** `tag = 1*<any ASTRING-CHAR except "+">` (RFC 9051 §9): no list-wildcards either. */
function isTagChar(b: number): boolean {
  return isAtomChar(b) && b !== PLUS && b !== 0x25 /* % */ && b !== 0x2a /* * */;
}

/** A literal announcement at the end of a line: `{n}`, `{n+}` (RFC 7888), `~{n}`, `~{n+}` (RFC 3516 literal8). */
export interface LiteralAnnouncement {
  /** Index in the line where the announcement (`{` or `~`) starts. */
  start: number;
  /**
   * Announced octets. Numbers too large to hold exactly are reported as `Infinity`, which is
   * over every limit (a 30-digit length is a too-big literal, never a wrapped-around number).
   */
  size: number;
  /** `{n}`: the client waits for a continuation request before sending it. */
  synchronizing: boolean;
  binary: boolean;
}

/** Parses the literal announcement that ends `line` (without CRLF), or null when it has none. */
export function literalAnnouncement(line: Buffer): LiteralAnnouncement | null {
  let i = line.length - 1;
  if (i < 2 || line[i] !== RBRACE) return null;
  i--;
  const synchronizing = line[i] !== PLUS;
  if (!synchronizing) i--;
  const digitsEnd = i + 1;
  while (i >= 0 && line[i] >= 0x30 && line[i] <= 0x39) i--;
  const digitsStart = i + 1;
  if (digitsStart === digitsEnd || i < 0 || line[i] !== LBRACE) return null;
  const binary = i > 0 && line[i - 1] === TILDE;
  const start = binary ? i - 1 : i;
  // Leading zeros do not make a number bigger; more than 15 significant digits cannot be held
  // exactly by a JS number and is anyway far over any limit.
  let first = digitsStart;
  while (first < digitsEnd - 1 && line[first] === 0x30) first++;
  const size = digitsEnd - first > 15 ? Infinity : Number(line.toString('latin1', first, digitsEnd));
  return { start, size, synchronizing, binary };
}

/**
 * The tag at the start of a command line, or null when it is missing or has a character a tag may
 * not have (the reader then answers `* BAD`).
 */
export function readTag(line: Buffer): string | null {
  let i = 0;
  while (i < line.length && isTagChar(line[i])) i++;
  if (i === 0 || (i < line.length && line[i] !== SP)) return null;
  return line.toString('latin1', 0, i);
}

/**
 * The upper-cased command word after the tag (without a `UID` prefix's second word) and the index
 * just after it and the spaces that follow, or null when there is none. The reader uses it to
 * apply the APPEND message limit.
 */
export function readCommandWord(line: Buffer): { name: string; argsStart: number } | null {
  const tag = readTag(line);
  if (tag === null) return null;
  let i = tag.length;
  while (i < line.length && line[i] === SP) i++;
  const start = i;
  while (i < line.length && isAtomChar(line[i]) && line[i] !== LBRACKET && line[i] !== RBRACKET) i++;
  if (i === start) return null;
  const name = line.toString('latin1', start, i).toUpperCase();
  while (i < line.length && line[i] === SP) i++;
  return { name, argsStart: i };
}

function describeByte(b: number): string {
  return b > SP && b < 0x7f ? `'${String.fromCharCode(b)}'` : `0x${b.toString(16).padStart(2, '0')}`;
}

/** Where the tokenizer stands: line `li`, byte `pos`. */
class Cursor {
  li = 0;
  pos = 0;
  tokens = 0;
  /** The literal announcement that ends each line but the last. */
  private readonly announcements: (LiteralAnnouncement | null)[];

  constructor(
    private readonly lines: Buffer[],
    private readonly literals: Buffer[],
  ) {
    if (lines.length !== literals.length + 1) throw new ImapSyntaxError('Malformed command frame');
    this.announcements = lines.map((line, i) => (i < literals.length ? literalAnnouncement(line) : null));
    for (let i = 0; i < literals.length; i++) {
      const a = this.announcements[i];
      if (!a || a.size !== literals[i].length) throw new ImapSyntaxError('Malformed command frame');
    }
  }

  get line(): Buffer {
    return this.lines[this.li];
  }

  atLineEnd(): boolean {
    return this.pos >= this.line.length;
  }

  atCommandEnd(): boolean {
    return this.atLineEnd() && this.li === this.lines.length - 1;
  }

  peek(): number {
    return this.line[this.pos];
  }

  /** The literal whose announcement starts here, consuming it; null when none starts here. */
  takeLiteral(): ImapToken | null {
    const a = this.announcements[this.li];
    if (!a || a.start !== this.pos) return null;
    const value = this.literals[this.li];
    this.li++;
    this.pos = 0;
    return a.binary ? { type: 'string', value, literal: true, binary: true } : { type: 'string', value, literal: true };
  }

  count(): void {
    if (++this.tokens > MAX_TOKENS) throw new ImapSyntaxError(`Too many tokens in one command (limit ${MAX_TOKENS})`);
  }

  skipSpaces(): boolean {
    const from = this.pos;
    while (!this.atLineEnd() && this.peek() === SP) this.pos++;
    return this.pos > from;
  }
}

type Closer = 'eol' | typeof RPAREN | typeof RBRACKET;

/** Reads tokens up to `closer` (consumed). Between tokens at least one SP is required. */
function readItems(c: Cursor, closer: Closer, depth: number): ImapToken[] {
  const items: ImapToken[] = [];
  let needSeparator = false;
  for (;;) {
    const spaced = c.skipSpaces();
    if (c.atLineEnd()) {
      if (closer === 'eol' && c.atCommandEnd()) return items;
      // A line ends only at a literal announcement, which takeLiteral consumes; here the list is open.
      throw new ImapSyntaxError(closer === RPAREN ? "Missing ')'" : closer === RBRACKET ? "Missing ']'" : 'Unexpected end of command');
    }
    const b = c.peek();
    if (b === closer) {
      c.pos++;
      return items;
    }
    if (b === RPAREN) throw new ImapSyntaxError("Unexpected ')'");
    if (needSeparator && !spaced) throw new ImapSyntaxError(`Missing space before ${describeByte(b)}`);
    items.push(readToken(c, closer, depth));
    needSeparator = true;
  }
}

function readToken(c: Cursor, closer: Closer, depth: number): ImapToken {
  c.count();
  const b = c.peek();
  if (b === LPAREN) {
    if (depth + 1 > MAX_LIST_DEPTH) throw new ImapSyntaxError(`Lists nested too deeply (limit ${MAX_LIST_DEPTH})`);
    c.pos++;
    return { type: 'list', items: readItems(c, RPAREN, depth + 1) };
  }
  if (b === DQUOTE) return readQuoted(c);
  if (b === LBRACE || b === TILDE) {
    const literal = c.takeLiteral();
    if (literal) return literal;
    if (b === LBRACE) throw new ImapSyntaxError("Unexpected '{' (a literal announcement must end the line)");
  }
  return readAtom(c, closer, depth);
}

/**
 * quoted = DQUOTE *QUOTED-CHAR DQUOTE (RFC 9051 §9): `\` escapes only `"` and `\`; CR, LF and NUL
 * never appear. 8-bit bytes are kept (UTF-8, RFC 6855 §3); the helper that decodes the string
 * decides what it accepts.
 */
function readQuoted(c: Cursor): ImapToken {
  const line = c.line;
  let i = c.pos + 1;
  let escaped = false;
  const start = i;
  for (; i < line.length; i++) {
    const b = line[i];
    if (b === DQUOTE) break;
    if (b === CR || b === LF || b === 0) throw new ImapSyntaxError('CR, LF or NUL in a quoted string');
    if (b === BACKSLASH) {
      const next = line[i + 1];
      if (next !== DQUOTE && next !== BACKSLASH) throw new ImapSyntaxError('Invalid escape in a quoted string');
      escaped = true;
      i++;
    }
  }
  if (i >= line.length) throw new ImapSyntaxError('Unterminated quoted string');
  c.pos = i + 1;
  if (!escaped) return { type: 'string', value: line.subarray(start, i), literal: false };
  const out = Buffer.allocUnsafe(i - start);
  let n = 0;
  for (let j = start; j < i; j++) {
    if (line[j] === BACKSLASH) j++;
    out[n++] = line[j];
  }
  return { type: 'string', value: out.subarray(0, n), literal: false };
}

/**
 * An atom (RFC 9051 §9 atom / astring / list-mailbox / flag). `\` may only start it (flags such as
 * `\Seen`, `\*`). Inside a section `]` closes the section; elsewhere it is an ASTRING-CHAR. An atom
 * named BODY, BODY.PEEK, BINARY, BINARY.PEEK or BINARY.SIZE directly followed by `[` is a section.
 */
function readAtom(c: Cursor, closer: Closer, depth: number): ImapToken {
  const line = c.line;
  const start = c.pos;
  let i = start;
  if (line[i] === BACKSLASH) i++;
  for (; i < line.length; i++) {
    const b = line[i];
    if (b === RBRACKET && closer === RBRACKET) break;
    // Only a short atom can be a section name (checking every `[` of a long atom would be quadratic).
    if (b === LBRACKET && i - start <= MAX_SECTION_NAME && SECTION_NAMES.has(line.toString('latin1', start, i).toUpperCase())) {
      c.pos = i + 1;
      return readSection(c, line.toString('latin1', start, i), depth);
    }
    if (!isAtomChar(b)) break;
  }
  if (i === start) throw new ImapSyntaxError(`Unexpected ${describeByte(line[i])}`);
  if (i === start + 1 && line[start] === BACKSLASH) throw new ImapSyntaxError("A flag needs a name after '\\'");
  if (i < line.length) {
    const b = line[i];
    const ok = b === SP || b === RPAREN || (b === RBRACKET && closer === RBRACKET);
    if (!ok) throw new ImapSyntaxError(`Unexpected ${describeByte(b)} after '${line.toString('latin1', start, i)}'`);
  }
  c.pos = i;
  return { type: 'atom', value: line.toString('latin1', start, i) };
}

/** `name[section]<partial>`: the section's tokens, then the optional `<n>` / `<n.m>`. */
function readSection(c: Cursor, name: string, depth: number): ImapToken {
  if (depth + 1 > MAX_LIST_DEPTH) throw new ImapSyntaxError(`Lists nested too deeply (limit ${MAX_LIST_DEPTH})`);
  const section = readItems(c, RBRACKET, depth + 1);
  if (c.atLineEnd() || c.peek() !== LT) return { type: 'section', name, section };
  c.pos++;
  const partial = [readUint32(c)];
  if (!c.atLineEnd() && c.peek() === DOT) {
    c.pos++;
    partial.push(readUint32(c));
  }
  if (c.atLineEnd() || c.peek() !== GT) throw new ImapSyntaxError("Missing '>' after a partial range");
  c.pos++;
  return { type: 'section', name, section, partial };
}

function readUint32(c: Cursor): number {
  const line = c.line;
  const start = c.pos;
  let i = start;
  while (i < line.length && line[i] >= 0x30 && line[i] <= 0x39) i++;
  if (i === start) throw new ImapSyntaxError('Expected a number in a partial range');
  if (i - start > 10) throw new ImapSyntaxError('Number too large in a partial range');
  const n = Number(line.toString('latin1', start, i));
  if (n > MAX_UINT32) throw new ImapSyntaxError('Number too large in a partial range');
  c.pos = i;
  return n;
}

/**
 * Tokenizes one framed command: `tag SP command-name [SP args]` (RFC 9051 §9 `command`). The name
 * is upper-cased; `UID` takes the next word with it (`UID FETCH`). Throws ImapSyntaxError.
 */
export function parseCommand(lines: Buffer[], literals: Buffer[] = []): ParsedCommand {
  const c = new Cursor(lines, literals);
  const tag = readTag(c.line);
  if (tag === null) throw new ImapSyntaxError('Missing or invalid tag');
  c.pos = tag.length;
  let name = readWord(c, 'Missing command name');
  if (name === 'UID') name = `UID ${readWord(c, 'Missing command after UID')}`;
  if (!c.atLineEnd() && c.peek() !== SP) throw new ImapSyntaxError(`Unexpected ${describeByte(c.peek())} after the command name`);
  const args = readItems(c, 'eol', 0);
  return { tag, name, args };
}

/** One SP-preceded command word (letters, digits and other atom characters), upper-cased. */
function readWord(c: Cursor, missing: string): string {
  if (!c.skipSpaces() || c.atLineEnd()) throw new ImapSyntaxError(missing);
  const line = c.line;
  const start = c.pos;
  let i = start;
  while (i < line.length && isAtomChar(line[i]) && line[i] !== LBRACKET && line[i] !== RBRACKET) i++;
  if (i === start) throw new ImapSyntaxError(missing);
  c.pos = i;
  return line.toString('latin1', start, i).toUpperCase();
}
