/**
 * BODY[HEADER.FIELDS (…)] and BODY[HEADER.FIELDS.NOT (…)] (RFC 9051 §6.4.5): the header lines of
 * the named fields (or of all other fields), exactly as written, folded continuation lines
 * included, followed by the blank line that ends a header. Field names compare case-insensitively.
 */
import { fieldNameEnd, isContinuationByte } from '../../../mail/mime/header.js';

const LF = 0x0a;
const CR = 0x0d;
const CRLF = Buffer.from('\r\n');

/** Collects the wanted lines of a header block fed in chunks; stops at the blank line. */
export class HeaderFieldFilter {
  private readonly names: Set<string>;
  private readonly out: Buffer[] = [];
  /** Bytes of a line cut by a chunk border. */
  private partial: Buffer[] = [];
  /** Whether the field the current continuation lines belong to is kept. */
  private keeping = false;
  private ended = false;
  private lastKeptHadEol = true;

  constructor(names: string[], private readonly not: boolean) {
    this.names = new Set(names.map((n) => n.toLowerCase()));
  }

  /** True once the blank line was seen: the rest of the input is not needed. */
  get done(): boolean {
    return this.ended;
  }

  write(chunk: Buffer): void {
    let pos = 0;
    while (!this.ended && pos < chunk.length) {
      const lf = chunk.indexOf(LF, pos);
      if (lf < 0) {
        this.partial.push(chunk.subarray(pos));
        return;
      }
      const piece = chunk.subarray(pos, lf + 1);
      const line = this.partial.length > 0 ? Buffer.concat([...this.partial, piece]) : piece;
      this.partial = [];
      this.line(line);
      pos = lf + 1;
    }
  }

  /** The filtered header: the kept lines and the blank line (CRLF). */
  end(): Buffer {
    if (!this.ended && this.partial.length > 0) this.line(Buffer.concat(this.partial));
    this.partial = [];
    // A kept last line without its line break (a header cut at the end of the message) gets one,
    // so the blank line that follows really ends the header.
    const parts = this.lastKeptHadEol ? this.out : [...this.out, CRLF];
    return Buffer.concat([...parts, CRLF]);
  }

  private line(line: Buffer): void {
    let contentEnd = line.length;
    if (contentEnd > 0 && line[contentEnd - 1] === LF) contentEnd--;
    if (contentEnd > 0 && line[contentEnd - 1] === CR) contentEnd--;
    if (contentEnd === 0) {
      this.ended = true;
      return;
    }
    if (!isContinuationByte(line[0])) {
      const colon = fieldNameEnd(line, 0, contentEnd);
      // A line that is no field is not one of the named fields: only HEADER.FIELDS.NOT keeps it.
      const named = colon >= 0 && this.names.has(line.toString('latin1', 0, colon).trimEnd().toLowerCase());
      this.keeping = named !== this.not;
    }
    if (this.keeping) {
      this.out.push(line);
      this.lastKeptHadEol = line[line.length - 1] === LF;
    }
  }
}
