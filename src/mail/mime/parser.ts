/**
 * Incremental MIME structure parser (RFC 2045, RFC 2046 §5.1 multipart, §5.2.1 message/rfc822,
 * RFC 6532 §3.7 message/global): a pure state machine over bytes that records where every part's
 * header and body lie, fed chunk by chunk as a message streams in. It keeps no body bytes: only a
 * partial line when a chunk border cuts one (bounded, see LineSplitter), the Content-* fields of
 * headers being read (bounded by MimeLimits) and the boundaries of the open multiparts.
 *
 * Real-world mail is accepted as it comes: LF-only line breaks, transport padding after
 * delimiters, missing close delimiters, preambles and epilogues, headers without a blank line, lines
 * without a colon, 8-bit bytes. Nothing here throws on input; what is wrong is recorded as a defect.
 */
import { CONTENT_FIELDS, applyContentFields, type ContentTypeDefault } from './part-fields.js';
import { childNumber, encapsulatedNumber, newFrame, newPart, type Frame } from './frame.js';
import { fieldNameEnd, isContinuationByte } from './header.js';
import { LineSplitter, type Retention } from './line-splitter.js';
import { MAX_DEFECTS, RFC_MAX_BOUNDARY_LENGTH, resolveMimeLimits, type MimeLimits } from './limits.js';
import type { MimeDefectCode, MimePart, MimeStructure } from './structure.js';

const DASH = 0x2d;

/**
 * Whitespace allowed after a delimiter (RFC 2046 §5.1.1 transport padding). A delimiter line longer
 * than the boundary plus this much is not treated as one; it bounds what is kept of a cut line.
 */
const MAX_TRANSPORT_PADDING = 1024;

/** RFC 2046 §5.2.1: message/rfc822 may only be 7bit, 8bit or binary; anything else is opaque. */
function isIdentityEncoding(encoding: string): boolean {
  return encoding === '7bit' || encoding === '8bit' || encoding === 'binary';
}

export class MimeStructureParser {
  private readonly limits: MimeLimits;
  /** The line callbacks stay private: the parser's public surface is write/end/retainedBytes. */
  private readonly splitter = new LineSplitter({
    retention: () => this.retention(),
    line: (buf, start, end, length, eol, lineStart) => this.line(buf, start, end, length, eol, lineStart),
  });
  private readonly frames: Frame[] = [];
  private readonly root: MimePart;
  private readonly defects: MimeStructure['defects'] = [];
  private readonly delimiterLineMax: number;
  private truncated = false;
  private partCount = 1;
  /** Frames whose boundary is looked for. */
  private activeBoundaries = 0;
  /** Terminated lines seen so far (the index of the line being handled). */
  private lineIndex = 0;
  private previousEol = 0;
  private previousLength = 0;
  private result: MimeStructure | null = null;

  constructor(limits?: Partial<MimeLimits>) {
    this.limits = resolveMimeLimits(limits);
    this.delimiterLineMax = 4 + this.limits.maxBoundaryLength + MAX_TRANSPORT_PADDING;
    this.root = newPart('', 0, 'text');
    this.frames.push(newFrame(this.root, 0, true, 'text'));
  }

  /** Feeds the next bytes of the message; the chunk is not kept, so the caller may reuse it. Ignored after `end()`. */
  write(chunk: Buffer): void {
    if (this.result) return;
    this.splitter.write(chunk);
  }

  /** Ends the message and returns its structure (the same object on every call). */
  end(): MimeStructure {
    if (this.result) return this.result;
    this.splitter.end();
    const size = this.splitter.size;
    while (this.frames.length > 0) this.finish(this.frames.pop()!, size, true);
    this.result = {
      root: this.root,
      size,
      lines: this.lineIndex + (this.previousEol === 0 && this.previousLength > 0 ? 1 : 0),
      truncated: this.truncated,
      defects: this.defects,
    };
    return this.result;
  }

  /**
   * Bytes the parser holds besides the structure it builds: the partial-line buffer, the
   * Content-* fields of open headers and the open boundaries. Bounded by the limits, whatever the
   * size of the message.
   */
  retainedBytes(): number {
    let bytes = this.splitter.retainedBytes();
    for (const frame of this.frames) {
      bytes += frame.fieldBytes + (frame.boundary?.length ?? 0);
      if (frame.fields) for (const value of frame.fields.values()) bytes += value.length;
    }
    return bytes;
  }

  // Lines

  private retention(): Retention {
    const top = this.frames[this.frames.length - 1];
    if (top?.inHeader) return { cap: Math.max(this.limits.maxHeaderLineBytes, this.delimiterLineMax) + 1, dashOnly: false };
    return { cap: this.activeBoundaries > 0 ? this.delimiterLineMax + 1 : 0, dashOnly: true };
  }

  private line(buf: Buffer, start: number, end: number, length: number, eol: number, lineStart: number): void {
    const candidate =
      this.activeBoundaries > 0 &&
      length >= 2 &&
      length <= this.delimiterLineMax &&
      end - start === length &&
      buf[start] === DASH &&
      buf[start + 1] === DASH;
    if (!candidate || !this.matchDelimiter(buf, start, end, lineStart, lineStart + length + eol)) {
      // A header that ends at this line may open an encapsulated message whose header starts here.
      let top = this.frames[this.frames.length - 1];
      while (top?.inHeader && this.headerLine(top, buf, start, end, length, eol, lineStart)) {
        top = this.frames[this.frames.length - 1];
      }
    }
    if (eol > 0) this.lineIndex++;
    this.previousEol = eol;
    this.previousLength = length;
  }

  // Boundaries

  /**
   * RFC 2046 §5.1.1: a delimiter line is "--" boundary, "--" for the close delimiter, then only
   * transport padding. The whole line must match, so a nested boundary that extends its parent's
   * ("--a" inside "--ab") is told apart. Open boundaries are tried innermost first; a match of an
   * outer one ends every part inside it. Returns false when the line is no delimiter.
   */
  private matchDelimiter(buf: Buffer, start: number, end: number, lineStart: number, nextLineStart: number): boolean {
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const frame = this.frames[i];
      const boundary = frame.boundary;
      if (boundary === null || frame.state === 'epilogue') continue;
      const afterBoundary = start + 2 + boundary.length;
      if (afterBoundary > end || buf.compare(boundary, 0, boundary.length, start + 2, afterBoundary) !== 0) continue;
      let pos = afterBoundary;
      const close = pos + 1 < end && buf[pos] === DASH && buf[pos + 1] === DASH;
      if (close) pos += 2;
      // Padding: spaces and tabs; a CR left by a message cut between CR and LF is accepted too.
      while (pos < end && (buf[pos] === 0x20 || buf[pos] === 0x09 || buf[pos] === 0x0d)) pos++;
      if (pos !== end) continue;
      this.delimiter(i, close, lineStart, nextLineStart);
      return true;
    }
    return false;
  }

  private delimiter(index: number, close: boolean, lineStart: number, nextLineStart: number): void {
    // The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
    const end = lineStart - this.previousEol;
    while (this.frames.length - 1 > index) this.finish(this.frames.pop()!, end, false);
    const multipart = this.frames[index];
    if (close) {
      multipart.state = 'epilogue';
      this.activeBoundaries--;
      return;
    }
    if (multipart.state === 'skipping') return;
    if (this.partCount >= this.limits.maxParts) {
      multipart.state = 'skipping';
      this.limitHit('part-limit', multipart.part.part, lineStart);
      return;
    }
    multipart.state = 'parts';
    multipart.childCount++;
    const context: ContentTypeDefault = multipart.part.contentType.subtype === 'digest' ? 'digest-member' : 'text';
    const child = newPart(childNumber(multipart.part, multipart.childCount), nextLineStart, context);
    multipart.part.children.push(child);
    this.partCount++;
    this.frames.push(newFrame(child, multipart.depth + 1, false, context));
  }

  // Headers

  /**
   * One line of a header block (RFC 5322 §2.2). Returns true when the header ended and the same
   * line must be read again by the frame now on top (the header of an encapsulated message).
   */
  private headerLine(frame: Frame, buf: Buffer, start: number, end: number, length: number, eol: number, lineStart: number): boolean {
    if (length === 0 && eol > 0) {
      this.endHeader(frame, lineStart + eol, this.lineIndex + 1);
      return false;
    }
    const continuation = isContinuationByte(buf[start]);
    const colon = continuation ? -1 : fieldNameEnd(buf, start, end);
    if (frame.fieldsSeen === 0 && colon < 0) {
      // The first line is not a header field: the part has no header and this line begins its
      // body. (Later lines without a colon stay in the header, as most readers treat them, so one
      // bad line does not hide the Content-Type after it.)
      this.defect('missing-header-separator', frame.part.part, lineStart);
      return this.endHeader(frame, lineStart, this.lineIndex);
    }
    // A new field completes the previous one, before the limit can drop it.
    if (!continuation) this.storeField(frame);
    frame.headerBytes += length + eol;
    if (!frame.headerOverLimit && frame.headerBytes > this.limits.maxHeaderBlockBytes) {
      // The header still runs to its blank line, so offsets stay true; fields after this point are
      // not interpreted.
      frame.headerOverLimit = true;
      this.dropField(frame);
      this.limitHit('header-too-large', frame.part.part, lineStart);
    }
    if (continuation) {
      if (frame.field !== null) this.addToField(frame, buf, start, end, length, lineStart);
      return false;
    }
    if (colon < 0) {
      this.defect('header-without-colon', frame.part.part, lineStart);
      return false;
    }
    frame.fieldsSeen++;
    if (frame.headerOverLimit || frame.fields === null) return false;
    const name = buf.toString('latin1', start, colon).trimEnd().toLowerCase();
    if (!CONTENT_FIELDS.has(name) || frame.fields.has(name)) return false;
    frame.field = name;
    this.addToField(frame, buf, colon + 1, end, length - (colon + 1 - start), lineStart);
    return false;
  }

  /** Appends a line's value bytes to the field being read; a field over the limit is dropped. */
  private addToField(frame: Frame, buf: Buffer, start: number, end: number, length: number, lineStart: number): void {
    if (end - start < length || frame.fieldBytes + length > this.limits.maxHeaderLineBytes) {
      this.fieldTooLong(frame, lineStart);
      return;
    }
    frame.fieldChunks.push(Buffer.from(buf.subarray(start, end)));
    frame.fieldBytes += length;
  }

  private fieldTooLong(frame: Frame, lineStart: number): void {
    this.dropField(frame);
    this.limitHit('header-line-too-long', frame.part.part, lineStart);
  }

  private dropField(frame: Frame): void {
    frame.field = null;
    frame.fieldChunks = [];
    frame.fieldBytes = 0;
  }

  private storeField(frame: Frame): void {
    if (frame.field !== null && frame.fields !== null) frame.fields.set(frame.field, Buffer.concat(frame.fieldChunks, frame.fieldBytes));
    this.dropField(frame);
  }

  /**
   * The header of `frame` ended; its body starts at `bodyStart`. Returns true when an encapsulated
   * message begins there (its header starts with the current line).
   */
  private endHeader(frame: Frame, bodyStart: number, bodyStartLine: number): boolean {
    const part = frame.part;
    part.headerEnd = part.bodyStart = part.bodyEnd = bodyStart;
    frame.bodyStartLine = bodyStartLine;
    frame.inHeader = false;
    this.interpretHeader(frame);
    this.splitter.releaseCarry();
    const { type, subtype } = part.contentType;
    if (type === 'multipart') {
      this.openMultipart(frame, bodyStart);
      return false;
    }
    if (type === 'message' && (subtype === 'rfc822' || subtype === 'global')) return this.openMessage(frame, bodyStart);
    return false;
  }

  private interpretHeader(frame: Frame): void {
    this.storeField(frame);
    const fields = frame.fields ?? new Map<string, Buffer>();
    frame.fields = null;
    const { boundary, defects } = applyContentFields(frame.part, fields, frame.contentDefault);
    for (const code of defects) this.defect(code, frame.part.part, frame.part.headerStart);
    frame.boundary = boundary;
  }

  private openMultipart(frame: Frame, offset: number): void {
    const boundary = frame.boundary;
    frame.boundary = null;
    const where = frame.part.part;
    if (boundary === null || boundary.length === 0) return this.defect('multipart-without-boundary', where, offset);
    if (boundary.length > this.limits.maxBoundaryLength) return this.limitHit('boundary-over-limit', where, offset);
    if (frame.depth >= this.limits.maxDepth) return this.limitHit('depth-limit', where, offset);
    if (boundary.length > RFC_MAX_BOUNDARY_LENGTH) this.defect('boundary-too-long', where, offset);
    frame.boundary = boundary;
    frame.state = 'preamble';
    this.activeBoundaries++;
  }

  private openMessage(frame: Frame, offset: number): boolean {
    const where = frame.part.part;
    if (!isIdentityEncoding(frame.part.encoding)) {
      // RFC 6532 §3.7 allows message/global in any encoding; for message/rfc822 it is a defect.
      if (frame.part.contentType.subtype === 'rfc822') this.defect('encoded-message', where, offset);
      return false;
    }
    if (frame.depth >= this.limits.maxDepth) {
      this.limitHit('depth-limit', where, offset);
      return false;
    }
    if (this.partCount >= this.limits.maxParts) {
      this.limitHit('part-limit', where, offset);
      return false;
    }
    const message = newPart(encapsulatedNumber(frame), offset, 'text');
    frame.part.message = message;
    this.partCount++;
    this.frames.push(newFrame(message, frame.depth + 1, true, 'text'));
    return true;
  }

  // Ends

  /**
   * Closes a part at `end`: before a delimiter line (its preceding line break excluded) or at the
   * end of the message. A header still open is cut there (no blank line was found). When that line
   * break is also the one that ended the header ("Content-Type: x CRLF CRLF --b"), RFC 2046 §5.1.1
   * gives it to the delimiter: the header is "Content-Type: x CRLF" and there is no body. A part
   * that began on the delimiter line itself is empty and placed at `end`, so that every part stays
   * inside its parent.
   */
  private finish(frame: Frame, end: number, atEof: boolean): void {
    const part = frame.part;
    if (part.headerStart > end) part.headerStart = end;
    if (frame.inHeader) {
      this.defect('missing-header-separator', part.part, end);
      frame.inHeader = false;
      this.interpretHeader(frame);
      frame.boundary = null;
      part.headerEnd = part.bodyStart = part.bodyEnd = end;
      part.bodyLines = 0;
      return;
    }
    part.headerEnd = Math.min(part.headerEnd, end);
    part.bodyStart = Math.min(part.bodyStart, end);
    part.bodyEnd = end;
    if (part.bodyEnd === part.bodyStart) part.bodyLines = 0;
    else if (atEof) part.bodyLines = this.lineIndex - frame.bodyStartLine + (this.previousEol === 0 && this.previousLength > 0 ? 1 : 0);
    // Before a delimiter: the lines up to the one before it, that one counted only if it has content
    // (its line break went to the delimiter).
    else part.bodyLines = this.lineIndex - 1 - frame.bodyStartLine + (this.previousLength > 0 ? 1 : 0);
    if (frame.boundary !== null && frame.state !== 'epilogue') {
      this.activeBoundaries--;
      this.defect(frame.childCount === 0 ? 'boundary-not-found' : 'missing-close-delimiter', part.part, end);
    } else if (frame.boundary !== null && frame.childCount === 0) {
      this.defect('boundary-not-found', part.part, end);
    }
    frame.boundary = null;
  }

  // Bookkeeping

  private limitHit(code: MimeDefectCode, part: string, offset: number): void {
    this.truncated = true;
    this.defect(code, part, offset);
  }

  private defect(code: MimeDefectCode, part: string, offset: number): void {
    if (this.defects.length < MAX_DEFECTS) this.defects.push({ code, part, offset });
  }
}
