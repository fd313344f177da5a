/**
 * One SMTP session (RFC 5321) as an explicit state machine over a socket.
 *
 *   greeting ──(pause over, 220)──▶ command ◀──────────────┐
 *      │ client talks first: 554 5.5.0, close              │
 *   command ──AUTH──▶ auth (334 challenges) ───────────────┤   auth-command.ts
 *   command ──DATA──▶ data (dot-unstuffed stream) ─────────┤   data-command.ts
 *   command ──BDAT n──▶ bdat (exactly n octets) ───────────┤   bdat-command.ts
 *   command ──STARTTLS──▶ tls (handshake; everything resets, EHLO again) ─┘   starttls.ts
 *   any ──QUIT / limit / timeout / shutdown──▶ closing
 *
 * Besides the phase, a session has flags: TLS active, the EHLO/HELO name (null = none yet, again
 * after STARTTLS), the authenticated user, and the mail transaction (transaction.ts).
 *
 * This file owns the socket, the timers and the input loop, and dispatches each command to its
 * handler; the handlers see the session as a SessionContext (session-context.ts).
 *
 * Input (RFC 2920 PIPELINING): bytes go into a bounded LineReader; one pump loop takes commands in
 * order and answers them; replies are collected and written together when the loop runs out of
 * input, so a pipelined group gets its replies in one packet. Above a high-water mark the socket is
 * paused, which bounds what a client can make us buffer.
 *
 * Time: the idle timer (RFC 5321 §4.5.3.2.7) runs only while the session waits for the client; work
 * of the server (pipeline calls, a slow blob store) does not count, but is bounded by itself
 * (`dataTimeoutMs`).
 */
import type net from 'node:net';
import type { Logger } from 'pino';
import type { SmtpSessionInfo } from '../../../pipeline/inbound/contract.js';
import { REPLIES, formatReply, type SmtpReply } from '../replies.js';
import type { AuthExchange } from './auth-exchange.js';
import { authResponse, startAuth } from './auth-command.js';
import { startBdat, takeBdat } from './bdat-command.js';
import { parseCommand } from './command-parser.js';
import { startData, takeData } from './data-command.js';
import type { DotUnstuffer } from './data-reader.js';
import { mailCommand, rcptCommand } from './envelope-commands.js';
import { hello } from './hello-command.js';
import { LineReader } from '../../net/line-reader.js';
import type { BdatChunk, CommandDeps, SessionContext, SessionPhase } from './session-context.js';
import { startTls } from './starttls.js';
import type { MailTransaction } from './transaction.js';

export type { SessionPhase } from './session-context.js';

export interface SessionDeps extends CommandDeps {
  /** True once the listener is closing: idle sessions end with 421 4.3.2. */
  draining: () => boolean;
  /** Called once when the socket has closed. */
  onClose: (session: SmtpSession) => void;
}

/** After a final reply, how long the client has to close before the socket is destroyed. */
export const LINGER_MS = 1000;
/** Input buffered beyond this pauses the socket (bounded memory per session). */
const MIN_HIGH_WATER = 64 * 1024;

/**
 * The listener uses `start`, `end`, `idle`, `ended`, `log` and `startedAt`; the other public members
 * are the SessionContext of the command handlers in this folder.
 */
export class SmtpSession implements SessionContext {
  readonly info: SmtpSessionInfo;
  readonly log: Logger;
  readonly startedAt = performance.now();
  readonly reader: LineReader;
  phase: SessionPhase = 'greeting';
  helo: string | null = null;
  transaction: MailTransaction | null = null;
  authExchange: AuthExchange | null = null;
  unstuffer: DotUnstuffer | null = null;
  bdat: BdatChunk | null = null;
  private socket: net.Socket;
  private readonly highWater: number;
  private out: string[] = [];
  private badCommands = 0;
  private pumping = false;
  private closed = false;
  private readonly idleTimer: NodeJS.Timeout;
  private greetingTimer: NodeJS.Timeout | undefined;

  constructor(
    socket: net.Socket,
    id: string,
    readonly deps: SessionDeps,
    secure: boolean,
  ) {
    this.socket = socket;
    this.reader = new LineReader(deps.limits.maxLineLength);
    this.highWater = Math.max(MIN_HIGH_WATER, 2 * deps.limits.maxLineLength);
    this.info = {
      id,
      listener: deps.kind,
      remoteAddress: normalizeAddress(socket.remoteAddress),
      remotePort: socket.remotePort ?? 0,
      helo: '',
      secure,
    };
    this.log = deps.log.child({ session_id: id, remote_addr: this.info.remoteAddress });
    this.idleTimer = setTimeout(() => this.onIdleTimeout(), deps.limits.commandTimeoutMs);
    this.attach(socket);
  }

  /** Sends the greeting, after the configured pause (RFC 5321 §4.3.1). */
  start(): void {
    this.log.debug('session started');
    const delay = this.deps.limits.greetingDelayMs;
    if (delay > 0) this.greetingTimer = setTimeout(() => this.greet(), delay);
    else this.greet();
  }

  /** Between transactions and not working on a command: safe to end with 421 4.3.2. */
  get idle(): boolean {
    return !this.pumping && !this.transaction && (this.phase === 'command' || this.phase === 'greeting');
  }

  get ended(): boolean {
    return this.phase === 'closing';
  }

  /** Ends the session with a final reply (shutdown: 421 4.3.2). */
  end(reply: SmtpReply): void {
    if (this.phase === 'closing') return;
    this.reply(reply);
    this.close();
  }

  // ── SessionContext: replies and the socket, for the command handlers ──────────────────────────

  reply(reply: SmtpReply): void {
    this.out.push(`${formatReply(reply)}\r\n`);
  }

  send(text: string): void {
    this.out.push(text);
  }

  flush(): void {
    if (this.out.length === 0 || this.socket.destroyed) return;
    this.socket.write(this.out.join(''));
    this.out = [];
  }

  resetTransaction(): void {
    this.transaction?.abort(new Error('transaction reset'));
    this.transaction = null;
  }

  touch(): void {
    this.idleTimer.refresh();
  }

  switchSocket(layer: (raw: net.Socket) => net.Socket): net.Socket {
    const raw = this.socket;
    this.detach(raw);
    const next = layer(raw);
    this.socket = next;
    next.on('error', this.onSocketError);
    // Either socket closing ends the session (once: onSocketClose is guarded); the raw socket's
    // errors stay logged by the listener attached in the constructor.
    next.on('close', this.onSocketClose);
    raw.on('close', this.onSocketClose);
    return next;
  }

  startReading(): void {
    this.socket.on('data', this.onData);
  }

  // ── socket ────────────────────────────────────────────────────────────────────────────────────

  private readonly onData = (chunk: Buffer) => {
    this.idleTimer.refresh();
    if (this.phase === 'greeting') {
      this.log.info('client talked before the greeting');
      return this.end(REPLIES.EARLY_TALKER);
    }
    if (this.phase === 'closing' || this.phase === 'tls') return;
    this.reader.push(chunk);
    if (this.reader.buffered > this.highWater) this.socket.pause();
    void this.pump();
  };

  private readonly onSocketClose = () => {
    if (this.closed) return;
    this.closed = true;
    this.phase = 'closing';
    clearTimeout(this.idleTimer);
    clearTimeout(this.greetingTimer);
    this.transaction?.abort(new Error('connection closed before the end of the message'));
    this.log.debug('session closed');
    this.deps.onClose(this);
  };

  private readonly onSocketError = (err: Error & { code?: string }) => {
    this.log.debug({ err: { message: err.message, code: err.code } }, 'socket error');
  };

  private attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('close', this.onSocketClose);
    socket.on('error', this.onSocketError);
  }

  private detach(socket: net.Socket): void {
    socket.off('data', this.onData);
    socket.off('close', this.onSocketClose);
  }

  private greet(): void {
    if (this.phase !== 'greeting') return;
    this.phase = 'command';
    // RFC 2034 §3: the greeting carries no enhanced status code.
    this.send(`220 ${this.deps.hostname} ESMTP MaiRust\r\n`);
    this.flush();
  }

  private close(): void {
    if (this.phase === 'closing' && this.socket.writableEnded) return;
    this.phase = 'closing';
    clearTimeout(this.greetingTimer);
    this.flush();
    this.transaction?.abort(new Error('session ended before the end of the message'));
    if (!this.socket.destroyed) this.socket.end();
    const socket = this.socket;
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  }

  private onIdleTimeout(): void {
    if (this.phase === 'closing') return;
    // The server is working (pipeline, greeting pause): not the client's idle time.
    if (this.pumping || this.phase === 'greeting') return void this.idleTimer.refresh();
    if (this.phase === 'tls') {
      this.log.info('TLS handshake not completed in time');
      return void this.socket.destroy();
    }
    this.log.info('session timed out');
    this.end(REPLIES.COMMAND_TIMEOUT);
  }

  // ── input loop ────────────────────────────────────────────────────────────────────────────────

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.phase !== 'closing' && (await this.step()));
    } catch (err) {
      this.log.error({ err }, 'SMTP session failed');
      this.end(REPLIES.TEMP_LOCAL_ERROR);
    } finally {
      this.pumping = false;
      this.flush();
      if (this.phase !== 'closing' && this.deps.draining() && this.idle) this.end(REPLIES.SHUTTING_DOWN);
      this.resumeInput();
    }
  }

  /**
   * Reads on only when there is room: the input buffer is below the high-water mark and the client
   * reads its replies (a client that pipelines without reading must not grow our output buffer).
   */
  private resumeInput(): void {
    if (this.phase === 'closing' || this.phase === 'tls') return;
    if (this.socket.writableLength > this.highWater) {
      this.socket.pause();
      this.socket.once('drain', () => this.resumeInput());
      return;
    }
    if (this.socket.isPaused() && this.reader.buffered <= this.highWater) this.socket.resume();
  }

  /** Handles the next unit of input; false when more input is needed. */
  private async step(): Promise<boolean> {
    switch (this.phase) {
      case 'command':
      case 'auth': {
        if (this.deps.draining() && this.betweenTransactions()) {
          this.end(REPLIES.SHUTTING_DOWN);
          return false;
        }
        const next = this.reader.readLine();
        if (!next) return false;
        if (next.kind === 'too-long') this.bad(REPLIES.LINE_TOO_LONG);
        else if (this.phase === 'auth') await authResponse(this, next.line);
        else await this.command(next.line);
        return true;
      }
      case 'data': {
        const chunk = this.reader.take();
        if (!chunk) return false;
        await takeData(this, chunk);
        return true;
      }
      case 'bdat': {
        const chunk = this.reader.take(this.bdat!.remaining);
        if (!chunk) return false;
        await takeBdat(this, chunk);
        return true;
      }
      default:
        return false;
    }
  }

  private betweenTransactions(): boolean {
    return this.phase === 'command' && !this.transaction;
  }

  /** Unknown command, syntax error or over-long line (SPEC §5.1 "max bad commands"). */
  private bad(reply: SmtpReply): void {
    this.badCommands++;
    if (this.badCommands > this.deps.limits.maxBadCommands) {
      this.log.info({ bad_commands: this.badCommands }, 'too many bad commands');
      return this.end(REPLIES.TOO_MANY_BAD_COMMANDS);
    }
    this.reply(reply);
  }

  // ── command dispatch ──────────────────────────────────────────────────────────────────────────

  private async command(line: Buffer): Promise<void> {
    const parsed = parseCommand(line);
    if (!parsed.ok) return this.bad(parsed.reply);
    const c = parsed.command;
    switch (c.verb) {
      case 'EHLO':
      case 'HELO':
        return hello(this, c);
      case 'MAIL':
        return mailCommand(this, c);
      case 'RCPT':
        return rcptCommand(this, c);
      case 'DATA':
        return startData(this);
      case 'BDAT':
        return startBdat(this, c.size, c.last);
      case 'RSET':
        this.resetTransaction();
        return this.reply(REPLIES.OK);
      case 'NOOP':
        return this.reply(REPLIES.OK);
      case 'HELP':
        return this.reply(REPLIES.HELP);
      case 'VRFY':
        return this.reply(REPLIES.CANNOT_VRFY);
      case 'EXPN':
        return this.reply(REPLIES.COMMAND_NOT_IMPLEMENTED);
      case 'QUIT':
        return this.end(REPLIES.GOODBYE);
      case 'STARTTLS':
        return startTls(this);
      case 'AUTH':
        return startAuth(this, c.mechanism, c.initialResponse);
    }
  }
}

/** An IPv4 peer of a dual-stack socket without `::ffff:`, as logs and lockout keys expect. */
function normalizeAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}
