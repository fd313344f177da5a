/**
 * SMTP command lines (RFC 5321 §4.1.1) → a typed command or the reply for a bad line. Pure: bytes in,
 * value out; no session state (whether a command is allowed *now* is session.ts's business).
 *
 * The line arrives without its CRLF and is at most `max_line_length` octets (line-reader.ts). It is
 * decoded as UTF-8 (RFC 6531 allows UTF-8 in addresses); invalid UTF-8, NUL and other control
 * characters are syntax errors. Verbs are case-insensitive (§2.4).
 */
import { BASE64 } from '../../net/sasl.js';
import { REPLIES, type SmtpReply } from '../replies.js';
import { parseForwardPath, parseReversePath, type ParsedMailbox } from './path.js';

export interface MailParams {
  /** RFC 1870 SIZE=; Infinity when the number is too large to represent. */
  size?: number;
  /** RFC 6152 BODY=; RFC 3030 BINARYMIME is not offered. */
  body?: '7BIT' | '8BITMIME';
  /** RFC 6531 SMTPUTF8. */
  smtputf8: boolean;
}

export type SmtpCommand =
  | { verb: 'EHLO' | 'HELO'; domain: string }
  | { verb: 'MAIL'; from: ParsedMailbox | null; params: MailParams }
  | { verb: 'RCPT'; to: ParsedMailbox }
  | { verb: 'DATA' | 'RSET' | 'QUIT' | 'STARTTLS' }
  | { verb: 'NOOP' | 'HELP' | 'VRFY' | 'EXPN' }
  | { verb: 'AUTH'; mechanism: string; initialResponse?: string }
  | { verb: 'BDAT'; size: number; last: boolean };

export type ParseResult = { ok: true; command: SmtpCommand } | { ok: false; reply: SmtpReply };

const decoder = new TextDecoder('utf-8', { fatal: true });
/** Anything below SP except HTAB, and DEL. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
/** esmtp-keyword ["=" esmtp-value] (RFC 5321 §4.1.2), esmtp-value widened to UTF-8 (RFC 6531 §3.3). */
const PARAM = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([^\x00-\x20=\x7f]+))?$/;
/** RFC 4954 §4: the mechanism name, and the initial response in base64 (or `=` for an empty one). */
const MECHANISM = /^[A-Za-z0-9_-]{1,20}$/;
/** BDAT chunk sizes and SIZE= values beyond this are not numbers we need to represent. */
const MAX_DIGITS = 15;

const fail = (reply: SmtpReply): ParseResult => ({ ok: false, reply });
const ok = (command: SmtpCommand): ParseResult => ({ ok: true, command });

export function parseCommand(line: Buffer): ParseResult {
  let text: string;
  try {
    text = decoder.decode(line);
  } catch {
    return fail(REPLIES.SYNTAX_ERROR);
  }
  if (CONTROL.test(text)) return fail(REPLIES.SYNTAX_ERROR);
  const space = text.indexOf(' ');
  const verb = (space < 0 ? text : text.slice(0, space)).toUpperCase();
  const args = space < 0 ? '' : text.slice(space + 1).trim();

  switch (verb) {
    case 'EHLO':
    case 'HELO':
      // Names are not verified (RFC 5321 §4.1.4: MUST NOT refuse on a mismatch); one printable word.
      return /^[\x21-\x7e\u0080-\u{10FFFF}]+$/u.test(args) ? ok({ verb, domain: args }) : fail(REPLIES.SYNTAX_ERROR);
    case 'MAIL':
      return parseMail(args);
    case 'RCPT':
      return parseRcpt(args);
    case 'DATA':
    case 'RSET':
    case 'QUIT':
    case 'STARTTLS':
      return args === '' ? ok({ verb }) : fail(REPLIES.SYNTAX_ERROR);
    case 'NOOP':
    case 'HELP':
      return ok({ verb });
    case 'VRFY':
    case 'EXPN':
      return args === '' ? fail(REPLIES.SYNTAX_ERROR) : ok({ verb });
    case 'AUTH':
      return parseAuth(args);
    case 'BDAT':
      return parseBdat(args);
    default:
      return fail(REPLIES.COMMAND_UNRECOGNIZED);
  }
}

/** `FROM:<path> [SP params]`; a space after the colon is tolerated (common, harmless). */
function splitPathAndParams(args: string, keyword: 'FROM' | 'TO'): { path: string; params: string[] } | null {
  const prefix = `${keyword}:`;
  if (args.slice(0, prefix.length).toUpperCase() !== prefix) return null;
  const rest = args.slice(prefix.length).trimStart();
  if (!rest.startsWith('<')) return null;
  // The path ends at the first `>` outside a quoted local part.
  let i = 1;
  let quoted = false;
  for (; i < rest.length; i++) {
    const c = rest[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === '>' && !quoted) break;
  }
  if (i >= rest.length) return null;
  const path = rest.slice(0, i + 1);
  const tail = rest.slice(i + 1);
  if (tail !== '' && !tail.startsWith(' ')) return null;
  return { path, params: tail.split(' ').filter((p) => p !== '') };
}

function parseMail(args: string): ParseResult {
  const parts = splitPathAndParams(args, 'FROM');
  if (!parts) return fail(REPLIES.SYNTAX_ERROR);
  const path = parseReversePath(parts.path);
  if (!path.ok) return fail(REPLIES.SENDER_BAD_SYNTAX);
  const params: MailParams = { smtputf8: false };
  const seen = new Set<string>();
  for (const raw of parts.params) {
    const m = PARAM.exec(raw);
    if (!m) return fail(REPLIES.SYNTAX_ERROR);
    const key = m[1].toUpperCase();
    const value = m[2];
    if (seen.has(key)) return fail(REPLIES.SYNTAX_ERROR);
    seen.add(key);
    if (key === 'SIZE') {
      if (value === undefined || !/^\d+$/.test(value)) return fail(REPLIES.SYNTAX_ERROR);
      params.size = value.length > MAX_DIGITS ? Infinity : Number(value);
    } else if (key === 'BODY') {
      const body = value?.toUpperCase();
      if (body !== '7BIT' && body !== '8BITMIME') return fail(REPLIES.PARAMETER_UNSUPPORTED);
      params.body = body;
    } else if (key === 'SMTPUTF8') {
      if (value !== undefined) return fail(REPLIES.SYNTAX_ERROR);
      params.smtputf8 = true;
    } else if (key === 'AUTH') {
      // RFC 4954 §5: the original submitter, sent by relaying MTAs; accepted and not trusted.
      if (value === undefined) return fail(REPLIES.SYNTAX_ERROR);
    } else {
      return fail(REPLIES.PARAMETER_UNSUPPORTED);
    }
  }
  return ok({ verb: 'MAIL', from: path.mailbox, params });
}

function parseRcpt(args: string): ParseResult {
  const parts = splitPathAndParams(args, 'TO');
  if (!parts) return fail(REPLIES.SYNTAX_ERROR);
  const to = parseForwardPath(parts.path);
  if (!to) return fail(REPLIES.RCPT_PATH_SYNTAX);
  for (const raw of parts.params) {
    if (!PARAM.test(raw)) return fail(REPLIES.SYNTAX_ERROR);
  }
  // No RCPT parameters are offered (DSN's NOTIFY/ORCPT come with the DSN extension).
  if (parts.params.length > 0) return fail(REPLIES.PARAMETER_UNSUPPORTED);
  return ok({ verb: 'RCPT', to });
}

function parseAuth(args: string): ParseResult {
  const words = args.split(' ').filter((w) => w !== '');
  if (words.length < 1 || words.length > 2 || !MECHANISM.test(words[0])) return fail(REPLIES.SYNTAX_ERROR);
  const initialResponse = words[1];
  if (initialResponse !== undefined && initialResponse !== '=' && !BASE64.test(initialResponse)) return fail(REPLIES.AUTH_BAD_BASE64);
  return ok({ verb: 'AUTH', mechanism: words[0].toUpperCase(), ...(initialResponse !== undefined ? { initialResponse } : {}) });
}

/** RFC 3030 §2: `BDAT chunk-size [SP "LAST"]`. */
function parseBdat(args: string): ParseResult {
  const m = /^(\d+)(?: +(LAST))? *$/i.exec(args);
  if (!m || m[1].length > MAX_DIGITS) return fail(REPLIES.SYNTAX_ERROR);
  return ok({ verb: 'BDAT', size: Number(m[1]), last: m[2] !== undefined });
}
