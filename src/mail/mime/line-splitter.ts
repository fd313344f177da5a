/**
 * Splits a byte stream into lines for the structure parser without keeping the stream: a line that
 * lies inside one chunk is handed over as a view of that chunk; only a line cut by a chunk border
 * is copied, and only as many of its bytes as the parser said it may need (its retention cap).
 *
 * Lines end with LF; a CR before the LF belongs to the line break (RFC 5322 §2.1 says CRLF, and
 * LF-only mail is common enough to accept). A CR elsewhere is an ordinary byte.
 */

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;

/** How much of a line that is cut by a chunk border is kept. */
export interface Retention {
  /** Bytes kept at most; the rest of the line is only counted. */
  cap: number;
  /** Keep bytes only while the line can still be a boundary delimiter (it starts with "--"). */
  dashOnly: boolean;
}

export interface LineSink {
  /** Asked when a line starts that does not end in the current chunk. */
  retention(): Retention;
  /**
   * One line. `buf[start, end)` is the retained part of its content (without the line break);
   * `length` is the content's true length, so `end - start < length` means it was cut short.
   * `eol` is 2 (CRLF), 1 (LF) or 0 (the last line, unterminated). `lineStart` is its stream offset.
   */
  line(buf: Buffer, start: number, end: number, length: number, eol: number, lineStart: number): void;
}

export class LineSplitter {
  /** Stream offset of the next byte to be written. */
  private offset = 0;
  private lastByte = -1;
  private carry: Buffer = Buffer.alloc(0);
  /** Bytes of the partial line kept in `carry`. */
  private carryLength = 0;
  /** Bytes of the partial line seen so far (kept or not). */
  private carryTotal = 0;
  private carryStart = 0;
  private carryCap = 0;
  private carryDashOnly = false;

  constructor(private readonly sink: LineSink) {}

  /** Bytes written so far. */
  get size(): number {
    return this.offset;
  }

  /** Memory held for partial lines. */
  retainedBytes(): number {
    return this.carry.length;
  }

  /** Drops a large carry buffer between lines (after a long header line, for instance). */
  releaseCarry(): void {
    if (this.carryTotal === 0 && this.carry.length > 4096) this.carry = Buffer.alloc(0);
  }

  write(chunk: Buffer): void {
    const length = chunk.length;
    let pos = 0;
    while (pos < length) {
      const lf = chunk.indexOf(LF, pos);
      if (lf < 0) {
        this.keep(chunk, pos, length);
        break;
      }
      if (this.carryTotal === 0) {
        const eol = lf > pos && chunk[lf - 1] === CR ? 2 : 1;
        const contentEnd = lf + 1 - eol;
        this.sink.line(chunk, pos, contentEnd, contentEnd - pos, eol, this.offset + pos);
      } else {
        this.keep(chunk, pos, lf);
        const cr = (lf > pos ? chunk[lf - 1] : this.lastByte) === CR;
        const contentLength = this.carryTotal - (cr ? 1 : 0);
        const start = this.carryStart;
        this.carryTotal = 0;
        this.sink.line(this.carry, 0, Math.min(this.carryLength, contentLength), contentLength, cr ? 2 : 1, start);
        this.carryLength = 0;
      }
      pos = lf + 1;
    }
    if (length > 0) this.lastByte = chunk[length - 1];
    this.offset += length;
  }

  /** Hands over the last line if it has no line break. */
  end(): void {
    if (this.carryTotal === 0) return;
    const total = this.carryTotal;
    this.carryTotal = 0;
    this.sink.line(this.carry, 0, this.carryLength, total, 0, this.carryStart);
    this.carryLength = 0;
  }

  /** Adds chunk[from, to) to the partial line, keeping what the retention allows. */
  private keep(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    if (this.carryTotal === 0) {
      this.carryStart = this.offset + from;
      const retention = this.sink.retention();
      this.carryCap = retention.cap;
      this.carryDashOnly = retention.dashOnly;
    }
    // Bytes are kept only while they are contiguous from the line start.
    if (this.carryLength === this.carryTotal && this.carryLength < this.carryCap) {
      const take = Math.min(this.carryCap - this.carryLength, to - from);
      const needed = this.carryLength + take;
      if (needed > this.carry.length) {
        const grown = Buffer.allocUnsafe(Math.min(this.carryCap, Math.max(256, needed, this.carry.length * 2)));
        this.carry.copy(grown, 0, 0, this.carryLength);
        this.carry = grown;
      }
      chunk.copy(this.carry, this.carryLength, from, from + take);
      this.carryLength += take;
      if (this.carryDashOnly && this.carryLength >= 2 && (this.carry[0] !== DASH || this.carry[1] !== DASH)) {
        this.carryCap = this.carryLength; // cannot be a delimiter: stop keeping
      }
    }
    this.carryTotal += to - from;
  }
}
