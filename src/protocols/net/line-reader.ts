/**
 * A line protocol session's input buffer (SMTP, POP3): splits command lines and hands raw bytes to
 * SMTP DATA/BDAT.
 *
 * Command lines are bounded (RFC 5321 §4.5.3.1.4: 512 octets including CRLF, or the configured
 * `max_line_length`). A line that has no LF within the limit is not buffered: its bytes are dropped
 * as they arrive and, once its LF comes, one `too-long` result stands for it (500 5.5.2), after which
 * the session reads the next line normally.
 *
 * A lone LF also ends a command line (clients in the wild send it; nothing is ambiguous about a
 * command). Inside DATA only CRLF counts (smtp/engine/data-reader.ts) — that is where lone LFs matter.
 *
 * How much is buffered in total is bounded by the session, which pauses the socket above a high
 * water mark (session.ts).
 */
const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

export type LineResult = { kind: 'line'; line: Buffer } | { kind: 'too-long' };

export class LineReader {
  private buf: Buffer = EMPTY;
  /** Dropping the rest of an over-long line until its LF. */
  private discarding = false;
  /** An over-long line ended: report it before anything after it. */
  private tooLongEnded = false;

  constructor(private readonly maxLineLength: number) {
    if (!Number.isInteger(maxLineLength) || maxLineLength < 3) throw new RangeError('maxLineLength must be an integer ≥ 3');
  }

  /** Bytes held now. */
  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.discarding) {
      const lf = chunk.indexOf(LF);
      if (lf < 0) return;
      this.discarding = false;
      this.tooLongEnded = true;
      chunk = chunk.subarray(lf + 1);
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The next command line without its line ending, `too-long`, or null when more input is needed. */
  readLine(): LineResult | null {
    if (this.tooLongEnded) {
      this.tooLongEnded = false;
      return { kind: 'too-long' };
    }
    const lf = this.buf.indexOf(LF);
    if (lf >= 0 && lf < this.maxLineLength) {
      const end = lf > 0 && this.buf[lf - 1] === CR ? lf - 1 : lf;
      const line = this.buf.subarray(0, end);
      this.buf = this.buf.subarray(lf + 1);
      return { kind: 'line', line };
    }
    if (lf >= 0) {
      this.buf = this.buf.subarray(lf + 1);
      return { kind: 'too-long' };
    }
    if (this.buf.length >= this.maxLineLength) {
      // No LF within the limit: this line is too long whatever follows; stop holding it.
      this.buf = EMPTY;
      this.discarding = true;
    }
    return null;
  }

  /** Up to `max` raw bytes (DATA, BDAT), or null when none are buffered. */
  take(max = Infinity): Buffer | null {
    if (this.buf.length === 0) return null;
    const n = Math.min(max, this.buf.length);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Puts bytes back in front (what followed the end of DATA in the same packet). */
  unshift(bytes: Buffer): void {
    if (bytes.length > 0) this.buf = this.buf.length === 0 ? bytes : Buffer.concat([bytes, this.buf]);
  }

  /** Forgets everything buffered (RFC 3207 §4.2: nothing sent before the TLS handshake counts). */
  clear(): void {
    this.buf = EMPTY;
    this.discarding = false;
    this.tooLongEnded = false;
  }
}
