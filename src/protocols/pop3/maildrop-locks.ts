/**
 * The exclusive-access lock on a maildrop (RFC 1939 §8: "the POP3 server then acquires an
 * exclusive-access lock on the maildrop"), held from the end of AUTHORIZATION until the session
 * closes. A second POP3 session of the same mailbox is refused with `[IN-USE]` (RFC 2449 §8.1.1).
 *
 * The lock is per node, in memory: a POP3 client keeps one session at a time, so this catches the
 * common case (a client that reconnects before its old session ended, two clients on one account)
 * without a database round trip. Sessions on different nodes of a cluster are not excluded; their
 * deletions still go through the mailbox-state service, which ignores UIDs already removed.
 * IMAP sessions are not locked out (they see POP3's deletions as expunges).
 */
export class MaildropLocks {
  private readonly held = new Set<string>();

  /** Takes the lock on `mailboxId`; returns its release function (idempotent), or null when held. */
  acquire(mailboxId: string): (() => void) | null {
    if (this.held.has(mailboxId)) return null;
    this.held.add(mailboxId);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(mailboxId);
    };
  }

  isHeld(mailboxId: string): boolean {
    return this.held.has(mailboxId);
  }
}
