/**
 * Reads an Authentication-Results field value (RFC 8601 §2.2). Used to find the authserv-id of
 * fields that arrive with a message (to remove forged ones claiming to be ours, §5) and by tests
 * to check what we wrote.
 *
 *   authres-payload = [CFWS] authserv-id [ CFWS authres-version ] ( no-result / 1*resinfo ) [CFWS] CRLF
 *   resinfo         = [CFWS] ";" methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]
 *   methodspec      = [CFWS] method [CFWS] "=" [CFWS] result
 *   propspec        = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
 *
 * Pure and bounded: input longer than MAX_FIELD_LENGTH or comments nested deeper than
 * MAX_COMMENT_DEPTH are refused (null), never a deep recursion or a long scan.
 */

export interface ParsedProperty {
  ptype: string;
  property: string;
  value: string;
}

export interface ParsedResInfo {
  method: string;
  methodVersion?: string;
  result: string;
  reason?: string;
  /** Comments after the result, without parentheses. */
  comments: string[];
  properties: ParsedProperty[];
}

export interface ParsedAuthResults {
  authservId: string;
  version?: string;
  /** Empty for the `none` form. */
  results: ParsedResInfo[];
}

/** Longest field value read (RFC 5322 does not bound a folded field; 64 KiB is far beyond any real one). */
export const MAX_FIELD_LENGTH = 65536;
export const MAX_COMMENT_DEPTH = 16;

class ParseError extends Error {}

const KEYWORD = /[A-Za-z0-9-]/;
// Characters of an unquoted value: no space and no delimiter of the grammar. `=` is allowed:
// a dot-atom local-part may contain it (SRS addresses), and a value ends only at CFWS or ";".
const VALUE_CHAR = /[^\s;()"\\]/;

class Reader {
  pos = 0;
  comments: string[] = [];
  constructor(readonly text: string) {}

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): string {
    return this.text[this.pos] ?? '';
  }

  /** CFWS (RFC 5322 §3.2.2): whitespace, folding and nested comments. Comments are collected. */
  skipCfws(): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
        this.pos++;
      } else if (c === '(') {
        this.comments.push(this.comment());
      } else {
        return;
      }
    }
  }

  private comment(): string {
    let depth = 0;
    let out = '';
    do {
      const c = this.text[this.pos++];
      if (c === undefined) throw new ParseError('unterminated comment');
      if (c === '\\') {
        out += this.text[this.pos++] ?? '';
        continue;
      }
      if (c === '(') {
        depth++;
        if (depth > MAX_COMMENT_DEPTH) throw new ParseError('comments nested too deep');
        if (depth > 1) out += c;
      } else if (c === ')') {
        depth--;
        if (depth > 0) out += c;
      } else {
        out += c;
      }
    } while (depth > 0);
    return out.replace(/\s+/g, ' ').trim();
  }

  expect(c: string): void {
    if (this.peek() !== c) throw new ParseError(`expected ${JSON.stringify(c)} at ${this.pos}`);
    this.pos++;
  }

  keyword(): string {
    const start = this.pos;
    while (KEYWORD.test(this.peek())) this.pos++;
    if (this.pos === start) throw new ParseError(`expected a keyword at ${start}`);
    return this.text.slice(start, this.pos);
  }

  /** A value: quoted-string, or a run of value characters (token, address, domain). */
  value(): string {
    if (this.peek() === '"') return this.quoted();
    const start = this.pos;
    while (!this.atEnd() && VALUE_CHAR.test(this.peek())) this.pos++;
    if (this.pos === start) throw new ParseError(`expected a value at ${start}`);
    return this.text.slice(start, this.pos);
  }

  private quoted(): string {
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      const c = this.text[this.pos++];
      if (c === undefined) throw new ParseError('unterminated quoted string');
      if (c === '"') return out;
      if (c === '\\') out += this.text[this.pos++] ?? '';
      else if (c !== '\r' && c !== '\n') out += c;
    }
  }
}

function resinfo(r: Reader): ParsedResInfo {
  r.skipCfws();
  const method = r.keyword().toLowerCase();
  let methodVersion: string | undefined;
  r.skipCfws();
  if (r.peek() === '/') {
    r.pos++;
    r.skipCfws();
    methodVersion = r.keyword();
    r.skipCfws();
  }
  r.expect('=');
  r.skipCfws();
  const result = r.keyword().toLowerCase();
  r.comments = [];
  const info: ParsedResInfo = { method, result, comments: [], properties: [] };
  if (methodVersion) info.methodVersion = methodVersion;
  for (;;) {
    r.skipCfws();
    if (r.atEnd() || r.peek() === ';') break;
    const ptype = r.keyword().toLowerCase();
    r.skipCfws();
    if (ptype === 'reason' && r.peek() === '=') {
      r.pos++;
      r.skipCfws();
      info.reason = r.value();
      continue;
    }
    r.expect('.');
    r.skipCfws();
    const property = r.keyword().toLowerCase();
    r.skipCfws();
    r.expect('=');
    r.skipCfws();
    info.properties.push({ ptype, property, value: r.value() });
  }
  info.comments = r.comments;
  return info;
}

/** Parses a field value (the text after `Authentication-Results:`); null if it is not valid. */
export function parseAuthResults(value: string): ParsedAuthResults | null {
  if (value.length > MAX_FIELD_LENGTH) return null;
  const r = new Reader(value);
  try {
    r.skipCfws();
    const authservId = r.value();
    const parsed: ParsedAuthResults = { authservId, results: [] };
    r.skipCfws();
    if (/^[0-9]$/.test(r.peek())) {
      const start = r.pos;
      while (/^[0-9]$/.test(r.peek())) r.pos++;
      parsed.version = value.slice(start, r.pos);
      r.skipCfws();
    }
    r.expect(';');
    r.skipCfws();
    // RFC 8601 §2.2 no-result: "; none" and nothing else.
    if (/^none$/i.test(value.slice(r.pos).replace(/\s+$/, ''))) return parsed;
    parsed.results.push(resinfo(r));
    for (;;) {
      r.skipCfws();
      if (r.atEnd()) break;
      r.expect(';');
      r.skipCfws();
      if (r.atEnd()) break; // a trailing ";" is tolerated
      parsed.results.push(resinfo(r));
    }
    return parsed;
  } catch (err) {
    if (err instanceof ParseError) return null;
    throw err;
  }
}

/**
 * Only the authserv-id of a field value, read even when the rest does not parse: removing a
 * forged field must not depend on the forger writing the rest correctly.
 */
export function authservIdOf(value: string): string | null {
  if (value.length > MAX_FIELD_LENGTH) return null;
  const r = new Reader(value);
  try {
    r.skipCfws();
    return r.value();
  } catch (err) {
    if (err instanceof ParseError) return null;
    throw err;
  }
}
