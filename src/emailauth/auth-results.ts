/**
 * Writes the Authentication-Results header field (RFC 8601 §2.2):
 *
 *   Authentication-Results: mx.example.net;
 *    spf=pass smtp.mailfrom=alice@example.com smtp.helo=mail.example.com;
 *    dkim=pass header.d=example.com header.s=sel header.a=rsa-sha256 header.b="AbCd+/12";
 *    dmarc=pass (p=reject) header.from=example.com;
 *    arc=none
 *
 * Pure: everything that comes from the SMTP client or the message (addresses, HELO, comments)
 * is quoted or escaped here, so a hostile value can neither inject a header line (CR/LF are
 * removed) nor change the structure (quotes and parentheses are escaped).
 */

export interface ResInfo {
  /** Method keyword: spf, dkim, dmarc, arc (RFC 8601 §2.7). */
  method: string;
  /** Result keyword: pass, fail, none, … (RFC 8601 §2.7). */
  result: string;
  /** Free text shown as a CFWS comment after the result. */
  comment?: string;
  /** `ptype.property` → value, in order (RFC 8601 §2.3). */
  properties?: [string, string][];
}

export const AUTH_RESULTS_FIELD = 'Authentication-Results';

/** RFC 5322 §2.1.1: lines SHOULD be at most 78 characters, excluding CRLF. */
export const MAX_LINE = 78;

/**
 * A property value longer than this is left out: SMTP paths are at most 256 octets
 * (RFC 5321 §4.5.3.1.3), so anything longer is not a value worth reporting, and dropping it keeps
 * every line far below the 998-character limit.
 */
export const MAX_VALUE_LENGTH = 320;
const MAX_COMMENT_LENGTH = 200;

// RFC 2045 §5.1 token: any printable ASCII except SPACE and tspecials ()<>@,;:\"/[]?=
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
// RFC 5322 §3.2.3 dot-atom (the local-part form that needs no quotes), without "=", "/" and "?":
// legal there, but quoting such values keeps them readable by simpler Authentication-Results parsers.
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-^_`{|}~]+)*$/;
// RFC 1034 §3.5 name, with `_` as DNS labels for mail use it (e.g. _dmarc), or an address literal
const DOMAIN = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*)$/;

/** Drops control characters (CR, LF, NUL, …): nothing from outside reaches the header raw. */
function clean(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, '');
}

/** RFC 5322 §3.2.4 quoted-string. */
export function quoteString(text: string): string {
  return `"${clean(text).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** RFC 8601 §2.2 pvalue: a token, `local-part@domain`, `@domain`, a domain name, or else a quoted string. */
export function formatPvalue(value: string): string {
  if (TOKEN.test(value)) return value;
  const at = value.lastIndexOf('@');
  if (at >= 0) {
    const local = value.slice(0, at);
    const domain = value.slice(at + 1);
    if ((local === '' || DOT_ATOM.test(local)) && DOMAIN.test(domain)) return value;
  }
  return quoteString(value);
}

/** The authserv-id (RFC 8601 §2.5): the receiver's host name, as a token when it is one. */
export function formatAuthservId(id: string): string {
  return TOKEN.test(id) ? id : quoteString(id);
}

/** RFC 5322 §3.2.2 comment: parentheses and backslashes escaped, length bounded. */
export function formatComment(text: string): string {
  const t = clean(text).replace(/\s+/g, ' ').trim();
  const cut = t.length > MAX_COMMENT_LENGTH ? `${t.slice(0, MAX_COMMENT_LENGTH - 3)}...` : t;
  return `(${cut.replace(/[\\()]/g, (c) => `\\${c}`)})`;
}

const KEYWORD = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/;
const PROPERTY = /^[A-Za-z0-9-]+\.[A-Za-z0-9-]+$/;

/** The words of one resinfo; folding may break between any two of them. */
function resinfoWords(info: ResInfo): string[] {
  if (!KEYWORD.test(info.method) || !KEYWORD.test(info.result)) {
    throw new Error(`bad Authentication-Results method or result: ${JSON.stringify(`${info.method}=${info.result}`)}`);
  }
  const words = [`${info.method.toLowerCase()}=${info.result.toLowerCase()}`];
  if (info.comment) words.push(...formatComment(info.comment).split(' '));
  for (const [name, value] of info.properties ?? []) {
    if (!PROPERTY.test(name)) throw new Error(`bad Authentication-Results property name ${JSON.stringify(name)}`);
    if (value === '' || value.length > MAX_VALUE_LENGTH) continue;
    words.push(`${name}=${formatPvalue(value)}`);
  }
  return words;
}

/**
 * Folds words into lines (RFC 5322 §2.2.3): the first line is `prefix` followed by words, each
 * further line starts with `indent` (white space); no line exceeds `maxLine` characters unless a single word
 * is longer than a line, which then gets a line of its own (still far below 998: values are
 * bounded above).
 */
export function foldWords(prefix: string, words: string[], maxLine = MAX_LINE, indent = ' '): string[] {
  const lines: string[] = [];
  let line = prefix;
  let empty = true;
  for (const word of words) {
    if (empty || line.length + 1 + word.length <= maxLine) {
      line += ` ${word}`;
    } else {
      lines.push(line);
      line = `${indent}${word}`;
    }
    empty = false;
  }
  lines.push(line);
  return lines;
}

/**
 * The complete field, `Authentication-Results: …\r\n`, ready to prepend to the message.
 * Each resinfo starts on its own line, so a reader (or a test) sees one method per line.
 */
export function formatAuthResults(authservId: string, results: ResInfo[]): string {
  const lines = foldWords(`${AUTH_RESULTS_FIELD}:`, [`${formatAuthservId(authservId)};`]);
  if (results.length === 0) {
    // RFC 8601 §2.2 no-result
    lines[0] += ' none';
  }
  results.forEach((info, i) => {
    const words = resinfoWords(info);
    if (i < results.length - 1) words[words.length - 1] += ';';
    // A resinfo's own continuation lines are indented one more space, so each method stands out.
    lines.push(...foldWords('', words, MAX_LINE, '  '));
  });
  return `${lines.join('\r\n')}\r\n`;
}
