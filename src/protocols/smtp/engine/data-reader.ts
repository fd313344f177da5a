/**
 * The DATA body (RFC 5321 §4.1.1.4, §4.5.2): removes dot-stuffing and finds the end of the message,
 * `CRLF . CRLF`, across any split of the input into chunks. Pure and incremental; it holds at most
 * the one pending byte of a `.CR` at a line start, so memory does not grow with the message.
 *
 * - The CRLF before the final dot belongs to the message; the dot line does not.
 * - A line starting with a dot loses that dot (transparency, §4.5.2).
 * - Only CRLF ends a line. A lone LF (or CR) is message content: `LF . LF` or `LF . CRLF` do not end
 *   the message and their dot is kept. Accepting other endings is what SMTP smuggling exploits
 *   (a message ending differently for two servers on its way).
 * - Lines longer than RFC 5321 §4.5.3.1.6's 1000 octets are passed through: refusing them would
 *   bounce real mail, and the total size is bounded by the caller.
 */
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CR_BYTE = Buffer.from([CR]);

const enum State {
  /** After CRLF (or at the start of the body). */
  LineStart,
  InLine,
  /** In a line, just read CR. */
  Cr,
  /** Read a dot at a line start (it is dropped either way). */
  Dot,
  /** Read `.CR` at a line start; CR held back until the next byte tells whether this is the end. */
  DotCr,
}

export interface DataChunkResult {
  /** Message bytes, unstuffed, in order (slices of the input where possible). */
  data: Buffer[];
  /** The end `CRLF . CRLF` was found. */
  done: boolean;
  /** Input after the end line (pipelined commands); empty unless done. */
  rest: Buffer;
}

export class DotUnstuffer {
  private state: State = State.LineStart;
  private finished = false;

  /** Decodes one chunk of the wire; call again with the next chunk until `done`. */
  push(chunk: Buffer): DataChunkResult {
    if (this.finished) throw new Error('DotUnstuffer: message already complete');
    const data: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      switch (this.state) {
        case State.LineStart:
          if (b === DOT) {
            if (i > start) data.push(chunk.subarray(start, i));
            start = i + 1;
            this.state = State.Dot;
          } else this.state = b === CR ? State.Cr : State.InLine;
          break;
        case State.InLine:
          if (b === CR) this.state = State.Cr;
          break;
        case State.Cr:
          this.state = b === LF ? State.LineStart : b === CR ? State.Cr : State.InLine;
          break;
        case State.Dot:
          if (b === CR) {
            start = i + 1;
            this.state = State.DotCr;
          } else this.state = State.InLine;
          break;
        case State.DotCr:
          if (b === LF) {
            this.finished = true;
            return { data, done: true, rest: chunk.subarray(i + 1) };
          }
          // `.CR` followed by something else: the CR was content after a stuffed dot.
          data.push(CR_BYTE);
          start = i;
          this.state = b === CR ? State.Cr : State.InLine;
          break;
      }
    }
    if (start < chunk.length) data.push(chunk.subarray(start));
    return { data, done: false, rest: Buffer.alloc(0) };
  }
}
