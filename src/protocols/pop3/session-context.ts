/**
 * What a POP3 command handler (authorization.ts, transaction.ts, retrieve.ts, update.ts, stls.ts)
 * sees of its session: the state, which it may change, the replies it queues, and the services.
 * The session (session.ts) owns the socket, the timers and the input loop.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { Scope } from '../../core/scope.js';
import type { Mailbox } from '../../core/tenancy/types.js';
import type { LineReader } from '../net/line-reader.js';
import type { MailAccessServices, MailUser } from '../imap/services.js';
import type { Maildrop } from './maildrop.js';
import type { MaildropLocks } from './maildrop-locks.js';

/**
 * RFC 1939 §3 states, plus the waits inside them:
 *   authorization ──USER/PASS, AUTH──▶ transaction ──QUIT──▶ (update) closing
 *   authorization ──AUTH without initial response──▶ sasl (one continuation line) ──▶ authorization | transaction
 *   authorization ──STLS──▶ tls (handshake) ──▶ authorization (everything forgotten)
 */
export type Pop3State = 'authorization' | 'sasl' | 'tls' | 'transaction' | 'closing';

export interface Pop3Limits {
  /** Longest command line in octets including CRLF (`pop3.max_line_bytes`). */
  maxLineBytes: number;
  /** Autologout timer (RFC 1939 §3; config in minutes, tests use milliseconds). */
  idleTimeoutMs: number;
  /** Bad commands a session may send; the next one closes it. */
  maxBadCommands: number;
}

export interface CommandDeps {
  services: MailAccessServices;
  limits: Pop3Limits;
  locks: MaildropLocks;
  /** `pop3` (STLS offered) or `pop3s` (implicit TLS): audit entries name it. */
  listener: 'pop3' | 'pop3s';
  /** The name in the greeting's timestamp (`server.hostname`). */
  hostname: string;
  /** The current certificate for STLS; null when STLS is not offered (implicit TLS). */
  secureContext: () => tls.SecureContext | null;
  log: Logger;
}

/** The logged-in side of a session (TRANSACTION state). */
export interface Pop3Account {
  user: MailUser;
  scope: Scope;
  mailbox: Mailbox;
  maildrop: Maildrop;
  /** Releases the maildrop lock; called when the session closes, whatever the reason. */
  release: () => void;
}

export interface SessionInfo {
  id: string;
  remoteAddress: string;
  secure: boolean;
}

export interface SessionContext {
  readonly info: SessionInfo;
  readonly deps: CommandDeps;
  readonly log: Logger;
  readonly reader: LineReader;
  state: Pop3State;
  /** USER seen, waiting for PASS (RFC 1939 §7). */
  pendingUser: string | null;
  account: Pop3Account | null;
  /** Queues one status line (CRLF added). */
  reply(line: string): void;
  /** Queues a multi-line response (RFC 1939 §3): status line, byte-stuffed lines, ".". */
  replyLines(status: string, lines: Iterable<string>): void;
  /** Sends what is queued. */
  flush(): void;
  /**
   * Writes raw response bytes now, waiting while the client is not reading (backpressure).
   * Resolves false when the connection is gone.
   */
  write(bytes: Buffer): Promise<boolean>;
  /** Queues a final reply and closes the connection. */
  end(line: string): void;
  /** Drops the connection without a reply (a response that cannot be completed). */
  abort(): void;
  /** Restarts the autologout timer (progress that is not input: a RETR the client is reading). */
  touch(): void;
  /** Moves the session onto a socket layered over its current one (STLS). */
  switchSocket(layer: (raw: net.Socket) => net.Socket): net.Socket;
  /** Starts reading from the (new) socket again after a switch. */
  startReading(): void;
  /** Counts an unknown or malformed command; closes the session over the limit. */
  bad(line: string): void;
}
