/**
 * Small readers of generic tokens (./tokenizer.ts) for the command modules: each checks one
 * grammar element of RFC 9051 §9 and throws ImapSyntaxError naming `what` was expected, so a
 * handler never has to look at a token's shape itself.
 */
import { ImapSyntaxError } from '../session/types.js';
import type { ImapToken } from './types.js';

const MAX_UINT32 = 0xffff_ffff;

/** The token or a syntax error saying what was missing. */
function present(token: ImapToken | undefined, what: string): ImapToken {
  if (!token) throw new ImapSyntaxError(`Missing ${what}`);
  return token;
}

/**
 * `string` (quoted or literal, RFC 9051 §4.3) decoded as UTF-8 (RFC 6855; 7-bit clients only send
 * ASCII, which decodes the same). Not an atom.
 */
export function asString(token: ImapToken | undefined, what: string): string {
  const t = present(token, what);
  if (t.type !== 'string') throw new ImapSyntaxError(`Expected a string for ${what}`);
  return t.value.toString('utf8');
}

/** `astring` = atom / string (RFC 9051 §9), decoded as UTF-8. `NIL` is the atom "NIL" here. */
export function asAstring(token: ImapToken | undefined, what: string): string {
  return asAstringBytes(token, what).toString('utf8');
}

/** `astring` as the bytes sent (mailbox names are decoded by ./mailbox-name.ts). */
export function asAstringBytes(token: ImapToken | undefined, what: string): Buffer {
  const t = present(token, what);
  if (t.type === 'string') return t.value;
  if (t.type === 'atom') return Buffer.from(t.value, 'latin1');
  throw new ImapSyntaxError(`Expected an atom or string for ${what}`);
}

/** `nstring` = string / NIL: null for NIL. */
export function asNstring(token: ImapToken | undefined, what: string): string | null {
  const t = present(token, what);
  if (t.type === 'atom' && t.value.toUpperCase() === 'NIL') return null;
  return asString(t, what);
}

/**
 * `number` (RFC 9051 §9: 0 … 2^32-1), or up to `max` (e.g. Number.MAX_SAFE_INTEGER for the
 * `mod-sequence-value` of RFC 7162, which is 1 … 2^63-1; values past 2^53 are refused here
 * rather than rounded). Only digits: no sign, no exponent, no spaces.
 */
export function asNumber(token: ImapToken | undefined, what: string, max: number = MAX_UINT32): number {
  const t = present(token, what);
  if (t.type !== 'atom' || !/^[0-9]+$/.test(t.value)) throw new ImapSyntaxError(`Expected a number for ${what}`);
  return parseNumberText(t.value, what, max);
}

/** Digits → number, refusing anything over `max` without ever losing precision on the way. */
export function parseNumberText(digits: string, what: string, max: number = MAX_UINT32): number {
  const significant = digits.replace(/^0+(?=\d)/, '');
  if (significant.length > 16) throw new ImapSyntaxError(`Number too large for ${what}`);
  const n = Number(significant);
  if (!Number.isSafeInteger(n) || n > max) throw new ImapSyntaxError(`Number too large for ${what}`);
  return n;
}

/** An atom (case kept). */
export function asAtom(token: ImapToken | undefined, what: string): string {
  const t = present(token, what);
  if (t.type !== 'atom') throw new ImapSyntaxError(`Expected ${what}`);
  return t.value;
}

/** A parenthesised list's items. */
export function asList(token: ImapToken | undefined, what: string): ImapToken[] {
  const t = present(token, what);
  if (t.type !== 'list') throw new ImapSyntaxError(`Expected a list for ${what}`);
  return t.items;
}

/**
 * `flag` (RFC 9051 §9): `\Answered` … `\Draft`, any other `\atom` (flag-extension) or a keyword
 * atom. Atoms exclude atom-specials: `( ) { SP CTL % * " \ ]` and 8-bit. `\*` is only a
 * PERMANENTFLAGS value (flag-perm), never sent by a client; `\Recent` is refused by the caller.
 */
export function isFlag(value: string): boolean {
  return /^\\?[^\x00-\x20\x7f-\uffff(){%*"\\\]]+$/.test(value);
}

/**
 * A flag or a list of flags (`\Seen`, `(\Seen $Forwarded)`) as sent; the list may be empty.
 * Flags are kept case-sensitively as sent; system flags compare case-insensitively (RFC 9051
 * §2.3.2), which is the mailbox-state service's business.
 */
export function asFlagList(token: ImapToken | undefined): string[] {
  const t = present(token, 'flag list');
  const items = t.type === 'list' ? t.items : [t];
  return items.map((item) => {
    if (item.type !== 'atom' || !isFlag(item.value)) throw new ImapSyntaxError('Invalid flag');
    return item.value;
  });
}

/** Refuses arguments past the `n` a command takes. */
export function expectArgs(args: ImapToken[], min: number, max: number, command: string): void {
  if (args.length < min) throw new ImapSyntaxError(`Missing arguments to ${command}`);
  if (args.length > max) throw new ImapSyntaxError(`Too many arguments to ${command}`);
}
