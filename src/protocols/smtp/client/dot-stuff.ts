/**
 * The message bytes as they go over the wire after `354` (RFC 5321 §4.5.2, §2.3.8):
 * - line ends become CRLF: a bare LF or a bare CR is sent as CRLF (§2.3.8: CR and LF must only
 *   appear together; the input is meant to be CRLF already, this is the guard for what is not),
 * - a line starting with `.` gets one more `.` (transparency, §4.5.2),
 * - the end: CRLF if the message does not end with one, then `.` CRLF.
 * The output does not depend on how the input is chunked (the state crosses chunk boundaries).
 */
import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const EXTRA_DOT = Buffer.from('.');
const END = Buffer.from('.\r\n');

/** The pure state machine, usable without streams (tests, small buffers). */
export class DotStuffer {
  private atLineStart = true;
  private pendingCR = false;

  /** Transforms one chunk; returns the output pieces (possibly slices of `chunk`). */
  update(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (this.pendingCR) {
        this.pendingCR = false;
        out.push(CRLF);
        this.atLineStart = true;
        if (b === LF) {
          start = i + 1;
          continue;
        }
        // A bare CR ended a line; `b` starts the next one.
        start = i;
      }
      if (this.atLineStart) {
        this.atLineStart = false;
        if (b === DOT) {
          if (i > start) out.push(chunk.subarray(start, i));
          out.push(EXTRA_DOT);
          start = i; // the original dot follows the inserted one
          continue;
        }
      }
      if (b === CR) {
        if (i > start) out.push(chunk.subarray(start, i));
        this.pendingCR = true;
        start = i + 1;
      } else if (b === LF) {
        if (i > start) out.push(chunk.subarray(start, i));
        out.push(CRLF);
        this.atLineStart = true;
        start = i + 1;
      }
    }
    if (start < chunk.length) out.push(chunk.subarray(start));
    return out;
  }

  /** The closing bytes: a pending line end, CRLF when the last line is unfinished, then `.` CRLF. */
  finish(): Buffer[] {
    const out: Buffer[] = [];
    if (this.pendingCR) {
      this.pendingCR = false;
      out.push(CRLF);
      this.atLineStart = true;
    }
    if (!this.atLineStart) out.push(CRLF);
    out.push(END);
    this.atLineStart = true;
    return out;
  }
}

/** One whole buffer through the transform (tests, small messages). */
export function dotStuff(message: Buffer): Buffer {
  const s = new DotStuffer();
  return Buffer.concat([...s.update(message), ...s.finish()]);
}

/** Stream form: pipe the message through it into the socket. */
export class DotStuffTransform extends Transform {
  private readonly stuffer = new DotStuffer();

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const pieces = this.stuffer.update(buf);
    if (pieces.length > 0) this.push(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.push(Buffer.concat(this.stuffer.finish()));
    callback();
  }
}
