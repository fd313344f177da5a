/**
 * Pure parsing of what an SMTP server says to our client (SPEC §5.2): replies and EHLO keywords.
 * No I/O here; session.ts feeds the socket's bytes in and takes whole replies out.
 *
 * Replies (RFC 5321 §4.2): `ddd-text` on every line but the last, `ddd text` (or a bare `ddd`) on
 * the last; every line carries the same code (§4.2.1). A reply line is bounded to 4 KiB and a reply
 * to 100 lines: RFC 5321 §4.5.3.1.5 allows 512 octets per reply line, so anything far beyond that is
 * a broken or hostile peer, and an unbounded buffer would let it make us hold any amount of memory.
 * Enhanced status codes (RFC 2034 §4, RFC 3463 §2) start each line's text, `class.subject.detail`,
 * with the class equal to the reply's first digit.
 */
import type { SmtpClientReply } from '../../../outbound/types.js';

/** Longest reply line we accept, including CRLF. */
export const MAX_REPLY_LINE_BYTES = 4096;
/** Most lines we accept in one (multi-line) reply. */
export const MAX_REPLY_LINES = 100;

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

/** A reply with its raw lines kept for the transcript and for EHLO keyword parsing. */
export interface ParsedReply extends SmtpClientReply {
  /** Each line's text after `ddd-`/`ddd ` (enhanced code not removed), in order. */
  lines: string[];
}

/** The server broke the reply syntax or its bounds: the connection cannot be trusted any further. */
export class ReplyProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplyProtocolError';
  }
}

const LINE_RE = /^([2-5][0-9][0-9])(?:([ -])(.*))?$/s;
const ENHANCED_RE = /^([245])\.(\d{1,3})\.(\d{1,3})(?: +|$)/;

/**
 * Incremental reply parser: `push` bytes as they arrive (any chunking), then take replies with
 * `next()`. After a ReplyProtocolError the parser stays failed (every call throws it again).
 */
export class ReplyParser {
  private buf: Buffer = EMPTY;
  private pending: { code: number; lines: string[] } | null = null;
  private readonly ready: ParsedReply[] = [];
  private failure: ReplyProtocolError | null = null;

  /** Adds received bytes; throws ReplyProtocolError when they break the syntax or the bounds. */
  push(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    try {
      this.drainLines();
    } catch (err) {
      this.failure = err as ReplyProtocolError;
      throw err;
    }
  }

  /** The next complete reply, or null when more bytes are needed. */
  next(): ParsedReply | null {
    if (this.failure) throw this.failure;
    return this.ready.shift() ?? null;
  }

  /** Whether bytes of an unfinished reply are held (the server is mid-reply). */
  get partial(): boolean {
    return this.buf.length > 0 || this.pending !== null;
  }

  /** Whole replies parsed and not yet taken. */
  get queued(): number {
    return this.ready.length;
  }

  /** Drops everything held (RFC 3207 §4.2: nothing received before the TLS handshake counts after it). */
  reset(): void {
    this.buf = EMPTY;
    this.pending = null;
    this.ready.length = 0;
    this.failure = null;
  }

  private drainLines(): void {
    for (;;) {
      const lf = this.buf.indexOf(LF);
      if (lf < 0) {
        if (this.buf.length >= MAX_REPLY_LINE_BYTES) throw new ReplyProtocolError(`reply line longer than ${MAX_REPLY_LINE_BYTES} bytes`);
        return;
      }
      if (lf + 1 > MAX_REPLY_LINE_BYTES) throw new ReplyProtocolError(`reply line longer than ${MAX_REPLY_LINE_BYTES} bytes`);
      const end = lf > 0 && this.buf[lf - 1] === CR ? lf - 1 : lf;
      const line = this.buf.subarray(0, end).toString('utf8');
      this.buf = this.buf.subarray(lf + 1);
      this.takeLine(line);
    }
  }

  private takeLine(line: string): void {
    const m = LINE_RE.exec(line);
    if (!m) throw new ReplyProtocolError(`malformed reply line: ${JSON.stringify(line.slice(0, 80))}`);
    const code = Number(m[1]);
    const last = m[2] !== '-';
    const text = m[3] ?? '';
    if (this.pending && this.pending.code !== code) {
      // RFC 5321 §4.2.1: every line of a multi-line reply has the same code.
      throw new ReplyProtocolError(`reply code changed inside a multi-line reply (${this.pending.code} then ${code})`);
    }
    const pending = (this.pending ??= { code, lines: [] });
    pending.lines.push(text);
    if (pending.lines.length > MAX_REPLY_LINES) throw new ReplyProtocolError(`reply longer than ${MAX_REPLY_LINES} lines`);
    if (!last) return;
    this.pending = null;
    this.ready.push(buildReply(pending.code, pending.lines));
  }
}

/** The reply's enhanced code (when the first line has one of the reply's class) and its joined text. */
export function buildReply(code: number, lines: string[]): ParsedReply {
  const cls = String(code)[0];
  const first = ENHANCED_RE.exec(lines[0] ?? '');
  const enhanced = first && first[1] === cls ? `${first[1]}.${first[2]}.${first[3]}` : null;
  const texts = lines.map((l) => {
    if (!enhanced) return l;
    const m = ENHANCED_RE.exec(l);
    // RFC 2034 §4: each line repeats the code; strip it where it is the same one.
    return m && `${m[1]}.${m[2]}.${m[3]}` === enhanced ? l.slice(m[0].length) : l;
  });
  return { code, enhanced, text: texts.join(' ').trim(), lines };
}

/** How a reply line appears in the transcript: exactly as it came over the wire (without CRLF). */
export function replyWireLines(reply: ParsedReply): string[] {
  return reply.lines.map((text, i) => `${reply.code}${i === reply.lines.length - 1 ? ' ' : '-'}${text}`.trimEnd());
}

// ── EHLO ───────────────────────────────────────────────────────────────────────────────────────

/** What the server offered in its EHLO reply (RFC 5321 §4.1.1.1; everything false after HELO). */
export interface ServerCapabilities {
  /** The EHLO reply was received (false after a HELO fallback). */
  esmtp: boolean;
  /** RFC 1870: SIZE offered; `maxSize` 0 = offered without a fixed maximum. */
  size: boolean;
  maxSize: number;
  pipelining: boolean; // RFC 2920
  starttls: boolean; // RFC 3207
  eightBitMime: boolean; // RFC 6152
  smtputf8: boolean; // RFC 6531
  enhancedStatusCodes: boolean; // RFC 2034
  chunking: boolean; // RFC 3030
  dsn: boolean; // RFC 3461
  /** RFC 4954 SASL mechanisms, upper case. */
  auth: string[];
}

export function noCapabilities(): ServerCapabilities {
  return {
    esmtp: false,
    size: false,
    maxSize: 0,
    pipelining: false,
    starttls: false,
    eightBitMime: false,
    smtputf8: false,
    enhancedStatusCodes: false,
    chunking: false,
    dsn: false,
    auth: [],
  };
}

/**
 * Reads the keywords of a 250 EHLO reply. The first line is the server's name and greeting, the
 * others `KEYWORD [params]` (case-insensitive, RFC 5321 §4.1.1.1). `AUTH=PLAIN LOGIN` is the
 * pre-standard form some servers still send next to `AUTH` (RFC 4954 predecessors); both count.
 * Unknown keywords and unparsable SIZE values are ignored.
 */
export function parseEhlo(lines: string[]): ServerCapabilities {
  const caps = noCapabilities();
  caps.esmtp = true;
  const auth = new Set<string>();
  for (const line of lines.slice(1)) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    const [rawKeyword, ...params] = trimmed.split(/\s+/);
    let keyword = rawKeyword.toUpperCase();
    if (keyword.startsWith('AUTH=')) {
      params.unshift(keyword.slice(5));
      keyword = 'AUTH';
    }
    switch (keyword) {
      case 'SIZE': {
        caps.size = true;
        const n = params[0] !== undefined && /^\d+$/.test(params[0]) ? Number(params[0]) : 0;
        caps.maxSize = Number.isSafeInteger(n) ? n : 0;
        break;
      }
      case 'PIPELINING':
        caps.pipelining = true;
        break;
      case 'STARTTLS':
        caps.starttls = true;
        break;
      case '8BITMIME':
        caps.eightBitMime = true;
        break;
      case 'SMTPUTF8':
        caps.smtputf8 = true;
        break;
      case 'ENHANCEDSTATUSCODES':
        caps.enhancedStatusCodes = true;
        break;
      case 'CHUNKING':
        caps.chunking = true;
        break;
      case 'DSN':
        caps.dsn = true;
        break;
      case 'AUTH':
        for (const p of params) if (p) auth.add(p.toUpperCase());
        break;
      default:
        break;
    }
  }
  caps.auth = [...auth];
  return caps;
}
