/** One SMTP server under measurement (MaiRust in a shape, or the peer Postfix). */
export interface BenchTarget {
  /** Row label in the results table. */
  name: string;
  host: string;
  port: number;
  /** The mailbox every message is addressed to. */
  recipient: string;
  /** Messages stored in that mailbox so far (MaiRust: INBOX entries; Postfix: files in Maildir/new). */
  storedCount(): Promise<number>;
  close(): Promise<void>;
}

/** Polls `count` until it reaches `expected` (or `timeoutMs` passes); returns the last count and when it was read. */
export async function waitForCount(count: () => Promise<number>, expected: number, timeoutMs: number, intervalMs = 50): Promise<{ count: number; at: number }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const n = await count();
    const at = performance.now();
    if (n >= expected || at >= deadline) return { count: n, at };
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
