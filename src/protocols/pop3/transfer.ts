/**
 * The body of a RETR or TOP response (RFC 1939 §3, §7 TOP), produced chunk by chunk so a message is
 * never held in memory whole. Pure and stateful: feed the stored bytes with `push`, then `finish`.
 *
 * - Line ends become CRLF: a bare LF or a bare CR (stored by a non-conforming sender) ends a line
 *   too, so the client never sees a lone CR or LF (RFC 1939 §3: "lines terminated by CRLF").
 * - Byte-stuffing: a line that starts with "." gets one more "." (RFC 1939 §3), so only the final
 *   ".\r\n" can end the response.
 * - TOP n: the header, the empty line after it and the first n lines of the body; `done` turns true
 *   once they are out, and the caller stops reading.
 * - A message whose last line has no line end gets one before the terminating ".".
 */
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_BUF = Buffer.from('.');
const TERMINATOR = Buffer.from('.\r\n');

export class MessageTransfer {
  private lineStart = true;
  private pendingCR = false;
  private inHeader = true;
  private bodyLines = 0;
  private finished = false;
  private out: Buffer[] = [];

  /** `bodyLineLimit`: TOP's line count; undefined = the whole message (RETR). */
  constructor(private readonly bodyLineLimit?: number) {}

  /** True once TOP has produced everything it needs; further input is ignored. */
  done = false;

  /** The encoded bytes for this chunk of the stored message (possibly empty). */
  push(chunk: Buffer): Buffer {
    let i = 0;
    const n = chunk.length;
    // Positions of the next CR and LF at or after i, searched natively and only once per position.
    let nextCR = -2;
    let nextLF = -2;
    while (i < n && !this.done) {
      if (this.pendingCR) {
        this.pendingCR = false;
        this.endLine();
        if (chunk[i] === LF) i++;
        continue;
      }
      if (nextCR !== -1 && nextCR < i) nextCR = chunk.indexOf(CR, i);
      if (nextLF !== -1 && nextLF < i) nextLF = chunk.indexOf(LF, i);
      const end = nextCR < 0 ? (nextLF < 0 ? n : nextLF) : nextLF < 0 ? nextCR : Math.min(nextCR, nextLF);
      if (end > i) this.content(chunk.subarray(i, end));
      if (end === n) break;
      if (chunk[end] === CR) {
        if (end + 1 < n) {
          this.endLine();
          i = chunk[end + 1] === LF ? end + 2 : end + 1;
        } else {
          // CR at the end of the chunk: whether LF follows is only known with the next chunk.
          this.pendingCR = true;
          i = end + 1;
        }
      } else {
        this.endLine();
        i = end + 1;
      }
    }
    return this.take();
  }

  /** The rest: a pending line end, a CRLF for an unterminated last line, and ".\r\n". */
  finish(): Buffer {
    if (this.finished) return Buffer.alloc(0);
    this.finished = true;
    if (!this.done) {
      if (this.pendingCR) {
        this.pendingCR = false;
        this.endLine();
      }
      if (!this.lineStart) this.out.push(CRLF);
    }
    this.out.push(TERMINATOR);
    return this.take();
  }

  private content(bytes: Buffer): void {
    if (this.lineStart && bytes[0] === DOT) this.out.push(DOT_BUF);
    this.out.push(bytes);
    this.lineStart = false;
  }

  private endLine(): void {
    this.out.push(CRLF);
    const empty = this.lineStart;
    this.lineStart = true;
    if (this.bodyLineLimit === undefined) return;
    if (this.inHeader) {
      if (!empty) return;
      // RFC 5322 §2.1: the first empty line separates the header from the body.
      this.inHeader = false;
      if (this.bodyLineLimit === 0) this.done = true;
      return;
    }
    this.bodyLines++;
    if (this.bodyLines >= this.bodyLineLimit) this.done = true;
  }

  private take(): Buffer {
    if (this.out.length === 0) return Buffer.alloc(0);
    const bytes = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out);
    this.out = [];
    return bytes;
  }
}
