/**
 * One SMTP session (RFC 5321) as an explicit state machine over a socket.
 *
 *   greeting ──(pause over, 220)──▶ command ◀──────────────┐
 *      │ client talks first: 554 5.5.0, close              │
 *   command ──AUTH──▶ auth (334 challenges) ───────────────┤
 *   command ──DATA──▶ data (dot-unstuffed stream) ─────────┤
 *   command ──BDAT n──▶ bdat (exactly n octets) ───────────┤
 *   command ──STARTTLS──▶ tls (handshake; everything resets, EHLO again) ─┘
 *   any ──QUIT / limit / timeout / shutdown──▶ closing
 *
 * Besides the phase, a session has flags: TLS active, the EHLO/HELO name (null = none yet, again
 * after STARTTLS), the authenticated user, and the mail transaction (transaction.ts).
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
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { ListenerKind, SmtpSessionInfo } from '../../../pipeline/inbound/contract.js';
import type { Metrics } from '../../../observability/metrics.js';
import { checkLogin, type AuthDeps } from '../auth.js';
import type { SmtpLimits } from '../limits.js';
import { REPLIES, formatReply, type SmtpReply } from '../replies.js';
import type { InboundPipeline } from '../../../pipeline/inbound/contract.js';
import { AuthExchange, isAuthMechanism, type AuthStep } from './auth-exchange.js';
import { parseCommand, type SmtpCommand } from './command-parser.js';
import { DotUnstuffer } from './data-reader.js';
import { ehloReply } from './ehlo.js';
import { LineReader } from './line-reader.js';
import { MailTransaction } from './transaction.js';

export type SessionPhase = 'greeting' | 'command' | 'auth' | 'data' | 'bdat' | 'tls' | 'closing';

export interface SessionDeps {
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
  /** True once the listener is closing: idle sessions end with 421 4.3.2. */
  draining: () => boolean;
  /** Called once when the socket has closed. */
  onClose: (session: SmtpSession) => void;
}

/** After a final reply, how long the client has to close before the socket is destroyed. */
export const LINGER_MS = 1000;
/** Input buffered beyond this pauses the socket (bounded memory per session). */
const MIN_HIGH_WATER = 64 * 1024;

export class SmtpSession {
  readonly info: SmtpSessionInfo;
  readonly log: Logger;
  readonly startedAt = performance.now();
  private socket: net.Socket;
  private phase: SessionPhase = 'greeting';
  private readonly reader: LineReader;
  private readonly highWater: number;
  private out: string[] = [];
  /** EHLO/HELO name; null until the client introduced itself (again after STARTTLS). */
  private helo: string | null = null;
  private transaction: MailTransaction | null = null;
  private auth: AuthExchange | null = null;
  private unstuffer: DotUnstuffer | null = null;
  private bdat: { remaining: number; last: boolean; refusal: SmtpReply | null } | null = null;
  private badCommands = 0;
  private pumping = false;
  private closed = false;
  private readonly idleTimer: NodeJS.Timeout;
  private greetingTimer: NodeJS.Timeout | undefined;

  constructor(
    socket: net.Socket,
    id: string,
    private readonly deps: SessionDeps,
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
    this.out.push(`220 ${this.deps.hostname} ESMTP MaiRust\r\n`);
    this.flush();
  }

  private reply(reply: SmtpReply): void {
    this.out.push(`${formatReply(reply)}\r\n`);
  }

  private flush(): void {
    if (this.out.length === 0 || this.socket.destroyed) return;
    this.socket.write(this.out.join(''));
    this.out = [];
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
        else if (this.phase === 'auth') await this.authResponse(next.line);
        else await this.command(next.line);
        return true;
      }
      case 'data': {
        const chunk = this.reader.take();
        if (!chunk) return false;
        await this.dataChunk(chunk);
        return true;
      }
      case 'bdat': {
        const chunk = this.reader.take(this.bdat!.remaining);
        if (!chunk) return false;
        await this.bdatChunk(chunk);
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

  // ── commands ──────────────────────────────────────────────────────────────────────────────────

  private async command(line: Buffer): Promise<void> {
    const parsed = parseCommand(line);
    if (!parsed.ok) return this.bad(parsed.reply);
    const c = parsed.command;
    switch (c.verb) {
      case 'EHLO':
      case 'HELO':
        return this.hello(c);
      case 'MAIL':
      case 'RCPT':
        return this.envelopeCommand(c);
      case 'DATA':
        return this.startData();
      case 'BDAT':
        return this.startBdat(c.size, c.last);
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
        return this.startTls();
      case 'AUTH':
        return this.startAuth(c.mechanism, c.initialResponse);
    }
  }

  /** RFC 5321 §4.1.4: EHLO/HELO also resets the transaction, like RSET. */
  private hello(c: Extract<SmtpCommand, { verb: 'EHLO' | 'HELO' }>): void {
    this.resetTransaction();
    this.helo = c.domain;
    this.info.helo = c.domain;
    if (c.verb === 'HELO') return void this.out.push(`250 ${this.deps.hostname}\r\n`);
    this.out.push(
      ehloReply({
        hostname: this.deps.hostname,
        maxMessageBytes: this.deps.limits.maxMessageBytes,
        secure: this.info.secure,
        authAvailable: this.deps.kind === 'submission',
      }),
    );
  }

  private resetTransaction(): void {
    this.transaction?.abort(new Error('transaction reset'));
    this.transaction = null;
  }

  private async envelopeCommand(c: Extract<SmtpCommand, { verb: 'MAIL' | 'RCPT' }>): Promise<void> {
    if (c.verb === 'MAIL') {
      if (this.helo === null) return this.reply(REPLIES.EHLO_REQUIRED);
      if (this.transaction) return this.reply(REPLIES.NESTED_MAIL);
      if (this.deps.kind === 'submission' && !this.info.user) return this.reply(REPLIES.AUTH_REQUIRED);
      const tx = new MailTransaction(this.transactionDeps());
      const reply = await tx.mail(this.info, c);
      if (tx.started) this.transaction = tx;
      return this.reply(reply);
    }
    if (!this.transaction) return this.reply(REPLIES.NEED_MAIL);
    this.reply(await this.transaction.rcpt(this.info, c.to));
  }

  private transactionDeps() {
    return { pipeline: this.deps.pipeline, limits: this.deps.limits, log: this.log };
  }

  // ── DATA (RFC 5321 §4.1.1.4) ──────────────────────────────────────────────────────────────────

  private startData(): void {
    const tx = this.transaction;
    if (!tx) return this.reply(this.helo === null ? REPLIES.EHLO_REQUIRED : REPLIES.NEED_MAIL);
    const refusal = tx.refuseData();
    if (refusal) return this.reply(refusal);
    tx.open(this.info);
    this.unstuffer = new DotUnstuffer();
    this.phase = 'data';
    this.reply(REPLIES.START_DATA);
    // The client waits for 354 before sending the message (unless it pipelined DATA last).
    this.flush();
  }

  private async dataChunk(chunk: Buffer): Promise<void> {
    const tx = this.transaction!;
    const { data, done, rest } = this.unstuffer!.push(chunk);
    await tx.write(data);
    if (!done) return;
    this.unstuffer = null;
    this.reader.unshift(rest);
    await this.completeMessage(tx);
  }

  private async completeMessage(tx: MailTransaction): Promise<void> {
    const outcome = await tx.finish();
    this.deps.metrics?.smtpMessages.inc({ listener: this.deps.metricLabel, result: outcome.result });
    this.transaction = null;
    this.phase = 'command';
    this.reply(outcome.reply);
  }

  // ── BDAT (RFC 3030) ───────────────────────────────────────────────────────────────────────────

  /**
   * The chunk's octets follow the command whatever the reply will be, so they are always read
   * (and dropped when refused) — RFC 3030 §2 — before the reply to this BDAT is sent.
   */
  private startBdat(size: number, last: boolean): void | Promise<void> {
    const tx = this.transaction;
    let refusal: SmtpReply | null = null;
    if (!tx) refusal = this.helo === null ? REPLIES.EHLO_REQUIRED : REPLIES.NEED_MAIL;
    else refusal = tx.refuseBdat();
    if (!refusal && tx && !tx.opened) tx.open(this.info, 'bdat');
    this.bdat = { remaining: size, last, refusal };
    this.phase = 'bdat';
    if (size === 0) return this.endBdatChunk();
  }

  private async bdatChunk(chunk: Buffer): Promise<void> {
    const bdat = this.bdat!;
    bdat.remaining -= chunk.length;
    if (!bdat.refusal) await this.transaction!.write([chunk]);
    if (bdat.remaining === 0) await this.endBdatChunk();
  }

  private async endBdatChunk(): Promise<void> {
    const bdat = this.bdat!;
    this.bdat = null;
    this.phase = 'command';
    if (bdat.refusal) return this.reply(bdat.refusal);
    const tx = this.transaction!;
    // RFC 3030 §2: an error reply to a chunk ends the transaction; the size limit is one.
    if (bdat.last || tx.overLimit) return this.completeMessage(tx);
    this.reply(REPLIES.CHUNK_RECEIVED);
  }

  // ── STARTTLS (RFC 3207) ───────────────────────────────────────────────────────────────────────

  private startTls(): void {
    if (this.info.secure) return this.reply(REPLIES.TLS_ALREADY_ACTIVE);
    const context = this.deps.secureContext();
    if (!context) return this.reply(REPLIES.COMMAND_NOT_IMPLEMENTED);
    this.reply(REPLIES.STARTTLS_READY);
    this.flush();
    // RFC 3207 §4.2 (and the command-injection attacks it invites): whatever the client sent after
    // STARTTLS in clear is discarded, never executed after the handshake.
    this.reader.clear();
    this.resetTransaction();
    this.phase = 'tls';
    const raw = this.socket;
    this.detach(raw);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context, requestCert: false });
    this.socket = secure;
    secure.on('error', this.onSocketError);
    secure.on('close', this.onSocketClose);
    raw.on('close', this.onSocketClose);
    secure.once('secure', () => {
      if (this.phase !== 'tls') return;
      // Everything learned before the handshake is forgotten (RFC 3207 §4.2): EHLO again.
      this.info.secure = true;
      this.info.user = undefined;
      this.info.helo = '';
      this.helo = null;
      this.phase = 'command';
      this.idleTimer.refresh();
      secure.on('data', this.onData);
    });
  }

  // ── AUTH (RFC 4954) ───────────────────────────────────────────────────────────────────────────

  private async startAuth(mechanism: string, initialResponse: string | undefined): Promise<void> {
    if (this.deps.kind !== 'submission') return this.reply(REPLIES.AUTH_NOT_ENABLED);
    // SPEC §2: AUTH is never advertised on plaintext, and refused there (RFC 4954 §4, 538).
    if (!this.info.secure) return this.reply(REPLIES.ENCRYPTION_REQUIRED);
    if (this.helo === null) return this.reply(REPLIES.EHLO_REQUIRED);
    if (this.info.user) return this.reply(REPLIES.ALREADY_AUTHENTICATED);
    if (this.transaction) return this.reply(REPLIES.BAD_SEQUENCE);
    if (!isAuthMechanism(mechanism)) return this.reply(REPLIES.AUTH_MECHANISM_UNSUPPORTED);
    this.auth = new AuthExchange(mechanism);
    await this.authStep(this.auth.start(initialResponse));
  }

  private async authResponse(line: Buffer): Promise<void> {
    await this.authStep(this.auth!.respond(line.toString('latin1')));
  }

  private async authStep(step: AuthStep): Promise<void> {
    if (step.kind === 'challenge') {
      this.phase = 'auth';
      this.out.push(`334 ${step.text}\r\n`);
      return this.flush();
    }
    this.phase = 'command';
    this.auth = null;
    if (step.kind === 'fail') return this.reply(step.reply);
    const outcome = await checkLogin(this.deps.auth, this.info, step.attempt, this.log);
    if (!outcome.ok) return this.reply(outcome.reply);
    this.info.user = outcome.user;
    this.reply(REPLIES.AUTH_OK);
  }
}

/** An IPv4 peer of a dual-stack socket without `::ffff:`, as logs and lockout keys expect. */
function normalizeAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}
