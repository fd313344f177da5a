/**
 * What the listener knows about each open SMTP session, keyed by the session id (which the listener
 * gives smtp-server when it hands over the socket, so both sides use the same id).
 *
 * Besides the SmtpSessionInfo that the pipeline sees, a session has the mail transaction in progress
 * as the pipeline accepted it (sender, recipients), the socket replies currently travel on (the TLS
 * socket after STARTTLS) for the shutdown reply, and how many of our handlers are still working.
 */
import type net from 'node:net';
import type { Logger } from 'pino';
import type { SMTPServerSession } from 'smtp-server';
import type { AcceptedRecipient, Envelope, ListenerKind, SmtpSessionInfo } from '../../pipeline/inbound/contract.js';

export interface SessionState {
  readonly info: SmtpSessionInfo;
  readonly log: Logger;
  readonly startedAt: number;
  /** smtp-server's session object, known from onConnect on. */
  library?: SMTPServerSession;
  /** The socket the session's replies are written to now. */
  socket: net.Socket;
  /** The transaction the pipeline accepted so far; undefined between transactions. */
  transaction?: { mailFrom: string | null; declaredSize?: number; recipients: AcceptedRecipient[] };
  /** Our handlers (AUTH, MAIL, RCPT, DATA) that have not called back yet. */
  busy: number;
  /** Set once the shutdown reply was written. */
  closing: boolean;
  /** Frees the session's slot in the per-client connection limit. */
  release: () => void;
}

export class SessionRegistry {
  private readonly sessions = new Map<string, SessionState>();

  /** Registers a session; its log lines carry `session_id` and `remote_addr` (SPEC §2 log format). */
  add(id: string, listener: ListenerKind, socket: net.Socket, listenerLog: Logger, release: () => void): SessionState {
    const remoteAddress = normalizeAddress(socket.remoteAddress);
    const log = listenerLog.child({ session_id: id, remote_addr: remoteAddress });
    const state: SessionState = {
      info: {
        id,
        listener,
        remoteAddress,
        remotePort: socket.remotePort ?? 0,
        helo: '',
        secure: false,
      },
      log,
      startedAt: performance.now(),
      socket,
      busy: 0,
      closing: false,
      release,
    };
    this.sessions.set(id, state);
    return state;
  }

  get(id: string): SessionState | undefined {
    return this.sessions.get(id);
  }

  /** The state of a library session, with its info brought up to date (HELO name, TLS). */
  of(session: SMTPServerSession): SessionState {
    const state = this.sessions.get(session.id);
    if (!state) throw new Error(`unknown SMTP session ${session.id}`);
    state.library = session;
    state.info.helo = typeof session.hostNameAppearsAs === 'string' ? session.hostNameAppearsAs : '';
    state.info.secure = session.secure;
    return state;
  }

  delete(id: string): SessionState | undefined {
    const state = this.sessions.get(id);
    this.sessions.delete(id);
    return state;
  }

  get size(): number {
    return this.sessions.size;
  }

  all(): SessionState[] {
    return [...this.sessions.values()];
  }
}

/** Between transactions and not waiting for one of our handlers: safe to end with a 421. */
export function isIdle(state: SessionState): boolean {
  return state.busy === 0 && !state.library?.envelope?.mailFrom;
}

/** The envelope as the pipeline sees it. */
export function envelopeOf(state: SessionState): Envelope {
  const t = state.transaction;
  return { mailFrom: t?.mailFrom ?? null, declaredSize: t?.declaredSize, recipients: [...(t?.recipients ?? [])] };
}

/** Same form as smtp-server's session.remoteAddress: an IPv4 peer of a dual-stack socket without ::ffff:. */
function normalizeAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}
