/**
 * The per-message SMTP transcript kept in the queue entry's history (SPEC §5.2) and shown in DSNs:
 * `C: ` lines we sent, `S: ` lines the server sent, `* ` notes of our own (connect, TLS, reuse).
 *
 * Bounded: a transaction with many recipients or a chatty server must not grow a queue row without
 * limit. The first half and the last half of the bound are kept (the start says where we were, the
 * end says why it failed), with one line counting what was left out in between.
 * Secrets never enter it: AUTH arguments are replaced by `***` (see `redactCommand`).
 */
export const MAX_TRANSCRIPT_LINES = 200;

export class Transcript {
  private readonly head: string[] = [];
  private readonly tail: string[] = [];
  private omitted = 0;
  private readonly headMax: number;
  private readonly tailMax: number;

  constructor(max = MAX_TRANSCRIPT_LINES) {
    if (!Number.isInteger(max) || max < 3) throw new RangeError('transcript bound must be an integer ≥ 3');
    this.headMax = Math.floor(max / 2);
    // One line of the bound is the "omitted" note.
    this.tailMax = max - this.headMax - 1;
  }

  client(line: string): void {
    this.add(`C: ${redactCommand(line)}`);
  }

  /** A client line whose whole content is secret (AUTH LOGIN user name and password). */
  clientSecret(): void {
    this.add('C: ***');
  }

  server(line: string): void {
    this.add(`S: ${line}`);
  }

  note(text: string): void {
    this.add(`* ${text}`);
  }

  lines(): string[] {
    if (this.omitted === 0) return [...this.head, ...this.tail];
    return [...this.head, `* … ${this.omitted} line(s) omitted`, ...this.tail];
  }

  private add(line: string): void {
    if (this.head.length < this.headMax) {
      this.head.push(line);
      return;
    }
    this.tail.push(line);
    if (this.tail.length > this.tailMax) {
      this.tail.shift();
      this.omitted++;
    }
  }
}

/** `AUTH PLAIN <secret>` → `AUTH PLAIN ***` (RFC 4954 §4 initial response); other commands unchanged. */
export function redactCommand(line: string): string {
  const m = /^(AUTH\s+\S+)\s+\S/i.exec(line);
  return m ? `${m[1]} ***` : line;
}
