/**
 * The selected folder as one session sees it (RFC 9051 §2.3.1.2, §5.2, §7.4.1): the sequence
 * number ↔ UID map and the MODSEQ up to which the session has been told about changes.
 *
 * Memory per session is one ascending `number[]` of UIDs plus the few UIDs expunged by others and
 * not announced yet; flags are never cached per message. Everything the session announces comes
 * from `changesSince(lastModseq)`: the mailbox-state service keeps expunged entries (with their
 * expunge MODSEQ) until purge, so "what happened since n" is always answerable exactly.
 */
import type { Logger } from 'pino';
import type { Folder } from '../../../core/mailbox-state/index.js';
import type { FlagState } from '../../../core/mailbox-state/index.js';
import type { Scope } from '../../../core/scope.js';
import type { ChangeEvent } from '../../../store/events/change-bus.js';
import { flagList } from '../encoder/index.js';
import type { ImapValue } from '../encoder/types.js';
import { formatSequenceSet } from '../parser/index.js';
import type { SequenceSet } from '../parser/types.js';
import type { MailAccessServices } from '../services.js';
import { BadSequenceError, type Enableable, type SelectedMailbox } from './types.js';

/** The system flags every folder has (RFC 9051 §2.3.2), in the order FLAGS lists them. */
export const SYSTEM_FLAGS: readonly string[] = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

export interface SelectedMailboxOptions {
  services: MailAccessServices;
  scope: Scope;
  folder: Folder;
  readOnly: boolean;
  /** Extensions the client enabled; read at every sync (CONDSTORE → MODSEQ, QRESYNC → VANISHED). */
  enabled: ReadonlySet<Enableable>;
  /** Sends one untagged response (the session's `ctx.untagged`). */
  send: (...values: ImapValue[]) => void;
  log: Logger;
}

/** What SELECT/EXAMINE needs to answer, read while the view was built. */
export interface OpenedView {
  view: SelectedMailboxView;
  /** Messages not \Seen (rev1 `[UNSEEN n]` is the first of them; computed by the caller). */
  unseen: number;
  uidNext: number;
  uidValidity: number;
  highestModseq: number;
}

/**
 * Builds the view. Order matters: subscribe first (so no event is missed), then read the
 * counters, then the UIDs. A message appended between the two reads is then in `uids` with a
 * MODSEQ above `highestModseq` and the next sync merely reports its flags; reading UIDs first
 * could lose a message appended in between (its MODSEQ would be below the one recorded).
 */
export async function openSelectedMailbox(opts: SelectedMailboxOptions): Promise<OpenedView> {
  const view = new SelectedMailboxView(opts);
  try {
    const status = await opts.services.state.folderStatus(opts.scope, opts.folder.id);
    const uids = await opts.services.state.listUids(opts.scope, opts.folder.id);
    const keywords = await opts.services.state.keywordsInUse(opts.scope, opts.folder.id);
    view.init(uids, status.highestModseq, keywords);
    const last = uids.length > 0 ? uids[uids.length - 1] : 0;
    return {
      view,
      unseen: status.unseen,
      // UIDNEXT must stay above every UID the session was shown (RFC 9051 §2.3.1.1).
      uidNext: Math.max(status.uidNext, last + 1),
      uidValidity: status.uidValidity,
      highestModseq: status.highestModseq,
    };
  } catch (err) {
    view.close();
    throw err;
  }
}

/** Index of the first element of ascending `arr` that is ≥ `value` (arr.length when none). */
export function lowerBound(arr: readonly number[], value: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Ascending, without duplicates. */
function sortUnique(values: number[]): number[] {
  values.sort((a, b) => a - b);
  let n = 0;
  for (let i = 0; i < values.length; i++) if (i === 0 || values[i] !== values[i - 1]) values[n++] = values[i];
  values.length = n;
  return values;
}

/**
 * The UIDs a sequence set names, over the ascending UID list of a view (RFC 9051 §6.4.8, §9
 * seq-number). Pure: the unit tests call it directly.
 */
export function resolveSequenceSet(uids: readonly number[], set: SequenceSet, byUid: boolean, saved: readonly number[]): number[] {
  if (set.kind === 'saved') {
    // RFC 5182 §2.1: `$` holds UIDs; messages expunged since are silently left out.
    return sortUnique(saved.filter((uid) => uids[lowerBound(uids, uid)] === uid));
  }
  const out: number[] = [];
  const exists = uids.length;
  if (!byUid) {
    for (const range of set.ranges) {
      // "*" with an empty mailbox is a sequence number past the end too (RFC 9051 §9 seq-number).
      const from = range.from === '*' ? exists : range.from;
      const to = range.to === '*' ? exists : range.to;
      const lo = Math.min(from, to);
      const hi = Math.max(from, to);
      if (lo < 1 || hi > exists) {
        throw new BadSequenceError(exists === 0 ? 'No messages in the mailbox' : `Sequence number out of range (the mailbox has ${exists} messages)`);
      }
      for (let seq = lo; seq <= hi; seq++) out.push(uids[seq - 1]);
    }
  } else {
    // "*" is the largest UID in use (RFC 9051 §6.4.8); with an empty folder nothing matches.
    if (exists === 0) return [];
    const largest = uids[exists - 1];
    for (const range of set.ranges) {
      const from = range.from === '*' ? largest : range.from;
      const to = range.to === '*' ? largest : range.to;
      // A range past the end names the UIDs that exist in it: `559:*` always includes the last
      // message even when 559 is above every UID (RFC 9051 §6.4.8).
      const lo = Math.min(from, to);
      const hi = Math.max(from, to);
      for (let i = lowerBound(uids, lo); i < exists && uids[i] <= hi; i++) out.push(uids[i]);
    }
  }
  return set.ranges.length === 1 ? out : sortUnique(out);
}

export class SelectedMailboxView implements SelectedMailbox {
  readonly folder: Folder;
  readonly readOnly: boolean;
  savedResult: number[] = [];

  private uidList: number[] = [];
  private lastModseq = 0;
  /** A change event arrived since the last read of the database. */
  private dirty = false;
  private closed = false;
  private folderGone = false;
  /** UIDs expunged by others that this session still numbers (RFC 9051 §7.5.1: announced later). */
  private readonly pendingExpunge = new Set<number>();
  /** uid → MODSEQ of flag changes this session made and reported itself. */
  private readonly noted = new Map<number, number>();
  private readonly listeners = new Set<() => void>();
  private readonly knownKeywords = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private readonly unsubscribe: () => void;
  private readonly opts: SelectedMailboxOptions;

  constructor(opts: SelectedMailboxOptions) {
    this.opts = opts;
    this.folder = opts.folder;
    this.readOnly = opts.readOnly;
    this.unsubscribe = opts.services.bus.subscribe((event) => this.onEvent(event), { mailboxId: opts.folder.mailboxId });
  }

  /** Called once by openSelectedMailbox with what it read. */
  init(uids: number[], highestModseq: number, keywords: readonly string[] = []): void {
    this.uidList = uids;
    this.lastModseq = highestModseq;
    for (const k of keywords) this.knownKeywords.add(k);
  }

  get uids(): readonly number[] {
    return this.uidList;
  }

  get highestModseq(): number {
    return this.lastModseq;
  }

  /**
   * The folder was deleted (or renamed away and replaced) while selected: nothing more can be
   * read for it. The session may end the selection (RFC 9051 leaves the reaction to the server;
   * the view itself only stops reading).
   */
  get gone(): boolean {
    return this.folderGone;
  }

  seqOf(uid: number): number {
    const i = lowerBound(this.uidList, uid);
    return this.uidList[i] === uid ? i + 1 : 0;
  }

  resolve(set: SequenceSet, byUid: boolean): number[] {
    return resolveSequenceSet(this.uidList, set, byUid, this.savedResult);
  }

  get keywords(): readonly string[] {
    return [...this.knownKeywords].sort();
  }

  announceFlags(flags: readonly string[]): void {
    let added = false;
    for (const f of flags) {
      if (f.startsWith('\\') || this.knownKeywords.has(f)) continue;
      this.knownKeywords.add(f);
      added = true;
    }
    if (!added) return;
    const all = [...SYSTEM_FLAGS, ...this.keywords];
    this.opts.send({ atom: 'FLAGS' }, flagList(all));
    if (!this.readOnly) this.opts.send({ atom: 'OK' }, { raw: `[PERMANENTFLAGS (${[...all, '\\*'].join(' ')})]` }, { atom: 'Flags permitted' });
  }

  isPendingExpunge(uid: number): boolean {
    return this.pendingExpunge.has(uid);
  }

  noteFlags(changes: { uid: number; modseq: number; flags: string[] }[]): void {
    for (const c of changes) this.noted.set(c.uid, c.modseq);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.unsubscribe();
  }

  private onEvent(event: ChangeEvent): void {
    if (this.closed) return;
    // The bus already filtered by mailbox; `resync` (events may have been lost) bypasses filters.
    if (event.kind !== 'resync' && event.folderId !== this.folder.id) return;
    this.dirty = true;
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (err) {
        this.opts.log.warn({ err }, 'IMAP change listener failed');
      }
    }
  }

  /**
   * Syncs run one after the other (an IDLE burst must not interleave two reads and announce a
   * change twice or out of order).
   */
  sync(opts: { allowExpunge: boolean; force?: boolean }): Promise<void> {
    const run = this.queue.then(() => this.syncNow(opts));
    this.queue = run.catch(() => {});
    return run;
  }

  private async syncNow(opts: { allowExpunge: boolean; force?: boolean }): Promise<void> {
    if (this.closed || this.folderGone) return;
    const { services, scope, send, enabled } = this.opts;
    let changed: FlagState[] = [];
    let highest = this.lastModseq;
    if (opts.force || this.dirty) {
      // Cleared before the read: an event arriving while it runs marks the view dirty again.
      this.dirty = false;
      try {
        const changes = await services.state.changesSince(scope, this.folder.id, this.lastModseq);
        changed = changes.changed;
        highest = changes.highestModseq;
        for (const uid of changes.expunged) if (this.seqOf(uid) > 0) this.pendingExpunge.add(uid);
      } catch (err) {
        // Nothing is announced and the old view stays; the next command tries again, unless the
        // folder no longer exists (a NOT_FOUND from the mailbox-state service).
        if ((err as { code?: unknown }).code === 'NOT_FOUND') {
          this.folderGone = true;
          this.opts.log.info({ folderId: this.folder.id }, 'selected IMAP folder no longer exists');
          return;
        }
        this.dirty = true;
        this.opts.log.warn({ err, folderId: this.folder.id }, 'IMAP folder sync failed');
        return;
      }
      if (this.closed) return;
    }

    const condstore = enabled.has('CONDSTORE') || enabled.has('QRESYNC');
    const last = this.uidList.length > 0 ? this.uidList[this.uidList.length - 1] : 0;
    const added: number[] = [];
    const flagChanges: FlagState[] = [];
    for (const c of changed) {
      if (c.uid > last) {
        if (!this.pendingExpunge.has(c.uid)) added.push(c.uid);
      } else if (this.seqOf(c.uid) > 0) {
        if (this.pendingExpunge.has(c.uid) || this.noted.get(c.uid) === c.modseq) continue;
        flagChanges.push(c);
      } else {
        // A UID below the last one that the session never saw: UIDs are allocated in ascending
        // order and commit in that order, so this means a bug elsewhere. Numbering it now would
        // shift sequence numbers silently; it is left out.
        this.opts.log.warn({ folderId: this.folder.id, uid: c.uid }, 'IMAP sync: unknown UID below the last one ignored');
      }
    }

    // 1. EXPUNGE / VANISHED, only where the command allows it (RFC 9051 §7.5.1).
    if (opts.allowExpunge && this.pendingExpunge.size > 0) {
      const gone = [...this.pendingExpunge].sort((a, b) => a - b);
      if (enabled.has('QRESYNC')) {
        // RFC 7162 §3.2.10: VANISHED replaces EXPUNGE once QRESYNC is enabled.
        send({ atom: 'VANISHED' }, { atom: formatSequenceSet(gone) });
      } else {
        // Ascending order; each EXPUNGE renumbers the messages after it, so the n-th announced
        // message (0-based) is reported at its original sequence number minus n.
        gone.forEach((uid, n) => send(this.seqOf(uid) - n, { atom: 'EXPUNGE' }));
      }
      this.uidList = this.uidList.filter((uid) => !this.pendingExpunge.has(uid));
      this.pendingExpunge.clear();
    }
    // 2. EXISTS for new messages (their flags need no FETCH: a client fetches new messages anyway).
    if (added.length > 0) {
      for (const uid of added) this.uidList.push(uid);
      send(this.uidList.length, { atom: 'EXISTS' });
    }
    // 3. Flags changed by others.
    for (const c of flagChanges) {
      const seq = this.seqOf(c.uid);
      if (seq === 0) continue;
      this.announceFlags(c.flags);
      const items: ImapValue[] = [{ atom: 'UID' }, c.uid, { atom: 'FLAGS' }, flagList(c.flags)];
      if (condstore) items.push({ atom: 'MODSEQ' }, [c.modseq]);
      send(seq, { atom: 'FETCH' }, items);
    }
    if (highest > this.lastModseq) {
      this.lastModseq = highest;
      // Own changes at or below what was just read have been skipped above; forget them.
      for (const [uid, modseq] of this.noted) if (modseq <= highest) this.noted.delete(uid);
    }
  }
}
