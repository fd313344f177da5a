/**
 * A small raw SMTP load client for tests that must know, message by message, what the server
 * acknowledged: the crash test (test/e2e/smtp-crash.test.ts) counts a message as acknowledged only
 * once the `250` reply to its end of data has been read off the socket (RFC 5321 §4.1.1.4: that
 * reply is the server taking responsibility for the message).
 *
 * Why not nodemailer or smtp-source: both hide exactly the moment that matters here (which
 * message got which final reply, and which were cut off in the middle by a dead server), and
 * smtp-source cannot send a unique body per message.
 *
 * Plain `net` sockets, no TLS, no AUTH: it talks to an MX listener. One command at a time (no
 * PIPELINING), so every reply belongs to the command just sent. Every buffer and wait is bounded.
 */
import net from 'node:net';

export interface Reply {
  code: number;
  /** Every line without CRLF; multi-line replies (RFC 5321 §4.2.1) whole. */
  lines: string[];
  /** The last line. */
  line: string;
}

/** A message to send: envelope and the message bytes as they should arrive (CRLF lines, ending in CRLF). */
export interface LoadMessage {
  id: string;
  mailFrom: string;
  recipients: string[];
  data: Buffer;
}

export interface SmtpLoadEvents {
  /** MAIL FROM for this message is about to be written: from now on its fate is unknown until a final reply. */
  sent?(msg: LoadMessage): void;
  /** The final reply after the data was `250`. */
  acknowledged?(msg: LoadMessage, reply: Reply): void;
  /** A command of this transaction got a reply other than the expected one. */
  refused?(msg: LoadMessage, reply: Reply, command: string): void;
}

export interface SmtpLoadOptions {
  host?: string;
  port: number;
  /** Concurrent connections. */
  sessions: number;
  /** Messages per connection before QUIT and a new connection, per session (cycled over the sessions). */
  messagesPerConnection: number[];
  /** Next message to send, or null when there is nothing left (the session then ends). */
  next(): LoadMessage | null;
  events?: SmtpLoadEvents;
  heloName?: string;
  /** Longest wait for one reply (generous: a slow blob store may hold the final reply for a while). */
  replyTimeoutMs?: number;
}

export interface SessionError {
  session: number;
  message: string;
  /** Whether stop() had been called already (errors after a deliberate kill are expected). */
  afterStop: boolean;
}

export interface SmtpLoadReport {
  acknowledged: number;
  refused: { id: string; command: string; reply: string }[];
  errors: SessionError[];
}

export interface SmtpLoad {
  /** No new message is started; transactions under way go on until they end or fail. */
  stop(): void;
  /** Messages whose data has been written completely and whose final reply has not been read yet. */
  awaitingFinalReply(): number;
  done: Promise<SmtpLoadReport>;
}

/** RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; allow slack for servers that exceed it. */
const MAX_REPLY_LINE = 4096;
/** A reply with more lines than this is garbage, not SMTP. */
const MAX_REPLY_LINES = 100;
const DEFAULT_REPLY_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The message as written after DATA (RFC 5321 §4.5.2 transparency): a `.` is added before every
 * line that starts with `.`, and the end-of-data line `.` CRLF is appended. The message must use
 * CRLF line ends and end with CRLF (so the terminator starts on its own line).
 */
export function dotStuff(message: Buffer): Buffer {
  if (message.length < 2 || message[message.length - 2] !== 0x0d || message[message.length - 1] !== 0x0a) {
    throw new Error('dotStuff: the message must end with CRLF');
  }
  const parts: Buffer[] = [];
  let lineStart = 0;
  while (lineStart < message.length) {
    const lf = message.indexOf(0x0a, lineStart);
    const end = lf === -1 ? message.length : lf + 1;
    if (message[lineStart] === 0x2e) parts.push(Buffer.from('.'));
    parts.push(message.subarray(lineStart, end));
    lineStart = end;
  }
  parts.push(Buffer.from('.\r\n'));
  return Buffer.concat(parts);
}

/** Reads whole replies off a socket; rejects on close, on a line over the limit, or on timeout. */
class ReplyReader {
  private buffer = '';
  private lines: string[] = [];
  private closed: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) !== -1) {
        this.lines.push(this.buffer.slice(0, nl).replace(/\r$/, ''));
        this.buffer = this.buffer.slice(nl + 1);
      }
      if (this.buffer.length > MAX_REPLY_LINE || this.lines.length > MAX_REPLY_LINES) {
        socket.destroy(new Error(`reply line longer than ${MAX_REPLY_LINE} octets or more than ${MAX_REPLY_LINES} lines`));
      }
      this.wake?.();
    });
    socket.on('error', (err) => {
      this.closed ??= err;
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed ??= new Error('connection closed by the server');
      this.wake?.();
    });
  }

  /** The next whole reply: lines `NNN-text` continue it, `NNN text` (or bare `NNN`) ends it. */
  async next(timeoutMs: number): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.lines.findIndex((l) => /^\d{3}(?: |$)/.test(l));
      if (end !== -1) {
        const lines = this.lines.splice(0, end + 1);
        const bad = lines.find((l) => !/^\d{3}[ -]?/.test(l));
        if (bad !== undefined) throw new Error(`malformed reply line ${JSON.stringify(bad.slice(0, 200))}`);
        const line = lines[lines.length - 1];
        return { code: Number(line.slice(0, 3)), lines, line };
      }
      if (this.closed) throw this.closed;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = null;
          resolve();
        };
      });
    }
  }
}

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

class TransactionRefused extends Error {}

/** Starts `sessions` concurrent senders that draw messages from `next()` until it returns null or stop() is called. */
export function runSmtpLoad(opts: SmtpLoadOptions): SmtpLoad {
  const host = opts.host ?? '127.0.0.1';
  const heloName = opts.heloName ?? 'load.client.test';
  const timeoutMs = opts.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
  const events = opts.events ?? {};
  const report: SmtpLoadReport = { acknowledged: 0, refused: [], errors: [] };
  let stopped = false;
  let exhausted = false;
  let awaiting = 0;

  async function transaction(socket: net.Socket, reader: ReplyReader, msg: LoadMessage, eightBit: boolean): Promise<void> {
    const command = async (line: string, expect: number[]) => {
      socket.write(`${line}\r\n`);
      const reply = await reader.next(timeoutMs);
      if (!expect.includes(reply.code)) {
        events.refused?.(msg, reply, line);
        report.refused.push({ id: msg.id, command: line.split(/[: ]/)[0], reply: reply.line });
        throw new TransactionRefused(reply.line);
      }
    };
    events.sent?.(msg);
    // RFC 6152 §3: an 8-bit body is declared with BODY=8BITMIME when the server offers it.
    await command(`MAIL FROM:<${msg.mailFrom}>${eightBit ? ' BODY=8BITMIME' : ''}`, [250]);
    for (const rcpt of msg.recipients) await command(`RCPT TO:<${rcpt}>`, [250, 251]);
    await command('DATA', [354]);
    socket.write(dotStuff(msg.data));
    awaiting++;
    let reply: Reply;
    try {
      reply = await reader.next(timeoutMs);
    } finally {
      awaiting--;
    }
    if (reply.code === 250) {
      report.acknowledged++;
      events.acknowledged?.(msg, reply);
    } else {
      events.refused?.(msg, reply, 'end of data');
      report.refused.push({ id: msg.id, command: 'end of data', reply: reply.line });
    }
  }

  async function connection(perConnection: number): Promise<void> {
    const socket = await connect(host, opts.port);
    const reader = new ReplyReader(socket);
    try {
      const greeting = await reader.next(timeoutMs);
      if (greeting.code !== 220) throw new Error(`greeting: ${greeting.line}`);
      socket.write(`EHLO ${heloName}\r\n`);
      const ehlo = await reader.next(timeoutMs);
      if (ehlo.code !== 250) throw new Error(`EHLO: ${ehlo.line}`);
      const eightBit = ehlo.lines.some((l) => /^250[ -]8BITMIME\b/i.test(l));
      for (let i = 0; i < perConnection && !stopped; i++) {
        const msg = opts.next();
        if (!msg) {
          exhausted = true;
          break;
        }
        try {
          await transaction(socket, reader, msg, eightBit);
        } catch (err) {
          if (!(err instanceof TransactionRefused)) throw err;
          // RFC 5321 §4.1.1.5: RSET abandons the refused transaction; the connection goes on.
          socket.write('RSET\r\n');
          const rset = await reader.next(timeoutMs);
          if (rset.code !== 250) throw new Error(`RSET: ${rset.line}`);
        }
      }
      socket.write('QUIT\r\n');
      await reader.next(timeoutMs).catch(() => {});
    } finally {
      socket.destroy();
    }
  }

  async function session(index: number): Promise<void> {
    const perConnection = Math.max(1, opts.messagesPerConnection[index % opts.messagesPerConnection.length] ?? 1);
    while (!stopped && !exhausted) {
      try {
        await connection(perConnection);
      } catch (err) {
        // A broken connection ends the session: after a deliberate kill that is what should happen,
        // before one it is a failure the caller reports.
        report.errors.push({ session: index, message: (err as Error).message, afterStop: stopped });
        return;
      }
    }
  }

  const done = Promise.all(Array.from({ length: opts.sessions }, (_, i) => session(i))).then(() => report);
  return {
    stop: () => {
      stopped = true;
    },
    awaitingFinalReply: () => awaiting,
    done,
  };
}

/**
 * Resolves once a server on `port` greets with `220` (and says QUIT). A server process may accept
 * HTTP health checks before its SMTP listeners are bound, so callers wait for the greeting itself.
 */
export async function waitForSmtpGreeting(port: number, timeoutMs = 30_000, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const socket = await connect(host, port);
      const reader = new ReplyReader(socket);
      const greeting = await reader.next(5000).catch((err: Error) => ({ code: 0, line: err.message }));
      if (greeting.code === 220) {
        socket.end('QUIT\r\n');
        return;
      }
      socket.destroy();
      last = greeting.line;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no 220 greeting on ${host}:${port} within ${timeoutMs} ms: ${last}`);
}
