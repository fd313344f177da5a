/**
 * RFC 5322 §3.4 address lists (with the obsolete forms of §4.4 that real mail still uses) parsed
 * into the four fields of an IMAP ENVELOPE address (RFC 9051 §7.5.2): display name, source route,
 * mailbox (local part) and host. Nothing is decoded: RFC 2047 encoded words stay as written.
 *
 * Lenient and linear: whatever the input, it returns something and never throws. Like Dovecot, a
 * missing local part or domain is filled in with MISSING_MAILBOX / MISSING_DOMAIN, because a NIL
 * host in an ENVELOPE address means "group marker".
 */

export interface EnvelopeAddress {
  name: string | null;
  /** Source route (obs-route) without the final ':', e.g. "@relay1,@relay2". */
  route: string | null;
  mailbox: string | null;
  host: string | null;
}

export const MISSING_MAILBOX = 'MISSING_MAILBOX';
export const MISSING_DOMAIN = 'MISSING_DOMAIN';

type Token =
  | { kind: 'word'; text: string; raw: string; space: boolean }
  | { kind: 'special'; ch: string; space: boolean }
  | { kind: 'literal'; raw: string; space: boolean };

/** Characters that end an atom (RFC 5322 §3.2.3 specials, whitespace, and comment start). */
const BREAK = new Set([' ', '\t', '\r', '\n', '(', '<', '>', '@', ',', ';', ':', '.', '"', '[']);
const SPECIALS = new Set(['<', '>', '@', ',', ';', ':', '.']);

interface Tokens {
  tokens: Token[];
  /** Comment text by index of the token it precedes (tokens.length: after the last token). */
  comments: Map<number, string>;
}

/** RFC 5322 §3.2.2 comment starting at `pos` (nested, quoted-pairs); returns its text and end. */
function readComment(s: string, pos: number): { text: string; end: number } {
  let depth = 0;
  let text = '';
  for (let i = pos; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) {
      text += s[++i];
      continue;
    }
    if (c === '(') {
      if (depth++ > 0) text += c;
    } else if (c === ')') {
      if (--depth === 0) return { text, end: i + 1 };
      text += c;
    } else {
      text += c;
    }
  }
  return { text, end: s.length };
}

function tokenize(s: string): Tokens {
  const tokens: Token[] = [];
  const comments = new Map<number, string>();
  let space = false;
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      space = true;
      i++;
    } else if (c === '(') {
      const { text, end } = readComment(s, i);
      const at = tokens.length;
      const trimmed = text.trim();
      if (trimmed !== '' && !comments.has(at)) comments.set(at, trimmed);
      space = true;
      i = end;
    } else if (c === '"') {
      // RFC 5322 §3.2.4: quoted-pairs are unescaped; an unterminated string runs to the end.
      let text = '';
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length) j++;
        if (s[j] !== '\r' && s[j] !== '\n') text += s[j];
      }
      const end = Math.min(j + 1, s.length);
      tokens.push({ kind: 'word', text, raw: s.slice(i, end), space });
      space = false;
      i = end;
    } else if (c === '[') {
      const close = s.indexOf(']', i);
      const end = close < 0 ? s.length : close + 1;
      tokens.push({ kind: 'literal', raw: s.slice(i, end).replace(/[\r\n]/g, ''), space });
      space = false;
      i = end;
    } else if (SPECIALS.has(c)) {
      tokens.push({ kind: 'special', ch: c, space });
      space = false;
      i++;
    } else {
      let j = i;
      while (j < s.length && !BREAK.has(s[j])) j++;
      const text = s.slice(i, j);
      tokens.push({ kind: 'word', text, raw: text, space });
      space = false;
      i = j;
    }
  }
  return { tokens, comments };
}

/** Display-name words: quoted strings unquoted, words separated by one space where the source had any. */
function phrase(tokens: Token[]): string {
  let out = '';
  for (const t of tokens) {
    const text = t.kind === 'word' ? t.text : t.kind === 'special' ? t.ch : t.raw;
    if (out !== '' && t.space) out += ' ';
    out += text;
  }
  return out;
}

/** Local parts and domains are written without the whitespace and comments around their dots. */
function compact(tokens: Token[]): string {
  return tokens.map((t) => (t.kind === 'word' ? t.raw : t.kind === 'special' ? t.ch : t.raw)).join('');
}

class AddressListParser {
  private i = 0;
  private readonly out: EnvelopeAddress[] = [];
  private inGroup = false;

  constructor(private readonly tokens: Token[], private readonly comments: Map<number, string>) {}

  parse(): EnvelopeAddress[] {
    while (this.i < this.tokens.length) {
      const t = this.tokens[this.i];
      if (this.isSpecial(t, ',')) {
        this.i++;
      } else if (this.isSpecial(t, ';')) {
        this.i++;
        this.endGroup();
      } else {
        const before = this.i;
        this.address();
        if (this.i === before) this.i++; // a stray '>' or the like: skip it, always make progress
      }
    }
    this.endGroup();
    return this.out;
  }

  private isSpecial(t: Token | undefined, ch: string): boolean {
    return t !== undefined && t.kind === 'special' && t.ch === ch;
  }

  /** Collects tokens until one of the given specials (not consumed) or the end. */
  private until(stops: string): Token[] {
    const start = this.i;
    while (this.i < this.tokens.length) {
      const t = this.tokens[this.i];
      if (t.kind === 'special' && stops.includes(t.ch)) break;
      this.i++;
    }
    return this.tokens.slice(start, this.i);
  }

  /** The first comment among tokens [from, to], used as a name when there is no display name (Dovecot does the same). */
  private commentIn(from: number, to: number): string | null {
    for (let k = from; k <= to; k++) {
      const c = this.comments.get(k);
      if (c !== undefined) return c;
    }
    return null;
  }

  private address(): void {
    const start = this.i;
    const words = this.until('<:@,;>');
    const next = this.tokens[this.i];
    if (this.isSpecial(next, '<')) return this.angle(start, phrase(words));
    if (this.isSpecial(next, ':')) {
      // group = display-name ":" [group-list] ";" (RFC 5322 §3.4): start marker holds the name.
      this.i++;
      this.endGroup();
      this.out.push({ name: null, route: null, mailbox: phrase(words), host: null });
      this.inGroup = true;
      return;
    }
    if (this.isSpecial(next, '@')) {
      this.i++;
      const domain = this.until('<,;>');
      if (this.isSpecial(this.tokens[this.i], '<')) {
        // `user@example.com <user@example.com>`: an unquoted display name with an '@' in it.
        return this.angle(start, phrase(this.tokens.slice(start, this.i)));
      }
      this.push(null, null, compact(words), compact(domain), start);
      return;
    }
    // ',' ';' '>' or the end: a local part without a domain (`To: alice`).
    if (words.length > 0) this.push(null, null, compact(words), '', start);
  }

  /** angle-addr = "<" [obs-route] addr-spec ">" (RFC 5322 §3.4, §4.4). */
  private angle(start: number, name: string): void {
    this.i++; // '<'
    let route: string | null = null;
    if (this.isSpecial(this.tokens[this.i], '@')) {
      // obs-route = obs-domain-list ":" — only if a ':' comes before the '>'.
      const save = this.i;
      const routeTokens = this.until(':>');
      if (this.isSpecial(this.tokens[this.i], ':')) {
        route = compact(routeTokens);
        this.i++;
      } else {
        this.i = save;
      }
    }
    const local = this.until('@>,;');
    let domain: Token[] = [];
    if (this.isSpecial(this.tokens[this.i], '@')) {
      this.i++;
      domain = this.until('>,;');
    }
    if (this.isSpecial(this.tokens[this.i], '>')) this.i++;
    // Anything up to the next separator is ignored (a trailing comment may still give a name).
    this.until(',;');
    this.push(name === '' ? null : name, route, compact(local), compact(domain), start);
  }

  private push(name: string | null, route: string | null, mailbox: string, host: string, start: number): void {
    const comment = name === null ? this.commentIn(start, this.i) : null;
    this.out.push({
      name: name ?? comment,
      route,
      mailbox: mailbox === '' ? MISSING_MAILBOX : mailbox,
      host: host === '' ? MISSING_DOMAIN : host,
    });
  }

  private endGroup(): void {
    if (!this.inGroup) return;
    this.out.push({ name: null, route: null, mailbox: null, host: null });
    this.inGroup = false;
  }
}

/** The addresses of an address-list field value (From, To, Cc…), group markers included. */
export function parseAddressList(value: string): EnvelopeAddress[] {
  const { tokens, comments } = tokenize(value);
  return new AddressListParser(tokens, comments).parse();
}
