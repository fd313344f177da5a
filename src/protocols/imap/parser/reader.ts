/**
 * IMAP command framing (RFC 9051 §2.2, §4.3, §5.5, §7.5): bytes from the client → whole commands,
 * with their literals, one event at a time. Pure and pull-driven: the session pushes what the
 * socket delivers and asks for the next event when it is ready to act on it, so a mode change
 * between commands (`lineMode` for IDLE's DONE and AUTHENTICATE responses) applies exactly to the
 * bytes that follow.
 *
 * Literals: `{n}` (synchronizing: the client waits for `+`, so a `continue` event is emitted once
 * the announcement line is complete), `{n+}` (LITERAL+, RFC 7888 §3: sent right away), and the
 * literal8 forms `~{n}` / `~{n+}` (RFC 3516 §4.2). Every literal is checked against its limit from
 * the announcement alone, before a byte of it is kept (RFC 9051 §7.1 TOOBIG, RFC 7889 APPENDLIMIT).
 *
 * Memory: a line longer than `maxLineBytes` is dropped as it arrives; literals are kept only when
 * within their limit; the whole command (except APPEND message literals) within `maxCommandBytes`.
 * The APPEND message literals of one command together stay within `maxAppendBytes` (MULTIAPPEND,
 * RFC 3502, is not offered, so this is exactly APPENDLIMIT for the one message).
 */
import { ImapSyntaxError } from '../session/types.js';
import { literalAnnouncement, parseCommand, readCommandWord, readTag, type LiteralAnnouncement } from './tokenizer.js';
import type { ParsedCommand } from './types.js';

export interface ReaderLimits {
  /** One line of a command (between literals), without CRLF. */
  maxLineBytes: number;
  /** Any literal outside the APPEND message. */
  maxLiteralBytes: number;
  /** The message literal(s) of APPEND (APPENDLIMIT). */
  maxAppendBytes: number;
  /** Whole command except APPEND message literals. */
  maxCommandBytes: number;
}

export type ReaderEvent =
  | { type: 'command'; command: ParsedCommand }
  /** Syntax error / over-long line: the session answers `<tag> BAD [code] text` (`* BAD` when tag null). */
  | { type: 'bad'; tag: string | null; text: string; code?: string }
  /** A synchronizing literal `{n}` was announced and is within limits: the session sends `+ Ready…`. */
  | { type: 'continue' }
  /**
   * A literal over its limit (RFC 9051 §7.1 TOOBIG, RFC 7889 APPENDLIMIT): for a synchronizing
   * literal nothing of it was read and the rest of the command is dropped (the client waits for `+`);
   * for a non-synchronizing one its bytes and the rest of the command are skipped without being kept.
   * The session answers `<tag> NO [TOOBIG] text` (sync) / `<tag> BAD [TOOBIG] text` (non-sync).
   */
  | { type: 'too-big'; tag: string | null; text: string; synchronizing: boolean }
  /** In line mode: one line (IDLE's DONE, AUTHENTICATE responses), without CRLF, decoded as UTF-8. */
  | { type: 'line'; text: string };

const LF = 0x0a;
const CR = 0x0d;
/** Bytes of an over-long line kept to find its tag, and to find a literal announcement at its end. */
const HEAD_KEEP = 1024;
const TAIL_KEEP = 32;

/** One line as read: its bytes, or for an over-long line only its start and end. */
type Line = { tooLong: false; bytes: Buffer } | { tooLong: true; head: Buffer; tail: Buffer };

export class ImapCommandReader {
  /** When set, each line is returned as a `line` event instead of being read as a command. */
  lineMode = false;

  // Input not looked at yet.
  private chunks: Buffer[] = [];
  private queued = 0;

  // The line being read.
  private lineParts: Buffer[] = [];
  private lineLength = 0;
  private lineOverflow: { head: Buffer; tail: Buffer } | null = null;

  // The command being assembled.
  private lines: Buffer[] = [];
  private literals: Buffer[] = [];
  private tag: string | null = null;
  private isAppend = false;
  private appendArgsStart = -1;
  private commandBytes = 0;
  private appendBytes = 0;
  /** The literal being read: its parts so far and the octets still due. */
  private literalParts: Buffer[] = [];
  private literalDue = -1;

  // Recovery after a rejected command.
  /** Octets of a rejected non-synchronizing literal still to be dropped. */
  private skipDue = 0;
  /** Lines that follow a dropped literal still belong to the rejected command. */
  private skipRest = false;

  constructor(private readonly limits: ReaderLimits) {
    for (const [k, v] of Object.entries(limits)) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`ReaderLimits.${k} must be a positive integer`);
    }
  }

  /**
   * Input octets held and not yet consumed (pushed but unread, plus the line being read, which is
   * bounded by maxLineBytes). For back-pressure: the session pauses the socket above a threshold.
   * A command being assembled (its earlier lines and literals) is not counted: it is bounded by
   * the limits, and counting it would stall a large APPEND the session is waiting to receive.
   */
  get buffered(): number {
    return this.queued + this.lineLength;
  }

  /** Octets of the command being assembled (lines and literals kept so far). */
  get assembling(): number {
    let n = this.literalParts.reduce((s, b) => s + b.length, 0);
    for (const b of this.lines) n += b.length;
    for (const b of this.literals) n += b.length;
    return n;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
  }

  /** The next complete event, or null when more bytes are needed. */
  next(): ReaderEvent | null {
    for (;;) {
      if (this.skipDue > 0) {
        this.skipDue -= this.drop(this.skipDue);
        if (this.skipDue > 0) return null;
        continue;
      }
      if (this.literalDue >= 0) {
        if (!this.readLiteral()) return null;
        continue;
      }
      const line = this.readLine();
      if (!line) return null;
      const event = this.onLine(line);
      if (event) return event;
    }
  }

  private onLine(line: Line): ReaderEvent | null {
    if (this.skipRest) {
      // Still inside a rejected command: drop its lines and the non-synchronizing literals they announce.
      const a = literalAnnouncement(line.tooLong ? line.tail : line.bytes);
      if (a && !a.synchronizing) this.skipDue = a.size === Infinity ? Number.MAX_SAFE_INTEGER : a.size;
      else this.skipRest = false;
      return null;
    }
    const first = this.lines.length === 0;
    if (this.lineMode && first) {
      if (line.tooLong) return { type: 'bad', tag: null, text: 'Line too long' };
      return { type: 'line', text: line.bytes.toString('utf8') };
    }
    if (line.tooLong) {
      // The head may have been cut inside an over-long tag: only a tag followed by SP counts.
      const headTag = first ? readTag(line.head) : null;
      const tag = first ? (headTag !== null && headTag.length < line.head.length ? headTag : null) : this.tag;
      this.abort(literalAnnouncement(line.tail));
      return { type: 'bad', tag, text: 'Command line too long' };
    }
    const bytes = line.bytes;
    // An empty line between commands is not a command; clients typed by hand send them. Ignored.
    if (first && bytes.length === 0) return null;
    const announced = literalAnnouncement(bytes);
    if (first) {
      this.tag = readTag(bytes);
      if (this.tag === null) {
        this.abort(announced);
        return { type: 'bad', tag: null, text: 'Missing or invalid tag' };
      }
      const word = readCommandWord(bytes);
      this.isAppend = word?.name === 'APPEND';
      this.appendArgsStart = word?.argsStart ?? -1;
    }
    this.commandBytes += bytes.length + 2;
    if (this.commandBytes > this.limits.maxCommandBytes) {
      const tag = this.tag;
      this.abort(announced);
      return { type: 'bad', tag, code: 'TOOBIG', text: 'Command too long' };
    }
    this.lines.push(bytes);
    if (!announced) return this.complete();
    return this.announce(announced, first);
  }

  /** A literal was announced at the end of the current line: accept it (maybe with `continue`) or reject it. */
  private announce(a: LiteralAnnouncement, first: boolean): ReaderEvent | null {
    // APPEND's arguments are `mailbox [flags] [date-time] literal` (RFC 9051 §6.3.12): a literal
    // right after the command word is the mailbox name; every other one is a message (also with
    // the RFC 6855 `UTF8 (~{n}…)` form).
    const message = this.isAppend && !(first && a.start === this.appendArgsStart);
    let limit: number;
    let text: string;
    if (message) {
      limit = this.limits.maxAppendBytes - this.appendBytes;
      text = `Message too big (APPENDLIMIT is ${this.limits.maxAppendBytes} octets)`;
    } else if (a.size > this.limits.maxLiteralBytes) {
      limit = this.limits.maxLiteralBytes;
      text = `Literal too big (limit ${this.limits.maxLiteralBytes} octets)`;
    } else {
      limit = this.limits.maxCommandBytes - this.commandBytes;
      text = `Command too big (limit ${this.limits.maxCommandBytes} octets)`;
    }
    if (a.size > limit) {
      const tag = this.tag;
      this.abort(a);
      return { type: 'too-big', tag, text, synchronizing: a.synchronizing };
    }
    if (message) this.appendBytes += a.size;
    else this.commandBytes += a.size;
    this.literalDue = a.size;
    this.literalParts = [];
    return a.synchronizing ? { type: 'continue' } : null;
  }

  /** Takes literal bytes from the input; true once the literal is complete. */
  private readLiteral(): boolean {
    while (this.literalDue > 0 && this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const n = Math.min(chunk.length, this.literalDue);
      this.literalParts.push(chunk.subarray(0, n));
      this.consume(n);
      this.literalDue -= n;
    }
    if (this.literalDue > 0) return false;
    this.literals.push(Buffer.concat(this.literalParts));
    this.literalParts = [];
    this.literalDue = -1;
    return true;
  }

  /** The last line had no literal announcement: the command is complete. */
  private complete(): ReaderEvent {
    const tag = this.tag;
    const lines = this.lines;
    const literals = this.literals;
    this.resetCommand();
    try {
      return { type: 'command', command: parseCommand(lines, literals) };
    } catch (err) {
      if (err instanceof ImapSyntaxError) return { type: 'bad', tag, text: err.message };
      throw err;
    }
  }

  /**
   * Drops the command being assembled. A rejected synchronizing literal was never sent (the client
   * waits for `+`), so the next line is a new command; a non-synchronizing one is on its way and
   * is skipped, with the lines of the command that follow it.
   */
  private abort(a: LiteralAnnouncement | null): void {
    this.resetCommand();
    if (a && !a.synchronizing) {
      this.skipDue = a.size === Infinity ? Number.MAX_SAFE_INTEGER : a.size;
      this.skipRest = true;
    }
  }

  private resetCommand(): void {
    this.lines = [];
    this.literals = [];
    this.literalParts = [];
    this.literalDue = -1;
    this.tag = null;
    this.isAppend = false;
    this.appendArgsStart = -1;
    this.commandBytes = 0;
    this.appendBytes = 0;
  }

  /**
   * The next line ending in LF (a CR before it is removed; a lone LF is accepted, a lone CR is not
   * a line end), or null when it has not fully arrived. Past maxLineBytes the line's bytes are no
   * longer kept, only its first and last few.
   */
  private readLine(): Line | null {
    while (this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const lf = chunk.indexOf(LF);
      const end = lf < 0 ? chunk.length : lf;
      this.addToLine(chunk.subarray(0, end));
      this.consume(lf < 0 ? end : end + 1);
      if (lf >= 0) return this.finishLine();
    }
    return null;
  }

  private addToLine(part: Buffer): void {
    if (part.length === 0) return;
    if (this.lineOverflow) {
      this.lineOverflow.tail = lastBytes([this.lineOverflow.tail, part], TAIL_KEEP);
      return;
    }
    // One more octet than the limit may be the CR of the CRLF.
    if (this.lineLength + part.length <= this.limits.maxLineBytes + 1) {
      this.lineParts.push(part);
      this.lineLength += part.length;
      return;
    }
    const all = [...this.lineParts, part];
    this.lineOverflow = { head: Buffer.from(Buffer.concat(all).subarray(0, HEAD_KEEP)), tail: lastBytes(all, TAIL_KEEP) };
    this.lineParts = [];
    this.lineLength = 0;
  }

  private finishLine(): Line {
    const overflow = this.lineOverflow;
    const parts = this.lineParts;
    this.lineOverflow = null;
    this.lineParts = [];
    this.lineLength = 0;
    if (overflow) return { tooLong: true, head: overflow.head, tail: stripCr(overflow.tail) };
    const bytes = stripCr(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    if (bytes.length > this.limits.maxLineBytes) {
      return { tooLong: true, head: bytes.subarray(0, HEAD_KEEP), tail: bytes.subarray(Math.max(0, bytes.length - TAIL_KEEP)) };
    }
    return { tooLong: false, bytes };
  }

  /** Drops up to `max` input octets; returns how many. */
  private drop(max: number): number {
    let dropped = 0;
    while (dropped < max && this.chunks.length > 0) {
      const n = Math.min(this.chunks[0].length, max - dropped);
      this.consume(n);
      dropped += n;
    }
    return dropped;
  }

  /** Removes `n` octets (at most the first chunk's) from the input. */
  private consume(n: number): void {
    const chunk = this.chunks[0];
    if (n >= chunk.length) this.chunks.shift();
    else this.chunks[0] = chunk.subarray(n);
    this.queued -= Math.min(n, chunk.length);
  }
}

function stripCr(b: Buffer): Buffer {
  return b.length > 0 && b[b.length - 1] === CR ? b.subarray(0, b.length - 1) : b;
}

/** The last `n` octets of the concatenation of `parts` (copied: the parts' chunks are released). */
function lastBytes(parts: Buffer[], n: number): Buffer {
  const total = parts.reduce((s, b) => s + b.length, 0);
  return Buffer.from(Buffer.concat(parts).subarray(Math.max(0, total - n)));
}
