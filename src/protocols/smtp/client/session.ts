/**
 * One outbound SMTP connection (SPEC §3.3, §5.2): connect, greeting, EHLO, STARTTLS, AUTH, then
 * mail transactions — several on one connection when the pool reuses it (RSET in between) — and
 * QUIT. The reply syntax lives in reply-parser.ts and the DATA transparency in dot-stuff.ts; this
 * file is the conversation.
 *
 * Outcome classification (what the delivery worker retries and what it bounces):
 * - a 4xx reply, a lost connection, a timeout, a TLS failure, a protocol error → temporary;
 * - a 5xx reply → permanent (RFC 5321 §4.2.1), per recipient at RCPT, for all at MAIL/DATA;
 * - a message that needs SMTPUTF8 to a server without it → permanent (RFC 6531 §3.4), and a message
 *   larger than the server's declared SIZE → permanent (RFC 1870 §6), both before MAIL is sent.
 * 421 at any point means the server is closing the channel (RFC 5321 §3.8): the whole transaction
 * fails temporarily and the connection is not reused.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import type { ClientSendInput, ClientSendResult, ClientStage, SmtpClientReply } from '../../../outbound/types.js';
import { DotStuffer } from './dot-stuff.js';
import {
  noCapabilities,
  parseEhlo,
  replyWireLines,
  ReplyParser,
  ReplyProtocolError,
  type ParsedReply,
  type ServerCapabilities,
} from './reply-parser.js';
import { Transcript } from './transcript.js';

/** QUIT is a courtesy: never wait long for its 221. */
const QUIT_WAIT_MS = 2_000;

/** A failure of the conversation, with where it happened and how the delivery should treat it. */
export class ClientFailure extends Error {
  constructor(
    readonly stage: ClientStage,
    readonly temporary: boolean,
    message: string,
    readonly reply: SmtpClientReply | null = null,
  ) {
    super(message);
    this.name = 'ClientFailure';
  }
}

/** The reply without its raw lines (what the result and the queue history keep). */
export function plainReply(reply: SmtpClientReply): SmtpClientReply {
  return { code: reply.code, enhanced: reply.enhanced, text: reply.text };
}

function describe(reply: SmtpClientReply): string {
  return `${reply.code}${reply.enhanced ? ` ${reply.enhanced}` : ''}${reply.text ? ` ${reply.text}` : ''}`;
}

function replyFailure(stage: ClientStage, what: string, reply: SmtpClientReply): ClientFailure {
  return new ClientFailure(stage, reply.code < 500, `${what} rejected: ${describe(reply)}`, plainReply(reply));
}

const isPositive = (r: SmtpClientReply) => r.code >= 200 && r.code < 300;

/** Connection-level identity used by the pool (same key ⇒ the connection can carry the send). */
export function connectionKey(input: ClientSendInput): string {
  return JSON.stringify([input.address, input.port, input.host.toLowerCase(), input.tls, input.verifyCertificate, input.auth?.user ?? '', input.heloName]);
}

interface Waiter {
  resolve: (reply: ParsedReply) => void;
  reject: (err: Error) => void;
}

export class SmtpClientConnection {
  caps: ServerCapabilities = noCapabilities();
  tlsInfo: ClientSendResult['tls'] = null;
  /** Transactions started on this connection. */
  transactions = 0;
  /** Set while the pool holds the connection unused: a reply then is unsolicited (a 421 before closing). */
  idle = false;
  /** Called once when the socket is gone (the pool drops the connection from its idle list). */
  onGone: (() => void) | null = null;

  private parser = new ReplyParser();
  private waiter: Waiter | null = null;
  private gone: Error | null = null;
  private broken = false;
  private readonly closed: Promise<void>;
  private markClosed!: () => void;

  private constructor(
    private socket: net.Socket,
    private readonly target: ClientSendInput,
  ) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    this.attach(socket);
  }

  /** Still connected and in a clean state between transactions. */
  get reusable(): boolean {
    return !this.gone && !this.broken;
  }

  /**
   * Opens the connection and brings it to "ready for MAIL": greeting, EHLO (HELO fallback), STARTTLS,
   * re-EHLO, AUTH. Throws ClientFailure with the stage it stopped at; the socket is closed then.
   */
  static async open(input: ClientSendInput, transcript: Transcript): Promise<SmtpClientConnection> {
    transcript.note(`connecting to ${input.host} [${input.address}]:${input.port}${input.tls === 'implicit' ? ' (implicit TLS)' : ''}`);
    const socket = await connectSocket(input);
    const conn = new SmtpClientConnection(socket, input);
    const stopAbort = conn.watchAbort(input.signal);
    try {
      if (socket instanceof tls.TLSSocket) conn.recordTls(socket, transcript);
      const greeting = await conn.read('greeting', input.timeouts.commandMs, 'the connection (greeting)', transcript);
      if (greeting.code !== 220) throw replyFailure('greeting', 'connection', greeting);
      await conn.hello(transcript);
      await conn.negotiateTls(transcript);
      if (input.auth) await conn.authenticate(input.auth, transcript);
      return conn;
    } catch (err) {
      await conn.close();
      throw err;
    } finally {
      stopAbort();
    }
  }

  /** RSET before a further transaction on a reused connection (RFC 5321 §4.1.1.5). */
  async reset(transcript: Transcript): Promise<boolean> {
    if (!this.reusable) return false;
    this.idle = false;
    try {
      this.write(['RSET'], transcript);
      const reply = await this.read('mail', this.target.timeouts.commandMs, 'RSET', transcript);
      if (isPositive(reply)) return true;
    } catch {
      // Falls through: the pool opens a fresh connection instead.
    }
    this.broken = true;
    return false;
  }

  /** One mail transaction: MAIL, RCPT…, DATA, the message, the final reply. Never throws. */
  async transaction(input: ClientSendInput, transcript: Transcript): Promise<ClientSendResult> {
    this.idle = false;
    this.transactions++;
    const result: ClientSendResult = {
      stage: 'mail',
      error: null,
      recipients: input.recipients.map((address) => ({ address, rcptReply: null, delivered: false })),
      dataReply: null,
      tls: this.tlsInfo,
      transcript: [],
    };
    const stopAbort = this.watchAbort(input.signal);
    try {
      await this.runTransaction(input, transcript, result);
    } catch (err) {
      const failure = toFailure(err, result.stage);
      result.stage = failure.stage;
      result.error = { temporary: failure.temporary, reply: failure.reply, message: failure.message };
      if (!(err instanceof ClientFailure) || failure.reply?.code === 421 || this.gone) this.broken = true;
      for (const r of result.recipients) r.delivered = false;
    } finally {
      stopAbort();
    }
    if (result.error?.reply?.code === 421) this.broken = true;
    return result;
  }

  /** QUIT (RFC 5321 §4.1.1.10), wait briefly for 221, then close. Never throws. */
  async close(): Promise<void> {
    if (!this.gone && !this.socket.destroyed) {
      try {
        this.idle = false;
        this.socket.write('QUIT\r\n');
        await this.read('done', Math.min(QUIT_WAIT_MS, this.target.timeouts.commandMs), 'QUIT', null);
      } catch {
        // The server may close without 221; nothing depends on it.
      }
      this.socket.end();
    }
    if (this.socket.destroyed) return;
    const timer = setTimeout(() => this.socket.destroy(), QUIT_WAIT_MS);
    await this.closed;
    clearTimeout(timer);
  }

  /** Drops the connection at once (no QUIT). */
  destroy(): void {
    this.broken = true;
    this.socket.destroy();
  }

  // ── set-up steps ─────────────────────────────────────────────────────────────────────────────

  /** EHLO; a 5xx answer falls back to HELO without extensions (RFC 5321 §3.2, §4.1.4). */
  private async hello(transcript: Transcript): Promise<void> {
    const { commandMs } = this.target.timeouts;
    this.write([`EHLO ${this.target.heloName}`], transcript);
    const ehlo = await this.read('ehlo', commandMs, 'EHLO', transcript);
    if (ehlo.code === 250) {
      this.caps = parseEhlo(ehlo.lines);
      return;
    }
    if (ehlo.code < 500) throw replyFailure('ehlo', 'EHLO', ehlo);
    this.write([`HELO ${this.target.heloName}`], transcript);
    const helo = await this.read('ehlo', commandMs, 'HELO', transcript);
    if (helo.code !== 250) throw replyFailure('ehlo', 'HELO', helo);
    this.caps = noCapabilities();
  }

  /**
   * STARTTLS (RFC 3207) when the mode asks for it: `opportunistic` uses it when offered and carries
   * on in plain text when it is not (or when the server declines the command); `required` fails
   * temporarily then. After the handshake everything learnt before is forgotten and EHLO is sent
   * again (RFC 3207 §4.2).
   */
  private async negotiateTls(transcript: Transcript): Promise<void> {
    const mode = this.target.tls;
    if (mode === 'none' || mode === 'implicit') return;
    if (!this.caps.starttls) {
      if (mode === 'required') throw new ClientFailure('starttls', true, 'TLS required but not offered');
      transcript.note('STARTTLS not offered; continuing without TLS');
      return;
    }
    this.write(['STARTTLS'], transcript);
    const reply = await this.read('starttls', this.target.timeouts.commandMs, 'STARTTLS', transcript);
    if (reply.code !== 220) {
      if (mode === 'required') throw new ClientFailure('starttls', true, `TLS required but STARTTLS was refused: ${describe(reply)}`, plainReply(reply));
      transcript.note('STARTTLS refused; continuing without TLS');
      return;
    }
    // Anything that arrived after the 220 was sent before the handshake: discard it (RFC 3207 §4.2,
    // the defence against plaintext command injection).
    this.detach(this.socket);
    this.parser.reset();
    let secure: tls.TLSSocket;
    try {
      secure = await upgradeSocket(this.socket, this.target);
    } catch (err) {
      this.lose(err as Error);
      throw err;
    }
    this.socket = secure;
    this.attach(secure);
    this.recordTls(secure, transcript);
    this.caps = noCapabilities();
    this.write([`EHLO ${this.target.heloName}`], transcript);
    const ehlo = await this.read('ehlo', this.target.timeouts.commandMs, 'EHLO', transcript);
    if (ehlo.code !== 250) throw replyFailure('ehlo', 'EHLO after STARTTLS', ehlo);
    this.caps = parseEhlo(ehlo.lines);
  }

  /**
   * AUTH PLAIN with an initial response, or AUTH LOGIN (RFC 4954 §4; draft-murchison-sasl-login).
   * Credentials go only over TLS, unless the route says `tls: none` (a trusted local relay).
   */
  private async authenticate(auth: { user: string; password: string }, transcript: Transcript): Promise<void> {
    const { commandMs } = this.target.timeouts;
    if (!this.tlsInfo && this.target.tls !== 'none') {
      throw new ClientFailure('auth', true, 'refusing to send AUTH credentials over an unencrypted connection (STARTTLS was not used)');
    }
    const mechs = this.caps.auth;
    if (mechs.includes('PLAIN')) {
      const token = Buffer.from(`\u0000${auth.user}\u0000${auth.password}`, 'utf8').toString('base64');
      this.write([`AUTH PLAIN ${token}`], transcript);
      const reply = await this.read('auth', commandMs, 'AUTH PLAIN', transcript);
      if (reply.code !== 235) throw replyFailure('auth', 'AUTH PLAIN', reply);
      return;
    }
    if (mechs.includes('LOGIN')) {
      this.write(['AUTH LOGIN'], transcript);
      let reply = await this.read('auth', commandMs, 'AUTH LOGIN', transcript);
      for (const secret of [auth.user, auth.password]) {
        if (reply.code !== 334) throw replyFailure('auth', 'AUTH LOGIN', reply);
        this.writeSecret(Buffer.from(secret, 'utf8').toString('base64'), transcript);
        reply = await this.read('auth', commandMs, 'AUTH LOGIN', transcript);
      }
      if (reply.code !== 235) throw replyFailure('auth', 'AUTH LOGIN', reply);
      return;
    }
    const offered = mechs.length > 0 ? `offered: ${mechs.join(' ')}` : 'AUTH not offered';
    throw new ClientFailure('auth', true, `the server offers no supported AUTH mechanism (PLAIN, LOGIN); ${offered}`);
  }

  // ── the transaction ──────────────────────────────────────────────────────────────────────────

  private async runTransaction(input: ClientSendInput, transcript: Transcript, result: ClientSendResult): Promise<void> {
    const { commandMs, dataMs } = input.timeouts;
    const caps = this.caps;
    if (input.needsSmtputf8 && !caps.smtputf8) {
      throw new ClientFailure(
        'mail',
        false,
        'the receiving server does not support SMTPUTF8 (RFC 6531), which this message needs for its non-ASCII addresses or header fields',
      );
    }
    if (caps.size && caps.maxSize > 0 && input.size > caps.maxSize) {
      throw new ClientFailure('mail', false, `the message (${input.size} bytes) exceeds the receiving server's size limit of ${caps.maxSize} bytes (RFC 1870)`);
    }
    if (input.recipients.length === 0) throw new ClientFailure('rcpt', false, 'no recipients');

    let mail = `MAIL FROM:<${input.mailFrom}>`;
    if (caps.size) mail += ` SIZE=${input.size}`;
    if (input.eightBit && caps.eightBitMime) mail += ' BODY=8BITMIME';
    if (input.needsSmtputf8) mail += ' SMTPUTF8';
    const rcpts = input.recipients.map((r) => `RCPT TO:<${r}>`);

    let dataCommandReply: ParsedReply | null;
    if (caps.pipelining) {
      // RFC 2920 §3.1: MAIL, every RCPT and DATA in one group; replies come back in order.
      this.write([mail, ...rcpts, 'DATA'], transcript);
      const mailReply = await this.readChecked('mail', commandMs, 'MAIL', transcript);
      result.stage = 'rcpt';
      for (let i = 0; i < rcpts.length; i++) {
        result.recipients[i].rcptReply = plainReply(await this.readChecked('rcpt', commandMs, 'RCPT', transcript));
      }
      result.stage = 'data';
      dataCommandReply = await this.readChecked('data', commandMs, 'DATA', transcript);
      if (!isPositive(mailReply)) {
        // The RCPT and DATA replies only follow from the refused MAIL (503 and the like).
        for (const r of result.recipients) r.rcptReply = null;
        await this.abandonData(dataCommandReply, transcript);
        result.stage = 'mail';
        throw replyFailure('mail', 'MAIL FROM', mailReply);
      }
      if (!result.recipients.some((r) => r.rcptReply && isPositive(r.rcptReply))) {
        // Every recipient refused: the server should have refused DATA too (RFC 2920 §3.1).
        await this.abandonData(dataCommandReply, transcript);
        result.stage = 'rcpt';
        return;
      }
    } else {
      this.write([mail], transcript);
      const mailReply = await this.readChecked('mail', commandMs, 'MAIL', transcript);
      if (!isPositive(mailReply)) throw replyFailure('mail', 'MAIL FROM', mailReply);
      result.stage = 'rcpt';
      for (let i = 0; i < rcpts.length; i++) {
        this.write([rcpts[i]], transcript);
        result.recipients[i].rcptReply = plainReply(await this.readChecked('rcpt', commandMs, 'RCPT', transcript));
      }
      if (!result.recipients.some((r) => r.rcptReply && isPositive(r.rcptReply))) return;
      result.stage = 'data';
      this.write(['DATA'], transcript);
      dataCommandReply = await this.readChecked('data', commandMs, 'DATA', transcript);
    }

    if (dataCommandReply.code !== 354) {
      result.dataReply = plainReply(dataCommandReply);
      throw replyFailure('data', 'DATA', dataCommandReply);
    }
    await this.streamMessage(input, transcript);
    const final = await this.readChecked('data', dataMs, 'the end of the message data', transcript);
    result.stage = 'done';
    result.dataReply = plainReply(final);
    if (!isPositive(final)) throw replyFailure('done', 'message data', final);
    for (const r of result.recipients) r.delivered = r.rcptReply !== null && isPositive(r.rcptReply);
  }

  /** A 354 we do not want (MAIL or every RCPT failed under PIPELINING): end the empty data at once. */
  private async abandonData(dataReply: ParsedReply, transcript: Transcript): Promise<void> {
    if (dataReply.code !== 354) return;
    this.write(['.'], transcript);
    await this.readChecked('data', this.target.timeouts.dataMs, 'the end of the (empty) message data', transcript);
  }

  /**
   * The message through the dot-stuffer into the socket, honouring backpressure. A write that makes
   * no progress for `commandMs` is a timeout. If the message cannot be read to its end, the final
   * `.` must not be sent (it would deliver a truncated message): the connection is dropped instead.
   */
  private async streamMessage(input: ClientSendInput, transcript: Transcript): Promise<void> {
    let source: Readable;
    try {
      source = await input.message();
    } catch (err) {
      this.destroy();
      throw new ClientFailure('data', true, `cannot read the message: ${(err as Error).message}`);
    }
    const stuffer = new DotStuffer();
    let bytes = 0;
    try {
      for await (const chunk of source) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        for (const piece of stuffer.update(buf)) {
          bytes += piece.length;
          await this.writeRaw(piece);
        }
      }
    } catch (err) {
      source.destroy();
      this.destroy();
      if (err instanceof ClientFailure) throw err;
      throw new ClientFailure('data', true, `cannot read the message: ${(err as Error).message}`);
    }
    for (const piece of stuffer.finish()) {
      bytes += piece.length;
      await this.writeRaw(piece);
    }
    transcript.note(`message data sent (${bytes} bytes)`);
  }

  private async writeRaw(buf: Buffer): Promise<void> {
    if (this.gone) throw new ClientFailure('data', true, `connection lost while sending the message: ${this.gone.message}`);
    if (this.socket.write(buf)) return;
    const ms = this.target.timeouts.commandMs;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(new ClientFailure('data', true, `connection lost while sending the message${this.gone ? `: ${this.gone.message}` : ''}`));
      const timer = setTimeout(() => {
        this.destroy();
        done(new ClientFailure('data', true, `timed out after ${ms} ms sending the message data`));
      }, ms);
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }

  // ── reading and writing ──────────────────────────────────────────────────────────────────────

  private write(commands: string[], transcript: Transcript): void {
    for (const c of commands) transcript.client(c);
    this.socket.write(commands.map((c) => `${c}\r\n`).join(''));
  }

  private writeSecret(line: string, transcript: Transcript): void {
    transcript.clientSecret();
    this.socket.write(`${line}\r\n`);
  }

  /** A reply; 421 (the server closes the channel, RFC 5321 §3.8) ends the transaction for everyone. */
  private async readChecked(stage: ClientStage, timeoutMs: number, what: string, transcript: Transcript): Promise<ParsedReply> {
    const reply = await this.read(stage, timeoutMs, what, transcript);
    if (reply.code === 421) {
      this.broken = true;
      throw new ClientFailure(stage, true, `the server is closing the connection: ${describe(reply)}`, plainReply(reply));
    }
    return reply;
  }

  /** The next reply within `timeoutMs`; a timeout or a lost connection is a temporary ClientFailure. */
  private read(stage: ClientStage, timeoutMs: number, what: string, transcript: Transcript | null): Promise<ParsedReply> {
    const log = (reply: ParsedReply) => {
      if (transcript) for (const line of replyWireLines(reply)) transcript.server(line);
      return reply;
    };
    let queued: ParsedReply | null;
    try {
      queued = this.parser.next();
    } catch (err) {
      return Promise.reject(lostFailure(stage, what, err as Error));
    }
    if (queued) return Promise.resolve(log(queued));
    if (this.gone) return Promise.reject(lostFailure(stage, what, this.gone));
    return new Promise<ParsedReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        this.broken = true;
        this.socket.destroy();
        reject(new ClientFailure(stage, true, `timed out after ${timeoutMs} ms waiting for the reply to ${what}`));
      }, timeoutMs);
      this.waiter = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(log(reply));
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(lostFailure(stage, what, err));
        },
      };
    });
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.parser.push(chunk);
    } catch (err) {
      this.lose(err as Error);
      this.socket.destroy();
      return;
    }
    if (this.idle && this.parser.queued > 0) {
      // Unsolicited reply between transactions (typically 421 before the server hangs up).
      this.broken = true;
    }
    while (this.waiter && this.parser.queued > 0) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(this.parser.next()!);
    }
  };

  private readonly onError = (err: Error): void => this.lose(err);
  private readonly onClose = (): void => {
    this.lose(new Error('connection closed by the server'));
    this.markClosed();
    this.onGone?.();
  };

  private lose(err: Error): void {
    if (this.gone) return;
    this.gone = err;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
  }

  private attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  private detach(socket: net.Socket): void {
    socket.off('data', this.onData);
    socket.off('error', this.onError);
    socket.off('close', this.onClose);
    // The TLS socket reports the failures of the one it wraps; keep this one from throwing.
    socket.on('error', () => {});
  }

  private recordTls(socket: tls.TLSSocket, transcript: Transcript): void {
    const cipher = socket.getCipher();
    this.tlsInfo = { protocol: socket.getProtocol() ?? 'unknown', cipher: cipher?.name ?? 'unknown', authorized: socket.authorized };
    const auth = socket.authorized ? 'certificate verified' : `certificate not verified${socket.authorizationError ? ` (${String(socket.authorizationError)})` : ''}`;
    transcript.note(`TLS ${this.tlsInfo.protocol} ${this.tlsInfo.cipher}, ${auth}`);
  }

  /** Aborting (worker shutdown) drops the connection; the pending read fails temporarily. */
  private watchAbort(signal: AbortSignal | undefined): () => void {
    if (!signal) return () => {};
    const onAbort = () => {
      this.broken = true;
      this.lose(new Error('aborted'));
      this.socket.destroy();
    };
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    return () => signal.removeEventListener('abort', onAbort);
  }
}

function lostFailure(stage: ClientStage, what: string, err: Error): ClientFailure {
  if (err instanceof ClientFailure) return err;
  const why = err instanceof ReplyProtocolError ? `protocol error: ${err.message}` : err.message;
  return new ClientFailure(stage, true, `connection lost while waiting for the reply to ${what}: ${why}`);
}

function toFailure(err: unknown, stage: ClientStage): ClientFailure {
  if (err instanceof ClientFailure) return err;
  return new ClientFailure(stage, true, (err as Error)?.message ?? String(err));
}

function tlsOptions(input: ClientSendInput): tls.ConnectionOptions {
  return {
    // SNI carries a host name, never an address literal (RFC 6066 §3).
    servername: net.isIP(input.host) ? undefined : input.host,
    // Opportunistic TLS without verification accepts any certificate (RFC 7435); `authorized` still
    // tells whether it would have passed.
    rejectUnauthorized: input.verifyCertificate,
    ca: input.ca && input.ca.length > 0 ? [...tls.rootCertificates, ...input.ca] : undefined,
    checkServerIdentity: (_name, cert) => tls.checkServerIdentity(input.host, cert),
  };
}

/** TCP connect (within connectMs) and, for implicit TLS, the handshake (within commandMs more). */
function connectSocket(input: ClientSendInput): Promise<net.Socket> {
  if (input.signal?.aborted) return Promise.reject(new ClientFailure('connect', true, 'aborted'));
  const implicit = input.tls === 'implicit';
  const limitMs = input.timeouts.connectMs + (implicit ? input.timeouts.commandMs : 0);
  return new Promise((resolve, reject) => {
    const socket = implicit
      ? tls.connect({ host: input.address, port: input.port, ...tlsOptions(input) })
      : net.connect({ host: input.address, port: input.port });
    const finish = (err: ClientFailure | null) => {
      clearTimeout(timer);
      socket.off('error', onError);
      input.signal?.removeEventListener('abort', onAbort);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve(socket);
    };
    const onError = (err: NodeJS.ErrnoException) => {
      const what = implicit && socket.connecting === false ? 'TLS handshake failed' : 'cannot connect';
      finish(new ClientFailure('connect', true, `${what}: ${err.code === 'ECONNREFUSED' ? 'connection refused' : err.message}`));
    };
    const onAbort = () => finish(new ClientFailure('connect', true, 'aborted'));
    const timer = setTimeout(() => finish(new ClientFailure('connect', true, `connection timed out after ${limitMs} ms`)), limitMs);
    socket.once('error', onError);
    input.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once(implicit ? 'secureConnect' : 'connect', () => finish(null));
  });
}

/** The TLS handshake over the connected socket after `220` to STARTTLS (within commandMs). */
function upgradeSocket(socket: net.Socket, input: ClientSendInput): Promise<tls.TLSSocket> {
  const ms = input.timeouts.commandMs;
  return new Promise((resolve, reject) => {
    const secure = tls.connect({ socket, ...tlsOptions(input) });
    const finish = (err: ClientFailure | null) => {
      clearTimeout(timer);
      secure.off('error', onError);
      if (err) {
        secure.on('error', () => {});
        secure.destroy();
        socket.destroy();
        reject(err);
      } else resolve(secure);
    };
    const onError = (err: Error) => finish(new ClientFailure('starttls', true, `TLS handshake failed: ${err.message}`));
    const timer = setTimeout(() => finish(new ClientFailure('starttls', true, `TLS handshake timed out after ${ms} ms`)), ms);
    secure.once('error', onError);
    secure.once('secureConnect', () => finish(null));
  });
}

/**
 * One message over a fresh connection, then QUIT: what the pool does without reuse. The result's
 * transcript covers the whole conversation.
 */
export async function sendOverNewConnection(input: ClientSendInput): Promise<ClientSendResult> {
  const transcript = new Transcript();
  let conn: SmtpClientConnection;
  try {
    conn = await SmtpClientConnection.open(input, transcript);
  } catch (err) {
    return failedBeforeTransaction(input, err, transcript);
  }
  const result = await conn.transaction(input, transcript);
  result.transcript = transcript.lines();
  await conn.close();
  return result;
}

/** The result when no transaction started (connect, greeting, EHLO, STARTTLS or AUTH failed). */
export function failedBeforeTransaction(input: ClientSendInput, err: unknown, transcript: Transcript): ClientSendResult {
  const failure = toFailure(err, 'connect');
  return {
    stage: failure.stage,
    error: { temporary: failure.temporary, reply: failure.reply, message: failure.message },
    recipients: input.recipients.map((address) => ({ address, rcptReply: null, delivered: false })),
    dataReply: null,
    tls: null,
    transcript: transcript.lines(),
  };
}
