/**
 * Logged-in IMAP sessions per user on this node (config `imap.max_connections_per_user`): a login
 * over the limit is answered `NO [LIMIT]` (RFC 5530 §3). Shared by both IMAP listeners. Only users
 * with an open session have an entry, so the map is bounded by the number of sessions.
 */
export class UserSessionCounter {
  private readonly open = new Map<string, number>();

  constructor(private max: number) {
    this.setMax(max);
  }

  setMax(max: number): void {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('max sessions per user must be an integer ≥ 1');
    this.max = max;
  }

  /** Counts a session of `userId`; its release function (idempotent), or null when at the limit. */
  acquire(userId: string): (() => void) | null {
    const current = this.open.get(userId) ?? 0;
    if (current >= this.max) return null;
    this.open.set(userId, current + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.open.get(userId) ?? 1) - 1;
      if (n <= 0) this.open.delete(userId);
      else this.open.set(userId, n);
    };
  }

  count(userId: string): number {
    return this.open.get(userId) ?? 0;
  }
}
