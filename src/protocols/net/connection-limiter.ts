/**
 * Simultaneous connections per client (SPEC §3.1 step 1, §5.1 "max connections per IP"). One
 * instance can be shared by several listeners so the limit covers all SMTP ports of a node.
 *
 * The map holds only clients with an open connection (an entry is deleted when its count returns to
 * zero), so its size is bounded by the number of open sockets.
 */
import { peerKey } from './peer-key.js';

export class ConnectionLimiter {
  private readonly open = new Map<string, number>();

  constructor(private max: number) {
    this.setMax(max);
  }

  setMax(max: number): void {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('max connections per client must be an integer ≥ 1');
    this.max = max;
  }

  /**
   * Counts a new connection from `address`. Returns its release function (safe to call more than
   * once), or null when the client already has the maximum open — the caller refuses the connection.
   */
  acquire(address: string): (() => void) | null {
    const key = peerKey(address);
    const current = this.open.get(key) ?? 0;
    if (current >= this.max) return null;
    this.open.set(key, current + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.open.get(key) ?? 1) - 1;
      if (n <= 0) this.open.delete(key);
      else this.open.set(key, n);
    };
  }

  /** Open connections of the client that `address` belongs to. */
  count(address: string): number {
    return this.open.get(peerKey(address)) ?? 0;
  }
}
