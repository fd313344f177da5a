/**
 * A small SMTP submission client for bench/outbound: queues messages in MaiRust as a mail client
 * does — EHLO, STARTTLS (RFC 3207), EHLO again, AUTH PLAIN (RFC 4954, RFC 4616) — and then sends
 * each message with PIPELINING (RFC 2920): MAIL, RCPT and DATA go out as one group (DATA is the
 * last command of a group), the three replies are read together, then the data and its final `250`.
 *
 * Why not smtp-source: it cannot do STARTTLS + AUTH, and it sends the same body every time; here
 * every message carries its own sequence number, so the sink's copies can be checked one by one.
 * Why not nodemailer: one connection per message or a pool that hides which message got which
 * reply; this client counts exactly the messages whose data got `250`.
 *
 * Every wait is bounded (REPLY_TIMEOUT_MS), the server's certificate is not checked (MaiRust's
 * generated self-signed one on loopback).
 */
import net from 'node:net';
import tls from 'node:tls';

export interface SubmitMessage {
  mailFrom: string;
  recipients: string[];
  /** The message as it should arrive: CRLF lines, ending in CRLF, not dot-stuffed. */
  data: Buffer;
}

export interface SubmitOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Concurrent connections; each sends one message after another. */
  sessions: number;
  /** The next message, or null when there is nothing left. */
  next(): SubmitMessage | null;
}

export interface SubmitResult {
  /** Messages whose data got a 2xx final reply. */
  accepted: number;
  ms: number;
  /** One entry per session that ended with an error (refused command, lost connection, timeout). */
  errors: string[];
}

interface Reply {
  code: number;
  lines: string[];
}

const REPLY_TIMEOUT_MS = 120_000;
/** A reply longer than this is not SMTP (RFC 5321 §4.5.3.1.5: 512 octets per line). */
const MAX_BUFFER = 64 * 1024;

/** Reads whole SMTP replies (multi-line per RFC 5321 §4.2.1) off one socket, in order. */
class ReplyReader {
  private buf = '';
  private lines: string[] = [];
  private ready: Reply[] = [];
  private waiters: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | null = null;

  constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', this.onData);
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  /** Stops reading this socket (before it is handed to TLS). */
  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.removeAllListeners('error');
    this.socket.removeAllListeners('close');
  }

  private onData = (chunk: string) => {
    this.buf += chunk;
    if (this.buf.length > MAX_BUFFER) return this.fail(new Error('reply too long'));
    let i: number;
    while ((i = this.buf.indexOf('\r\n')) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      this.lines.push(line);
      // "250-…" continues the reply, "250 …" (or a bare code) ends it.
      if (line.length <= 3 || line[3] === ' ') {
        const reply = { code: Number(line.slice(0, 3)), lines: this.lines };
        this.lines = [];
        const w = this.waiters.shift();
        if (w) w.resolve(reply);
        else this.ready.push(reply);
      }
    }
  };

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  next(): Promise<Reply> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${REPLY_TIMEOUT_MS} ms`)), REPLY_TIMEOUT_MS);
      this.waiters.push({
        resolve: (x) => {
          clearTimeout(timer);
          resolve(x);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }
}

async function expect(reader: ReplyReader, what: string, ok: (code: number) => boolean): Promise<Reply> {
  const r = await reader.next();
  if (!ok(r.code)) throw new Error(`${what}: ${r.lines.join(' / ')}`);
  return r;
}

const is2xx = (c: number) => c >= 200 && c < 300;

/** RFC 5321 §4.5.2: a line of the data that starts with "." gets one more. */
export function dotStuff(data: Buffer): Buffer {
  const text = data.toString('latin1');
  const stuffed = (text.startsWith('.') ? '.' : '') + text.replace(/\r\n\./g, '\r\n..');
  return Buffer.from(stuffed, 'latin1');
}

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function startTls(socket: net.Socket): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const t = tls.connect({ socket, rejectUnauthorized: false });
    t.once('secureConnect', () => {
      t.off('error', reject);
      resolve(t);
    });
    t.once('error', reject);
  });
}

async function session(opts: SubmitOptions, onAccepted: () => void): Promise<void> {
  const plain = await connect(opts.host, opts.port);
  let socket: net.Socket = plain;
  try {
    const r0 = new ReplyReader(plain);
    await expect(r0, 'greeting', (c) => c === 220);
    plain.write('EHLO client.bench.test\r\n');
    const ehlo0 = await expect(r0, 'EHLO', is2xx);
    if (!ehlo0.lines.some((l) => /^250[- ]STARTTLS\b/i.test(l))) throw new Error('the server does not offer STARTTLS');
    plain.write('STARTTLS\r\n');
    await expect(r0, 'STARTTLS', (c) => c === 220);
    r0.detach();
    socket = await startTls(plain);
    const r = new ReplyReader(socket);
    // RFC 3207 §4.2: everything learnt before TLS is discarded; EHLO again.
    socket.write('EHLO client.bench.test\r\n');
    const ehlo = await expect(r, 'EHLO after STARTTLS', is2xx);
    if (!ehlo.lines.some((l) => /^250[- ]PIPELINING\b/i.test(l))) throw new Error('the server does not offer PIPELINING');
    const plainAuth = Buffer.from(`\0${opts.user}\0${opts.password}`).toString('base64');
    socket.write(`AUTH PLAIN ${plainAuth}\r\n`);
    await expect(r, 'AUTH PLAIN', (c) => c === 235);
    for (;;) {
      const msg = opts.next();
      if (!msg) break;
      // One group: MAIL, every RCPT, DATA (RFC 2920 §3.1: DATA ends a group).
      socket.write(`MAIL FROM:<${msg.mailFrom}> SIZE=${msg.data.length}\r\n${msg.recipients.map((a) => `RCPT TO:<${a}>\r\n`).join('')}DATA\r\n`);
      await expect(r, 'MAIL', is2xx);
      for (const a of msg.recipients) await expect(r, `RCPT ${a}`, is2xx);
      await expect(r, 'DATA', (c) => c === 354);
      socket.write(Buffer.concat([dotStuff(msg.data), Buffer.from('.\r\n')]));
      await expect(r, 'end of data', is2xx);
      onAccepted();
    }
    socket.write('QUIT\r\n');
    await r.next().catch(() => undefined);
  } finally {
    socket.destroy();
    plain.destroy();
  }
}

/** Runs `sessions` connections until `next()` returns null; never throws for a refused message. */
export async function submitAll(opts: SubmitOptions): Promise<SubmitResult> {
  let accepted = 0;
  const errors: string[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: opts.sessions }, (_, i) =>
      session(opts, () => accepted++).catch((err: Error) => {
        errors.push(`session ${i}: ${err.message}`);
      }),
    ),
  );
  return { accepted, ms: performance.now() - started, errors };
}
