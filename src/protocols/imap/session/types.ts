/**
 * The seam between the IMAP session (connection, state machine, dispatch: ./session.ts) and the
 * command modules (../commands/<name>.ts). Each command module default-exports a `CommandModule`;
 * ../commands/index.ts discovers them, so adding a command is adding a file.
 *
 * A session runs one command at a time (commands from a pipelining client are read ahead but
 * executed in order, RFC 9051 §5.5), so handlers never race with each other inside one session.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Folder } from '../../../core/mailbox-state/index.js';
import type { Scope } from '../../../core/scope.js';
import type { Mailbox } from '../../../core/tenancy/types.js';
import type { ImapValue } from '../encoder/types.js';
import type { ParsedCommand, SequenceSet } from '../parser/types.js';
import type { MailAccessServices, MailUser } from '../services.js';

export type SessionState = 'not-authenticated' | 'authenticated' | 'selected' | 'logout';

/** Extensions a client can ENABLE (RFC 5161). */
export type Enableable = 'CONDSTORE' | 'QRESYNC' | 'IMAP4REV2' | 'UTF8=ACCEPT';

export interface ImapLimits {
  /** Longest command line (without literals), octets. */
  maxLineBytes: number;
  /** Largest literal outside APPEND (mailbox names, search strings…), octets. */
  maxLiteralBytes: number;
  /** Largest APPEND message = APPENDLIMIT (config mail.max_message_bytes). */
  maxAppendBytes: number;
  /** Largest whole command (line + literals) except the APPEND message literal, octets. */
  maxCommandBytes: number;
  /** Bad commands before the session is closed with `* BYE`. */
  maxBadCommands: number;
  /** Autologout timer (RFC 9051 §5.4: at least 30 minutes), not authenticated: shorter. */
  idleTimeoutMs: number;
  preAuthTimeoutMs: number;
}

/** The tagged completion of a command (RFC 9051 §7.1). */
export interface CommandResult {
  status: 'OK' | 'NO' | 'BAD';
  /** Response code without brackets, e.g. `READ-WRITE`, `APPENDUID 38505 3955`, `TRYCREATE`. */
  code?: string;
  text: string;
}

/** The logged-in user's side of the session (set by LOGIN/AUTHENTICATE). */
export interface Account {
  user: MailUser;
  scope: Scope;
  mailbox: Mailbox;
}

/**
 * The selected folder as this session sees it (RFC 9051 §2.3.1.2, §7.4.1, §5.2): the sequence
 * number ↔ UID map, which only changes when the session announces EXISTS or EXPUNGE/VANISHED, and
 * the flags/MODSEQs the session last reported. Built by SELECT/EXAMINE (commands/select.ts);
 * implemented in ./selected-mailbox.ts.
 */
export interface SelectedMailbox {
  readonly folder: Folder;
  readonly readOnly: boolean;
  /** Live UIDs in sequence order as last announced: `uids[seq - 1]`. */
  readonly uids: readonly number[];
  /** Highest MODSEQ this session has been told about (HIGHESTMODSEQ / FETCH MODSEQ). */
  readonly highestModseq: number;
  /** Sequence number of a UID, 0 when the session does not know it. */
  seqOf(uid: number): number;
  /**
   * The UIDs a sequence set names, ascending (RFC 9051 §6.4.8, §9 "seq-number"): `*` is the
   * last message (UID set: the largest UID); a UID range past the end means the existing UIDs in
   * it; `$` is the saved search result. `byUid: false` and a number past EXISTS → throws
   * `BadSequenceError` (the caller answers BAD).
   */
  resolve(set: SequenceSet, byUid: boolean): number[];
  /**
   * Reads changes from the mailbox-state service and sends the untagged responses for them:
   * FETCH (FLAGS [MODSEQ]) for flag changes by others, EXPUNGE / VANISHED only when
   * `allowExpunge` (not during FETCH, STORE, SEARCH — RFC 9051 §7.5.1), then EXISTS.
   * Never announces a smaller EXISTS without the EXPUNGEs that explain it; on an error it sends
   * nothing and keeps the old view. Without `force` it reads the database only when a change
   * event for the folder arrived since the last sync (the session calls it after every command);
   * NOOP, CHECK and IDLE force it.
   */
  sync(opts: { allowExpunge: boolean; force?: boolean }): Promise<void>;
  /** Called on every change event for the folder (IDLE wakes up on it); returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
  /** The session's own STORE/expunge changed these: record without announcing twice. */
  noteFlags(changes: { uid: number; modseq: number; flags: string[] }[]): void;
  /** Keywords this session has been told are in use (FLAGS at SELECT and every update since). */
  readonly keywords: readonly string[];
  /**
   * Call before sending a response that shows `flags`: when one of them is a keyword the session
   * has not been told of, `* FLAGS (…)` (and, read-write, `* OK [PERMANENTFLAGS (… \*)]`) with the
   * extended list goes out first (RFC 9051 §7.3.5: FLAGS lists the flags that apply to the
   * mailbox; a client may ignore a keyword missing there).
   */
  announceFlags(flags: readonly string[]): void;
  /** UIDs expunged by another session that this session has not announced yet (FETCH of them: RFC 9051 §5.5). */
  isPendingExpunge(uid: number): boolean;
  /**
   * The folder was deleted (or renamed away) while selected: the view reads nothing more, and the
   * session ends with `* BYE` after the current response (RFC 9051 leaves the reaction to the server).
   */
  readonly gone: boolean;
  /** Saved search result (RFC 5182), UIDs. */
  savedResult: number[];
  /** Stops listening for change events. */
  close(): void;
}

export interface SessionInfo {
  readonly id: string;
  readonly remoteAddress: string;
  readonly listener: string;
  state: SessionState;
  /** TLS is active (implicit TLS or after STARTTLS). */
  readonly secure: boolean;
  account: Account | null;
  selected: SelectedMailbox | null;
  readonly enabled: Set<Enableable>;
  /** RFC 9051 rev2 behaviour (ENABLE IMAP4rev2): no \Recent, ESEARCH for SEARCH, LIST … */
  readonly rev2: boolean;
  /** UTF-8 allowed in quoted strings and mailbox names (UTF8=ACCEPT or IMAP4rev2). */
  readonly utf8: boolean;
}

export interface CommandContext {
  readonly session: SessionInfo;
  readonly services: MailAccessServices;
  readonly limits: ImapLimits;
  readonly log: Logger;
  /** Sends one untagged response: `* ` + the encoded values joined by spaces + CRLF. */
  untagged(...values: ImapValue[]): void;
  /** Writes bytes as they are (pre-encoded parts of a response being streamed). */
  write(chunk: Buffer | string): void;
  /** Streams a body into the response (after its literal header), honouring back-pressure. */
  writeStream(stream: Readable): Promise<void>;
  /** Sends `+ text` and resolves with the client's next line (AUTHENTICATE, IDLE's DONE). */
  continuation(text: string): Promise<string>;
  /** Waits until the client sends a line while `whileWaiting` runs (IDLE): resolves with the line. */
  readLine(): Promise<string>;
  /** Changes state (the session enforces the allowed transitions of RFC 9051 §3). */
  setState(state: SessionState): void;
  /** Enters the selected state (closing a previously selected folder, whose view is closed). */
  select(view: SelectedMailbox): void;
  /** Leaves the selected state. */
  unselect(): void;
  /** The capabilities to announce now (they depend on TLS and login state). */
  capabilities(): string[];
}

export interface CommandModule {
  /** Upper-cased names this module handles, e.g. ['FETCH', 'UID FETCH']. */
  names: string[];
  /** States the command is valid in (RFC 9051 §6). */
  states: SessionState[];
  handle(ctx: CommandContext, cmd: ParsedCommand): Promise<CommandResult>;
}

/** A sequence number past EXISTS or 0 in a message sequence set: `BAD` (RFC 9051 §9 seq-number). */
export class BadSequenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadSequenceError';
  }
}

/** A syntax error in a command's arguments, found by a grammar helper: `BAD` with this text. */
export class ImapSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImapSyntaxError';
  }
}
