/**
 * One POP3 session (RFC 1939) as an explicit state machine over a socket:
 *
 *   authorization ──USER+PASS / AUTH PLAIN──▶ transaction ──QUIT──▶ UPDATE, closing   authorization.ts, update.ts
 *   authorization ──AUTH PLAIN (no initial response)──▶ sasl ──one line──▶ authorization | transaction
 *   authorization ──STLS──▶ tls (handshake) ──▶ authorization                          stls.ts
 *   any ──QUIT in authorization / limit / autologout / shutdown──▶ closing (no UPDATE)
 *
 * This file owns the socket, the timers and the input loop and dispatches each command by state;
 * handlers see the session as a SessionContext (session-context.ts).
 *
 * Input (RFC 2449 §6.6 PIPELINING): bytes go into a bounded line reader; one pump loop takes
 * commands in order and answers them; replies are written together when the loop runs out of input.
 * Above a high-water mark the socket is paused, which bounds what a client can make us buffer; a
 * client that does not read its replies stops being read.
 *
 * Time (RFC 1939 §3 autologout): the timer runs while the session waits for the client. Server work
 * (database, blob store) does not count, except in the middle of a RETR/TOP response: there each
 * chunk the client takes restarts the timer, and a response that makes no progress for the whole
 * period (client not reading, blob store stalled) drops the connection.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type { Logger } from 'pino';
import { LineReader } from '../net/line-reader.js';
import { authCommand, passCommand, saslResponse, userCommand } from './authorization.js';
import { capabilities } from './capa.js';
import { parseCommand, type Pop3Command } from './parser.js';
import { REPLIES } from './replies.js';
import { retrCommand, topCommand } from './retrieve.js';
import type { CommandDeps, Pop3Account, Pop3State, SessionContext, SessionInfo } from './session-context.js';
import { stlsCommand } from './stls.js';
import { deleCommand, listCommand, rsetCommand, statCommand, uidlCommand } from './transaction.js';
import { quitCommand } from './update.js';

export interface SessionDeps extends CommandDeps {
  /** True once the listener is closing. */
  draining: () => boolean;
  /** Called once when the socket has closed. */
  onClose: (session: Pop3Session) => void;
}

/** After a final reply, how long the client has to close before the socket is destroyed. */
export const LINGER_MS = 1000;
/** Input or output buffered beyond this pauses reading (bounded memory per session). */
const MIN_HIGH_WATER = 64 * 1024;

export class Pop3Session implements SessionContext {
  readonly info: SessionInfo;
  readonly log: Logger;
  readonly reader: LineReader;
  readonly startedAt = performance.now();
  state: Pop3State = 'authorization';
  pendingUser: string | null = null;
  account: Pop3Account | null = null;
  private socket: net.Socket;
  private readonly highWater: number;
  private out: string[] = [];
  private badCommands = 0;
  private pumping = false;
  /** A multi-line response has been started with write(): errors can no longer be replies. */
  private midResponse = false;
  private closed = false;
  private readonly idleTimer: NodeJS.Timeout;

  constructor(
    socket: net.Socket,
    id: string,
    readonly deps: SessionDeps,
    secure: boolean,
  ) {
    this.socket = socket;
    this.reader = new LineReader(deps.limits.maxLineBytes);
    this.highWater = Math.max(MIN_HIGH_WATER, 2 * deps.limits.maxLineBytes);
    this.info = { id, remoteAddress: normalizeAddress(socket.remoteAddress), secure };
    this.log = deps.log.child({ session_id: id, remote_addr: this.info.remoteAddress });
    this.idleTimer = setTimeout(() => this.onIdleTimeout(), deps.limits.idleTimeoutMs);
    this.attach(socket);
  }

  /** Sends the greeting (RFC 1939 §4) with a timestamp that differs for every session. */
  start(): void {
    this.log.debug('session started');
    const timestamp = `<${process.pid}.${randomBytes(6).toString('hex')}.${Date.now()}@${this.deps.hostname}>`;
    this.reply(REPLIES.greeting(timestamp));
    this.flush();
  }

  /** Not logged in and not working on a command: safe to end at once when shutting down. */
  get idle(): boolean {
    return !this.pumping && (this.state === 'authorization' || this.state === 'sasl');
  }

  get ended(): boolean {
    return this.state === 'closing';
  }

  /** Ends the session for a shutdown: a reply between commands, a dropped connection mid-response. */
  shutdown(): void {
    if (this.state === 'closing') return;
    if (this.midResponse || this.state === 'tls') return this.abort();
    this.end(REPLIES.SHUTTING_DOWN);
  }

  // ── SessionContext ────────────────────────────────────────────────────────────────────────────

  reply(line: string): void {
    this.out.push(`${line}\r\n`);
  }

  replyLines(status: string, lines: Iterable<string>): void {
    const parts = [`${status}\r\n`];
    // RFC 1939 §3: a line of a multi-line response that starts with "." is byte-stuffed.
    for (const line of lines) parts.push(line.startsWith('.') ? `.${line}\r\n` : `${line}\r\n`);
    parts.push('.\r\n');
    this.out.push(parts.join(''));
  }

  flush(): void {
    if (this.out.length === 0 || this.socket.destroyed) return;
    this.socket.write(this.out.join(''));
    this.out = [];
  }

  async write(bytes: Buffer): Promise<boolean> {
    this.flush();
    this.midResponse = true;
    const socket = this.socket;
    if (this.ended || socket.destroyed) return false;
    if (!socket.write(bytes)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
    this.touch();
    return !this.ended && !socket.destroyed;
  }

  end(line: string): void {
    if (this.state === 'closing') return;
    this.reply(line);
    this.close();
  }

  abort(): void {
    this.state = 'closing';
    this.out = [];
    // What was written so far still goes out (the client then sees a response without its "."),
    // but a client that does not read is cut off after the linger time.
    const socket = this.socket;
    if (!socket.destroyed) socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  }

  touch(): void {
    this.idleTimer.refresh();
  }

  switchSocket(layer: (raw: net.Socket) => net.Socket): net.Socket {
    const raw = this.socket;
    raw.off('data', this.onData);
    raw.off('close', this.onSocketClose);
    const next = layer(raw);
    this.socket = next;
    next.on('error', this.onSocketError);
    // Either socket closing ends the session (once: onSocketClose is guarded); the raw socket's
    // errors stay logged by the handler attached in the constructor.
    next.on('close', this.onSocketClose);
    raw.on('close', this.onSocketClose);
    return next;
  }

  startReading(): void {
    this.socket.on('data', this.onData);
  }

  bad(line: string): void {
    this.badCommands++;
    if (this.badCommands > this.deps.limits.maxBadCommands) {
      this.log.info({ bad_commands: this.badCommands }, 'too many bad commands');
      return this.end(REPLIES.TOO_MANY_BAD_COMMANDS);
    }
    this.reply(line);
  }

  // ── socket ────────────────────────────────────────────────────────────────────────────────────

  private readonly onData = (chunk: Buffer) => {
    this.idleTimer.refresh();
    if (this.state === 'closing' || this.state === 'tls') return;
    this.reader.push(chunk);
    if (this.reader.buffered > this.highWater) this.socket.pause();
    void this.pump();
  };

  private readonly onSocketClose = () => {
    if (this.closed) return;
    this.closed = true;
    this.state = 'closing';
    clearTimeout(this.idleTimer);
    this.account?.release();
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

  private close(): void {
    this.state = 'closing';
    this.flush();
    const socket = this.socket;
    if (!socket.destroyed) socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  }

  private onIdleTimeout(): void {
    if (this.state === 'closing') return;
    if (this.midResponse) {
      this.log.info('response made no progress within the autologout time; dropping the connection');
      return this.abort();
    }
    // The server is working (database, blob store): not the client's idle time.
    if (this.pumping) return void this.idleTimer.refresh();
    if (this.state === 'tls') {
      this.log.info('TLS handshake not completed in time');
      return this.abort();
    }
    // RFC 1939 §3: no UPDATE state, so nothing marked deleted is removed. The RFC has the server
    // close silently; one -ERR line first tells a human at a terminal (and logs) what happened.
    this.log.info('autologout');
    this.end(REPLIES.IDLE_TIMEOUT);
  }

  // ── input loop ────────────────────────────────────────────────────────────────────────────────

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.state !== 'closing' && (await this.step()));
    } catch (err) {
      this.log.error({ err }, 'POP3 session failed');
      if (this.midResponse) this.abort();
      else this.end(REPLIES.TEMP_ERROR);
    } finally {
      this.pumping = false;
      this.midResponse = false;
      this.flush();
      if (this.state !== 'closing' && this.deps.draining() && this.idle) this.end(REPLIES.SHUTTING_DOWN);
      this.resumeInput();
    }
  }

  /** Reads on only when there is room in the input buffer and the client reads its replies. */
  private resumeInput(): void {
    if (this.state === 'closing' || this.state === 'tls') return;
    if (this.socket.writableLength > this.highWater) {
      this.socket.pause();
      this.socket.once('drain', () => this.resumeInput());
      return;
    }
    if (this.socket.isPaused() && this.reader.buffered <= this.highWater) this.socket.resume();
  }

  /** Handles the next line; false when more input is needed or the session cannot go on. */
  private async step(): Promise<boolean> {
    if (this.state !== 'authorization' && this.state !== 'sasl' && this.state !== 'transaction') return false;
    if (this.deps.draining() && this.state !== 'transaction') {
      // Logged-in clients may finish their download while the listener drains; others go now.
      this.end(REPLIES.SHUTTING_DOWN);
      return false;
    }
    const next = this.reader.readLine();
    if (!next) return false;
    if (next.kind === 'too-long') {
      if (this.state === 'sasl') this.state = 'authorization';
      this.bad(REPLIES.LINE_TOO_LONG);
    } else if (this.state === 'sasl') {
      await saslResponse(this, next.line);
    } else {
      await this.command(next.line);
    }
    this.midResponse = false;
    return true;
  }

  // ── command dispatch ──────────────────────────────────────────────────────────────────────────

  private async command(line: Buffer): Promise<void> {
    const parsed = parseCommand(line);
    if (!parsed.ok) return this.bad(REPLIES[parsed.error]);
    const c = parsed.command;
    this.log.debug({ verb: c.verb }, 'command');
    // RFC 2449 §5: CAPA in either state; QUIT in either state (RFC 1939 §4, §6).
    if (c.verb === 'CAPA') return this.replyLines(REPLIES.CAPA, capabilities(this.info.secure));
    if (c.verb === 'QUIT') return quitCommand(this);
    if (this.state === 'transaction' && this.account) return this.transactionCommand(c, this.account);
    return this.authorizationCommand(c);
  }

  private async authorizationCommand(c: Pop3Command): Promise<void> {
    switch (c.verb) {
      case 'STLS':
        return stlsCommand(this);
      case 'USER':
        return userCommand(this, c.name);
      case 'PASS':
        return passCommand(this, c.password);
      case 'AUTH':
        return authCommand(this, c.mechanism, c.initialResponse);
      case 'APOP':
        return this.reply(REPLIES.APOP_NOT_SUPPORTED);
      default:
        return this.bad(REPLIES.WRONG_STATE);
    }
  }

  private async transactionCommand(c: Pop3Command, account: Pop3Account): Promise<void> {
    switch (c.verb) {
      case 'STAT':
        return statCommand(this, account);
      case 'LIST':
        return listCommand(this, account, c.msg);
      case 'UIDL':
        return uidlCommand(this, account, c.msg);
      case 'RETR':
        return retrCommand(this, account, c.msg);
      case 'TOP':
        return topCommand(this, account, c.msg, c.lines);
      case 'DELE':
        return deleCommand(this, account, c.msg);
      case 'RSET':
        return rsetCommand(this, account);
      case 'NOOP':
        return this.reply(REPLIES.OK);
      default:
        return this.bad(REPLIES.WRONG_STATE);
    }
  }
}

/** An IPv4 peer of a dual-stack socket without `::ffff:`, as logs and lockout keys expect. */
function normalizeAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}
