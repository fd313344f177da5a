/**
 * A POP3 session's maildrop (RFC 1939 §5): the INBOX as it was when the session entered the
 * TRANSACTION state. Message numbers 1..n stay fixed for the whole session; messages that arrive
 * later are not shown, messages another session removes keep their number (their content stays
 * readable until the purge, SPEC §4 "Lifecycle").
 *
 * Only what the commands need is held — UID, size and message id per message, in compact arrays,
 * never the contents — and it is read in pages of `listEntries` so a large INBOX never becomes one
 * huge query result. Deletion marks (DELE) and "retrieved" marks (RETR/TOP, for \Seen at QUIT) are
 * one byte per message; nothing is written before the UPDATE state (update.ts).
 */
import type { Entry, Folder, ListEntriesOptions } from '../../core/mailbox-state/index.js';
import type { Scope } from '../../core/scope.js';

/** The one read the maildrop needs from the mailbox-state service. */
export interface EntrySource {
  listEntries(scope: Scope, folderId: string, opts?: ListEntriesOptions): Promise<Entry[]>;
}

export interface MaildropMessage {
  /** Message number in this session (1-based). */
  msg: number;
  uid: number;
  size: number;
  messageId: string;
}

/** listEntries' largest page (mailbox-state limits.ts MAX_LIST_LIMIT). */
export const MAILDROP_PAGE_SIZE = 10_000;

const DELETED = 1;
const RETRIEVED = 2;

export class Maildrop {
  private uids: Float64Array = new Float64Array(0);
  private sizes: Float64Array = new Float64Array(0);
  private messageIds: string[] = [];
  private marks: Uint8Array = new Uint8Array(0);
  private length = 0;
  private liveCount = 0;
  private liveOctets = 0;

  private constructor(readonly folder: Folder) {}

  /** Reads the folder's live entries page by page, ascending by UID. */
  static async load(source: EntrySource, scope: Scope, folder: Folder, pageSize = MAILDROP_PAGE_SIZE): Promise<Maildrop> {
    const drop = new Maildrop(folder);
    let afterUid: number | undefined;
    for (;;) {
      const page = await source.listEntries(scope, folder.id, { limit: pageSize, afterUid });
      for (const e of page) drop.add(e.uid, e.size, e.messageId);
      if (page.length < pageSize) break;
      afterUid = page[page.length - 1].uid;
    }
    drop.marks = new Uint8Array(drop.length);
    return drop;
  }

  /** Messages not marked deleted (STAT, RFC 1939 §5). */
  get count(): number {
    return this.liveCount;
  }

  /** Their total size in octets. */
  get octets(): number {
    return this.liveOctets;
  }

  /** Highest message number, deleted ones included: the range LIST/UIDL walk. */
  get highest(): number {
    return this.length;
  }

  /** Message `msg`, or null when it does not exist or is marked deleted (RFC 1939 §5). */
  get(msg: number): MaildropMessage | null {
    if (!Number.isInteger(msg) || msg < 1 || msg > this.length) return null;
    const i = msg - 1;
    if (this.marks[i] & DELETED) return null;
    return { msg, uid: this.uids[i], size: this.sizes[i], messageId: this.messageIds[i] };
  }

  /**
   * The unique-id listing of a message (RFC 1939 §7 UIDL): UIDVALIDITY and UID, so it stays the same
   * across sessions and changes when the folder's UIDs are reset. Printable ASCII, at most 21 chars.
   */
  uniqueId(m: MaildropMessage): string {
    return `${this.folder.uidValidity}.${m.uid}`;
  }

  /** Live messages in message-number order. */
  *live(): IterableIterator<MaildropMessage> {
    for (let msg = 1; msg <= this.length; msg++) {
      const m = this.get(msg);
      if (m) yield m;
    }
  }

  markDeleted(msg: number): boolean {
    const m = this.get(msg);
    if (!m) return false;
    this.marks[msg - 1] |= DELETED;
    this.liveCount--;
    this.liveOctets -= m.size;
    return true;
  }

  markRetrieved(msg: number): void {
    if (this.get(msg)) this.marks[msg - 1] |= RETRIEVED;
  }

  /** RSET (RFC 1939 §5): unmarks every deleted message. Retrieved marks stay: the client did read them. */
  reset(): void {
    for (let i = 0; i < this.length; i++) this.marks[i] &= ~DELETED;
    this.liveCount = this.length;
    this.liveOctets = this.sizes.subarray(0, this.length).reduce((sum, s) => sum + s, 0);
  }

  /** UIDs marked deleted, ascending. */
  deletedUids(): number[] {
    return this.uidsWhere((mark) => (mark & DELETED) !== 0);
  }

  /** UIDs retrieved and not deleted, ascending: they get \Seen at QUIT. */
  retrievedUids(): number[] {
    return this.uidsWhere((mark) => mark === RETRIEVED);
  }

  private uidsWhere(test: (mark: number) => boolean): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.length; i++) if (test(this.marks[i])) out.push(this.uids[i]);
    return out;
  }

  private add(uid: number, size: number, messageId: string): void {
    if (this.length === this.uids.length) {
      const capacity = Math.max(64, this.length * 2);
      this.uids = grow(this.uids, capacity);
      this.sizes = grow(this.sizes, capacity);
    }
    this.uids[this.length] = uid;
    this.sizes[this.length] = size;
    this.messageIds.push(messageId);
    this.length++;
    this.liveCount++;
    this.liveOctets += size;
  }
}

function grow(a: Float64Array, capacity: number): Float64Array {
  const next = new Float64Array(capacity);
  next.set(a);
  return next;
}
