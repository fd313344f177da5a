/**
 * One IMAP connection (RFC 9051 §3, §5): the state machine, the input loop, dispatch to the
 * command modules (../commands/), and the CommandContext they run in.
 *
 *   not-authenticated ──LOGIN/AUTHENTICATE──▶ authenticated ◀──CLOSE/UNSELECT── selected
 *          │                                       └──────────SELECT/EXAMINE──────────▲
 *          └────────────── LOGOUT, autologout, too many bad commands, shutdown ──▶ logout
 *
 * Input: bytes go into the ImapCommandReader (pure framing: ../parser/reader.ts); one pump loop
 * pulls events in order and runs one command at a time (RFC 9051 §5.5: pipelined commands are read
 * ahead but executed in sequence). While a command runs, the socket is paused once the reader holds
 * more than INPUT_HIGH_WATER; between commands the reader decides what it needs (its own limits
 * bound it). AUTHENTICATE and IDLE read plain lines through `readLine`, which switches the reader
 * to line mode for exactly one line.
 *
 * Output: responses go through SessionOutput (batched, optionally DEFLATE-compressed); the loop
 * waits for the client to read (`drain`) before taking the next command when the backlog is high.
 *
 * After every command in the selected state the session synchronises the folder view before the
 * tagged response (RFC 9051 §5.2, §7.4.1), without expunges for FETCH, STORE and SEARCH
 * (§7.5.1), forced for NOOP, CHECK and IDLE.
 */
import type net from 'node:net';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import zlib from 'node:zlib';
import type { Logger } from 'pino';
import { tenantScope } from '../../../core/scope.js';
import type { Mailbox } from '../../../core/tenancy/types.js';
import { encodeValues } from '../encoder/encode.js';
import type { ImapValue } from '../encoder/types.js';
import { ImapCommandReader, type ReaderEvent } from '../parser/reader.js';
import type { ParsedCommand } from '../parser/types.js';
import type { LoginInfo, MailAccessServices, MailUser } from '../services.js';
import { resultForError } from '../commands/_errors.js';
import { capabilityList } from './capabilities.js';
import { LineRejected, SessionClosedError } from './errors.js';
import { SESSION_CONTROL, type SessionControl } from './control.js';
import { OUTPUT_HIGH_WATER, SessionOutput } from './output.js';
import { TEXT } from './replies.js';
import type {
  Account,
  CommandContext,
  CommandModule,
  CommandResult,
  Enableable,
  ImapLimits,
  SelectedMailbox,
  SessionInfo,
  SessionState,
} from './types.js';
import type { UserSessionCounter } from './user-sessions.js';

export interface ImapSessionDeps {
  /** 'imap' (STARTTLS) or 'imaps' (implicit TLS). */
  listener: string;
  services: MailAccessServices;
  limits: ImapLimits;
  commands: Map<string, CommandModule>;
  /** The certificate STARTTLS offers now; null when there is none (or TLS is implicit). */
  secureContext: () => tls.SecureContext | null;
  userSessions: UserSessionCounter;
  log: Logger;
  /** The listener is closing: idle sessions end with `* BYE`. */
  draining: () => boolean;
  onClose: (session: ImapSession) => void;
}

/** After a final response, how long the client has to close before the socket is destroyed. */
export const LINGER_MS = 1000;
/** Input the reader may hold while a command runs before the socket is paused. */
const INPUT_HIGH_WATER = 256 * 1024;
/** Commands whose post-command sync must not announce expunges (RFC 9051 §7.5.1). */
const NO_EXPUNGE = new Set(['FETCH', 'STORE', 'SEARCH']);
/** Commands whose post-command sync reads the database even without a change event. */
const FORCE_SYNC = new Set(['NOOP', 'CHECK', 'IDLE']);

const TRANSITIONS: Record<SessionState, SessionState[]> = {
  'not-authenticated': ['authenticated', 'logout'],
  authenticated: ['selected', 'logout'],
  selected: ['authenticated', 'selected', 'logout'],
  logout: [],
};

class Info implements SessionInfo {
  state: SessionState = 'not-authenticated';
  account: Account | null = null;
  selected: SelectedMailbox | null = null;
  readonly enabled = new Set<Enableable>();

  constructor(
    readonly id: string,
    readonly remoteAddress: string,
    readonly listener: string,
    public secure: boolean,
  ) {}

  get rev2(): boolean {
    return this.enabled.has('IMAP4REV2');
  }

  get utf8(): boolean {
    return this.enabled.has('IMAP4REV2') || this.enabled.has('UTF8=ACCEPT');
  }
}

type LineWaiter = { resolve: (line: string) => void; reject: (err: Error) => void };

export class ImapSession {
  readonly info: Info;
  readonly log: Logger;
  readonly startedAt = performance.now();
  private socket: net.Socket;
  private readonly output: SessionOutput;
  private reader: ImapCommandReader;
  private inflate: zlib.InflateRaw | null = null;
  private pumping = false;
  private ending = false;
  private closed = false;
  /** Set between STARTTLS's OK and the end of the handshake: input is ignored. */
  private handshaking = false;
  private badCommands = 0;
  private lineWaiter: LineWaiter | null = null;
  private afterResponse: (() => void)[] = [];
  private releaseUser: (() => void) | null = null;
  private timer: NodeJS.Timeout | undefined;
  readonly ctx: CommandContext;

  constructor(
    socket: net.Socket,
    id: string,
    readonly deps: ImapSessionDeps,
    secure: boolean,
  ) {
    this.socket = socket;
    this.info = new Info(id, normalizeAddress(socket.remoteAddress), deps.listener, secure);
    this.log = deps.log.child({ session_id: id, remote_addr: this.info.remoteAddress });
    this.output = new SessionOutput(socket);
    this.reader = this.newReader();
    this.ctx = this.buildContext();
    this.attach(socket);
    socket.on('error', this.onSocketError);
  }

  /** Sends the greeting with the capabilities (RFC 9051 §7.1.1: CAPABILITY code in the greeting). */
  start(): void {
    this.log.debug('session started');
    this.armTimer();
    this.writeLine(`* OK [CAPABILITY ${this.capabilities().join(' ')}] ${TEXT.GREETING}`);
    this.output.flush();
  }

  /** Not working on a command (or waiting in IDLE/AUTHENTICATE for the client): safe to end. */
  get idle(): boolean {
    return !this.pumping || this.lineWaiter !== null;
  }

  get ended(): boolean {
    return this.ending || this.closed;
  }

  /** Ends the session with `* BYE text` (RFC 9051 §7.1.5). */
  end(text: string): void {
    if (this.ending || this.closed) return;
    this.writeLine(`* BYE ${text}`);
    this.close();
  }

  // ── the CommandContext the handlers see ───────────────────────────────────────────────────────

  private buildContext(): CommandContext {
    const session = this;
    const control: SessionControl = {
      get startTlsAvailable() {
        return !session.info.secure && session.deps.secureContext() !== null;
      },
      get compressed() {
        return session.output.compressed;
      },
      get loginInfo(): LoginInfo {
        return { remoteAddress: session.info.remoteAddress, listener: session.info.listener, protocol: 'imap' };
      },
      afterResponse: (fn) => void this.afterResponse.push(fn),
      startTls: () => this.startTls(),
      startCompression: () => this.startCompression(),
      login: (user, mailbox) => this.login(user, mailbox),
      end: (text: string) => this.end(text),
      flush: () => this.output.flush(),
      drain: () => this.output.drain(),
    };
    return {
      session: this.info,
      services: this.deps.services,
      limits: this.deps.limits,
      log: this.log,
      untagged: (...values: ImapValue[]) => this.untagged(values),
      write: (chunk: Buffer | string) => this.output.write(chunk),
      writeStream: (stream: Readable) => this.output.writeStream(stream),
      continuation: (text: string) => {
        this.writeLine(`+ ${text}`);
        this.output.flush();
        return this.readLine();
      },
      readLine: () => this.readLine(),
      setState: (state: SessionState) => this.setState(state),
      select: (view: SelectedMailbox) => {
        const previous = this.info.selected;
        if (previous && previous !== view) previous.close();
        this.info.selected = view;
        this.setState('selected');
      },
      unselect: () => {
        this.info.selected?.close();
        this.info.selected = null;
        if (this.info.state === 'selected') this.setState('authenticated');
      },
      capabilities: () => this.capabilities(),
      [SESSION_CONTROL]: control,
    } as CommandContext;
  }

  private capabilities(): string[] {
    return capabilityList({
      secure: this.info.secure,
      startTlsAvailable: !this.info.secure && this.deps.secureContext() !== null,
      authenticated: this.info.account !== null,
      compressed: this.output.compressed,
      appendLimit: this.deps.limits.maxAppendBytes,
    });
  }

  private untagged(values: ImapValue[]): void {
    this.output.write(Buffer.concat([Buffer.from('* '), encodeValues(values, { utf8: this.info.utf8 }), Buffer.from('\r\n')]));
  }

  private writeLine(line: string): void {
    this.output.write(`${line}\r\n`);
  }

  private setState(state: SessionState): void {
    const from = this.info.state;
    if (from === state && state !== 'selected') return;
    if (!TRANSITIONS[from].includes(state)) throw new Error(`invalid IMAP state change ${from} → ${state}`);
    if (from === 'selected' && state !== 'selected' && this.info.selected) {
      this.info.selected.close();
      this.info.selected = null;
    }
    this.info.state = state;
    this.armTimer();
  }

  private login(user: MailUser, mailbox: Mailbox): boolean {
    const release = this.deps.userSessions.acquire(user.id);
    if (!release) return false;
    this.releaseUser?.();
    this.releaseUser = release;
    this.info.account = { user, mailbox, scope: tenantScope(user.tenantId) };
    this.setState('authenticated');
    this.log.info({ user_id: user.id, tenant_id: user.tenantId }, 'logged in');
    return true;
  }

  /** One plain line from the client (AUTHENTICATE responses, IDLE's DONE). */
  private readLine(): Promise<string> {
    if (this.ended) return Promise.reject(new SessionClosedError());
    if (this.lineWaiter) return Promise.reject(new Error('readLine while another readLine is pending'));
    this.reader.lineMode = true;
    return new Promise<string>((resolve, reject) => {
      this.lineWaiter = { resolve, reject };
      this.armTimer();
      this.tryLine();
    });
  }

  private tryLine(): void {
    const waiter = this.lineWaiter;
    if (!waiter) return;
    let event: ReaderEvent | null;
    try {
      event = this.reader.next();
    } catch (err) {
      event = { type: 'bad', tag: null, text: (err as Error).message };
    }
    if (!event) return this.resumeInput();
    this.lineWaiter = null;
    this.reader.lineMode = false;
    if (event.type === 'line') waiter.resolve(event.text);
    else waiter.reject(new LineRejected(event.type === 'bad' || event.type === 'too-big' ? event.text : 'Expected a line'));
  }

  // ── transport changes ─────────────────────────────────────────────────────────────────────────

  private startTls(): void {
    const context = this.deps.secureContext();
    if (!context || this.info.secure) return;
    this.output.flush();
    // RFC 9051 §6.2.1 (and the STARTTLS command-injection attack, CVE-2011-0411): whatever the
    // client pipelined behind STARTTLS in clear is discarded, never executed under TLS.
    this.reader = this.newReader();
    this.handshaking = true;
    const raw = this.socket;
    raw.off('data', this.onData);
    raw.off('close', this.onSocketClose);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context, requestCert: false });
    this.socket = secure;
    this.output.setSocket(secure);
    secure.on('error', this.onSocketError);
    secure.on('close', this.onSocketClose);
    raw.on('close', this.onSocketClose);
    secure.once('secure', () => {
      if (this.ended) return;
      this.handshaking = false;
      this.info.secure = true;
      this.armTimer();
      secure.on('data', this.onData);
      this.log.debug('STARTTLS completed');
    });
  }

  private startCompression(): void {
    if (this.output.compressed) return;
    this.output.startCompression();
    // Bytes the client pipelined behind COMPRESS were not compressed (RFC 4978 §3 forbids that): dropped.
    this.reader = this.newReader();
    const inflate = zlib.createInflateRaw();
    inflate.on('data', (chunk: Buffer) => this.onInput(chunk));
    inflate.on('error', (err) => {
      this.log.info({ err: { message: err.message } }, 'invalid compressed input');
      this.socket.destroy();
    });
    this.inflate = inflate;
  }

  private newReader(): ImapCommandReader {
    const l = this.deps.limits;
    return new ImapCommandReader({
      maxLineBytes: l.maxLineBytes,
      maxLiteralBytes: l.maxLiteralBytes,
      maxAppendBytes: l.maxAppendBytes,
      maxCommandBytes: l.maxCommandBytes,
    });
  }

  // ── socket ────────────────────────────────────────────────────────────────────────────────────

  private attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('close', this.onSocketClose);
  }

  private readonly onData = (chunk: Buffer) => {
    if (this.ended || this.handshaking) return;
    if (this.inflate) this.inflate.write(chunk);
    else this.onInput(chunk);
  };

  private onInput(chunk: Buffer): void {
    if (this.ended || this.handshaking) return;
    this.armTimer();
    this.reader.push(chunk);
    if (this.lineWaiter) this.tryLine();
    else if (!this.pumping) void this.pump();
    else if (this.reader.buffered > INPUT_HIGH_WATER) this.pauseInput();
  }

  private pauseInput(): void {
    this.socket.pause();
    this.inflate?.pause();
  }

  private resumeInput(): void {
    if (this.ended) return;
    this.socket.resume();
    this.inflate?.resume();
  }

  private readonly onSocketClose = () => {
    if (this.closed) return;
    this.closed = true;
    this.ending = true;
    clearTimeout(this.timer);
    const waiter = this.lineWaiter;
    this.lineWaiter = null;
    waiter?.reject(new SessionClosedError());
    this.info.selected?.close();
    this.info.selected = null;
    this.releaseUser?.();
    this.releaseUser = null;
    this.inflate?.destroy();
    this.output.destroy();
    this.log.debug('session closed');
    this.deps.onClose(this);
  };

  private readonly onSocketError = (err: Error & { code?: string }) => {
    this.log.debug({ err: { message: err.message, code: err.code } }, 'socket error');
  };

  private close(): void {
    if (this.ending) return;
    this.ending = true;
    this.info.state = 'logout';
    clearTimeout(this.timer);
    // The user's session slot is free as soon as the session is over for the client.
    this.releaseUser?.();
    this.releaseUser = null;
    this.output.end();
    const socket = this.socket;
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  }

  // ── timers ────────────────────────────────────────────────────────────────────────────────────

  /** The autologout timer (RFC 9051 §5.4): shorter before login. */
  private armTimer(): void {
    if (this.ended) return;
    clearTimeout(this.timer);
    const ms = this.info.account ? this.deps.limits.idleTimeoutMs : this.deps.limits.preAuthTimeoutMs;
    this.timer = setTimeout(() => this.onTimeout(), ms);
    this.timer.unref();
  }

  private onTimeout(): void {
    if (this.ended) return;
    // The server is working on a command: that is not the client's idle time.
    if (this.pumping && !this.lineWaiter) return this.armTimer();
    if (this.handshaking) {
      this.log.info('TLS handshake not completed in time');
      return void this.socket.destroy();
    }
    this.log.info('autologout');
    this.end(TEXT.AUTOLOGOUT);
  }

  // ── input loop ────────────────────────────────────────────────────────────────────────────────

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.ended && !this.handshaking) {
        if (this.deps.draining()) {
          this.end(TEXT.SHUTTING_DOWN);
          break;
        }
        let event: ReaderEvent | null;
        try {
          event = this.reader.next();
        } catch (err) {
          // The reader reports bad input as events; a throw is a bug, but must not kill the process.
          this.log.error({ err }, 'IMAP reader failed');
          this.end(TEXT.INTERNAL);
          break;
        }
        if (!event) break;
        await this.handleEvent(event);
        // Pipelined commands' responses go out together; a client that does not read stalls here.
        if (this.output.backlog > OUTPUT_HIGH_WATER && !this.ended) await this.output.drain();
      }
    } catch (err) {
      this.log.error({ err }, 'IMAP session failed');
      this.end(TEXT.INTERNAL);
    } finally {
      this.pumping = false;
      if (!this.ended) {
        this.output.flush();
        if (this.deps.draining()) this.end(TEXT.SHUTTING_DOWN);
        else this.resumeInput();
      }
    }
  }

  private async handleEvent(event: ReaderEvent): Promise<void> {
    switch (event.type) {
      case 'command':
        return this.execute(event.command);
      case 'continue':
        // RFC 9051 §7.5: the server is ready for the synchronizing literal.
        this.writeLine(`+ ${TEXT.LITERAL_READY}`);
        this.output.flush();
        return;
      case 'bad':
        return this.complete(event.tag, { status: 'BAD', code: event.code, text: event.text });
      case 'too-big':
        // RFC 9051 §7.1 TOOBIG; RFC 7888 §4: a non-synchronizing literal over the limit is BAD.
        return this.complete(event.tag, { status: event.synchronizing ? 'NO' : 'BAD', code: 'TOOBIG', text: event.text });
      case 'line':
        // Only in line mode, which readLine owns; nothing to do here.
        return;
    }
  }

  private async execute(cmd: ParsedCommand): Promise<void> {
    const module = this.deps.commands.get(cmd.name);
    const metrics = this.deps.services.metrics;
    if (!module) {
      metrics?.imapCommands.inc({ command: 'unknown', status: 'BAD' });
      return this.complete(cmd.tag, { status: 'BAD', text: TEXT.UNKNOWN_COMMAND });
    }
    if (!module.states.includes(this.info.state)) return this.complete(cmd.tag, { status: 'BAD', text: this.wrongStateText(module) });
    const selectedBefore = this.info.selected;
    let result: CommandResult | null;
    try {
      result = await module.handle(this.ctx, cmd);
    } catch (err) {
      result = resultForError(err, this.log, cmd.name);
    }
    if (result) metrics?.imapCommands.inc({ command: cmd.name, status: result.status });
    if (result === null || this.closed) return;
    // RFC 9051 §7.4.1: changes are announced before the tagged response; a command that replaced or
    // closed the selection has nothing of the old view left to announce.
    const view = this.info.selected;
    if (view && view === selectedBefore && this.info.state === 'selected' && !this.ending) {
      await view.sync({ allowExpunge: !NO_EXPUNGE.has(cmd.name), force: FORCE_SYNC.has(cmd.name) }).catch((err: unknown) => {
        this.log.warn({ err }, 'folder sync after a command failed');
      });
    }
    this.complete(cmd.tag, result);
    if (view && view.gone && this.info.selected === view) this.end(TEXT.MAILBOX_GONE);
  }

  private wrongStateText(module: CommandModule): string {
    const s = this.info.state;
    if (s === 'not-authenticated' && (module.states.includes('authenticated') || module.states.includes('selected'))) return TEXT.NOT_LOGGED_IN;
    if (s !== 'not-authenticated' && module.states.includes('not-authenticated') && module.states.length === 1) return TEXT.ALREADY_LOGGED_IN;
    if (s === 'authenticated' && module.states.includes('selected')) return TEXT.NO_MAILBOX_SELECTED;
    return TEXT.WRONG_STATE;
  }

  /** Writes the tagged response (`* BAD` without a tag), counts bad commands, runs the after-hooks. */
  private complete(tag: string | null, result: CommandResult): void {
    if (this.closed) return;
    const code = result.code ? ` [${result.code}]` : '';
    this.writeLine(`${tag ?? '*'} ${result.status}${code} ${sanitizeText(result.text)}`);
    const hooks = this.afterResponse;
    this.afterResponse = [];
    if (result.status === 'BAD' && ++this.badCommands > this.deps.limits.maxBadCommands) {
      this.log.info({ bad_commands: this.badCommands }, 'too many bad commands');
      return this.end(TEXT.TOO_MANY_BAD);
    }
    if (this.info.state === 'logout') return this.close();
    if (hooks.length > 0) {
      this.output.flush();
      for (const fn of hooks) fn();
    }
  }
}

/** Response text is one line of printable characters (RFC 9051 §9 `text`): no CR/LF from anywhere. */
function sanitizeText(text: string): string {
  const t = text.replace(/[\r\n\0]+/g, ' ').trim();
  return t.length > 0 ? t : 'Completed';
}

/** An IPv4 peer of a dual-stack socket without `::ffff:`, as logs and lockout keys expect. */
function normalizeAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}
