/**
 * POP3 command lines (RFC 1939 §3, RFC 2449 §4) → a typed command or the error the line deserves.
 * Pure: bytes in, value out; whether a command is allowed in the session's state is session.ts's
 * business, and the reply texts are in replies.ts.
 *
 * The line arrives without its line ending and is already bounded by `pop3.max_line_bytes`
 * (the line reader answers longer lines itself). Rules:
 * - Keywords are case-insensitive (RFC 1939 §3); arguments are separated by spaces. We accept runs
 *   of spaces and trailing spaces: clients in the wild send them and nothing becomes ambiguous.
 * - PASS takes the rest of the line, spaces included (RFC 1939 §7: "a POP3 server may treat spaces
 *   in the argument as part of the password").
 * - Control characters (NUL, CR, DEL, …) anywhere are syntax errors; USER and PASS may carry UTF-8
 *   (internationalised addresses and passwords), every other command is printable ASCII.
 * - A message number or TOP line count is 1–10 decimal digits; anything else is
 *   `BAD_MESSAGE_NUMBER` / `SYNTAX_ERROR`. Whether message `n` exists is the maildrop's business.
 */

export type Pop3Command =
  | { verb: 'USER'; name: string }
  | { verb: 'PASS'; password: string }
  /** RFC 5034 §4: mechanism null = `AUTH` alone (list the mechanisms); initialResponse `=` = empty. */
  | { verb: 'AUTH'; mechanism: string | null; initialResponse: string | null }
  | { verb: 'APOP' }
  | { verb: 'STAT' | 'NOOP' | 'RSET' | 'QUIT' | 'CAPA' | 'STLS' }
  | { verb: 'LIST' | 'UIDL'; msg: number | null }
  | { verb: 'RETR' | 'DELE'; msg: number }
  | { verb: 'TOP'; msg: number; lines: number };

export type Pop3Verb = Pop3Command['verb'];

export type ParseError = 'UNKNOWN_COMMAND' | 'SYNTAX_ERROR' | 'BAD_MESSAGE_NUMBER';

export type ParseResult = { ok: true; command: Pop3Command } | { ok: false; error: ParseError };

/** RFC 5321 §4.5.3.1.3 path limit: no login we know is longer. */
export const MAX_USER_LENGTH = 320;
/** RFC 4422 §3.1: SASL mechanism names are 1–20 characters of A-Z 0-9 - _. */
const MECHANISM = /^[A-Za-z0-9_-]{1,20}$/;
const NUMBER = /^[0-9]{1,10}$/;
/** C0 controls, DEL and the C1 controls. */
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const fail = (error: ParseError): ParseResult => ({ ok: false, error });
const ok = (command: Pop3Command): ParseResult => ({ ok: true, command });

export function parseCommand(line: Buffer): ParseResult {
  let text: string;
  try {
    text = utf8.decode(line);
  } catch {
    return fail('SYNTAX_ERROR');
  }
  const space = text.indexOf(' ');
  const keyword = space < 0 ? text : text.slice(0, space);
  if (!/^[A-Za-z]{3,4}$/.test(keyword)) return fail(keyword === '' ? 'SYNTAX_ERROR' : 'UNKNOWN_COMMAND');
  const verb = keyword.toUpperCase();
  const rest = space < 0 ? '' : text.slice(space + 1);
  if (verb === 'PASS') return parsePass(rest);
  if (CONTROL.test(rest)) return fail('SYNTAX_ERROR');
  if (verb !== 'USER' && !PRINTABLE_ASCII.test(rest)) return fail('SYNTAX_ERROR');
  const args = rest.split(' ').filter((a) => a !== '');

  switch (verb) {
    case 'STAT':
    case 'NOOP':
    case 'RSET':
    case 'QUIT':
    case 'CAPA':
    case 'STLS':
      return args.length === 0 ? ok({ verb }) : fail('SYNTAX_ERROR');
    case 'USER':
      return args.length === 1 && args[0].length <= MAX_USER_LENGTH ? ok({ verb, name: args[0] }) : fail('SYNTAX_ERROR');
    case 'APOP':
      // Recognised so that it gets "not supported" rather than "unknown command".
      return ok({ verb });
    case 'AUTH':
      return parseAuth(args);
    case 'LIST':
    case 'UIDL':
      if (args.length === 0) return ok({ verb, msg: null });
      if (args.length > 1) return fail('SYNTAX_ERROR');
      return NUMBER.test(args[0]) ? ok({ verb, msg: Number(args[0]) }) : fail('BAD_MESSAGE_NUMBER');
    case 'RETR':
    case 'DELE':
      if (args.length !== 1) return fail('SYNTAX_ERROR');
      return NUMBER.test(args[0]) ? ok({ verb, msg: Number(args[0]) }) : fail('BAD_MESSAGE_NUMBER');
    case 'TOP':
      if (args.length !== 2) return fail('SYNTAX_ERROR');
      if (!NUMBER.test(args[0])) return fail('BAD_MESSAGE_NUMBER');
      return NUMBER.test(args[1]) ? ok({ verb, msg: Number(args[0]), lines: Number(args[1]) }) : fail('SYNTAX_ERROR');
    default:
      return fail('UNKNOWN_COMMAND');
  }
}

function parsePass(rest: string): ParseResult {
  // NUL and line breaks cannot be part of a password a client could type; other controls neither.
  if (rest === '' || CONTROL.test(rest)) return fail('SYNTAX_ERROR');
  return ok({ verb: 'PASS', password: rest });
}

/** RFC 5034 §4: `AUTH mechanism [initial-response]`; the response is checked by the SASL decoder. */
function parseAuth(args: string[]): ParseResult {
  if (args.length === 0) return ok({ verb: 'AUTH', mechanism: null, initialResponse: null });
  if (args.length > 2 || !MECHANISM.test(args[0])) return fail('SYNTAX_ERROR');
  return ok({ verb: 'AUTH', mechanism: args[0].toUpperCase(), initialResponse: args[1] ?? null });
}
