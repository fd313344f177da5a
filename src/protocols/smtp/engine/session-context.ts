/**
 * What a command handler (hello-command.ts, envelope-commands.ts, data-command.ts, bdat-command.ts,
 * starttls.ts, auth-command.ts) sees of its SMTP session: the session's state, which it may change,
 * and the few ways it may talk to the client. The session (session.ts) implements it; it owns the
 * socket, the timers and the input loop, and calls the handlers one command at a time, so a handler
 * never runs concurrently with another.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { InboundPipeline, ListenerKind, SmtpSessionInfo } from '../../../pipeline/inbound/contract.js';
import type { Metrics } from '../../../observability/metrics.js';
import type { AuthDeps } from '../auth.js';
import type { SmtpLimits } from '../limits.js';
import type { SmtpReply } from '../replies.js';
import type { AuthExchange } from './auth-exchange.js';
import type { DotUnstuffer } from './data-reader.js';
import type { LineReader } from '../../net/line-reader.js';
import type { MailTransaction } from './transaction.js';

/** Where the session is (the diagram at the top of session.ts). */
export type SessionPhase = 'greeting' | 'command' | 'auth' | 'data' | 'bdat' | 'tls' | 'closing';

/** The services and settings the handlers use (session.ts adds what only the session needs). */
export interface CommandDeps {
  kind: ListenerKind;
  hostname: string;
  limits: SmtpLimits;
  pipeline: InboundPipeline;
  auth: AuthDeps;
  /** The current certificate for STARTTLS; null when STARTTLS is not offered. */
  secureContext: () => tls.SecureContext | null;
  log: Logger;
  metrics?: Metrics;
  metricLabel: string;
}

/** One BDAT chunk being read (RFC 3030 §2): its octets are read even when the chunk is refused. */
export interface BdatChunk {
  /** Octets of the chunk still to come. */
  remaining: number;
  /** `BDAT n LAST`: the message ends with this chunk. */
  last: boolean;
  /** The reply when the chunk is refused (its octets are dropped); null when it is taken. */
  refusal: SmtpReply | null;
}

export interface SessionContext {
  readonly deps: CommandDeps;
  /** What the pipeline is told about the session (TLS, EHLO name, user). */
  readonly info: SmtpSessionInfo;
  readonly log: Logger;
  /** Input received and not yet consumed. */
  readonly reader: LineReader;
  phase: SessionPhase;
  /** EHLO/HELO name; null until the client introduced itself (again after STARTTLS). */
  helo: string | null;
  /** The mail transaction once MAIL was accepted; null between transactions. */
  transaction: MailTransaction | null;
  /** The AUTH exchange in progress (phase `auth`). */
  authExchange: AuthExchange | null;
  /** The DATA body decoder in progress (phase `data`). */
  unstuffer: DotUnstuffer | null;
  /** The BDAT chunk in progress (phase `bdat`). */
  bdat: BdatChunk | null;

  /** Queues one reply from the reply table; replies are written together (RFC 2920 PIPELINING). */
  reply(reply: SmtpReply): void;
  /** Queues reply text that is not a table entry (greeting-style lines, EHLO, `334` challenges). */
  send(text: string): void;
  /** Writes the queued replies now (the client waits for this one before it goes on). */
  flush(): void;
  /** Aborts the mail transaction, if any (RSET, EHLO, STARTTLS). */
  resetTransaction(): void;
  /** The client did something: its idle time starts again (RFC 5321 §4.5.3.2.7). */
  touch(): void;
  /**
   * Moves the session onto a socket layered over its current one (STARTTLS): from now on replies go
   * to the new socket and a close of either ends the session. Nothing is read from the new socket
   * until `startReading`.
   */
  switchSocket(layer: (raw: net.Socket) => net.Socket): net.Socket;
  /** Reads client input from the session's (new) socket. */
  startReading(): void;
}
