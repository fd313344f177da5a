/**
 * A raw SMTP client for tests that must see the exact reply lines (limits, refusals): it sends bytes
 * as given and returns replies as the server wrote them, multi-line replies (RFC 5321 §4.2.1) whole.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  code: number;
  /** Every line of the reply without CRLF, e.g. ['250-mx.test Nice to meet you', '250 SIZE 1000']. */
  lines: string[];
  /** The last line: for single-line replies the whole reply. */
  line: string;
}

const MAX_BUFFER = 1024 * 1024;

export class SmtpWire {
  private buffer = '';
  private waiting: (() => void) | null = null;
  private ended = false;
  private endedPromise: Promise<void>;

  private constructor(private socket: net.Socket) {
    this.endedPromise = new Promise((resolve) => {
      this.attach(socket, resolve);
    });
  }

  private attach(socket: net.Socket, onEnd: () => void) {
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('utf8');
      if (this.buffer.length > MAX_BUFFER) socket.destroy(new Error('test client: reply buffer overflow'));
      this.waiting?.();
    });
    const finish = () => {
      this.ended = true;
      this.waiting?.();
      onEnd();
    };
    socket.once('close', finish);
    socket.once('end', finish);
    socket.on('error', () => {});
  }

  /** Connects in clear (from `localAddress` if given), or with implicit TLS when `tls` is given. */
  static connect(port: number, opts: { host?: string; localAddress?: string; tls?: tls.ConnectionOptions } = {}): Promise<SmtpWire> {
    const host = opts.host ?? '127.0.0.1';
    const localAddress = opts.localAddress;
    return new Promise((resolve, reject) => {
      const socket = opts.tls
        ? tls.connect({ host, port, rejectUnauthorized: false, ...opts.tls }, () => resolve(new SmtpWire(socket)))
        : net.connect({ host, port, localAddress }, () => resolve(new SmtpWire(socket)));
      socket.once('error', reject);
    });
  }

  /** Writes raw text (add CRLF yourself). */
  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Reads the next whole reply; rejects when the connection ends first or after `timeoutMs`. */
  async reply(timeoutMs = 10_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.takeReply();
      if (parsed) return parsed;
      if (this.ended) throw new Error(`connection closed; unread: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; unread: ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(t);
          this.waiting = null;
          resolve();
        };
      });
    }
  }

  private takeReply(): Reply | null {
    const lines: string[] = [];
    let offset = 0;
    for (;;) {
      const end = this.buffer.indexOf('\r\n', offset);
      if (end < 0) return null;
      const line = this.buffer.slice(offset, end);
      lines.push(line);
      offset = end + 2;
      if (!/^\d{3}-/.test(line)) {
        this.buffer = this.buffer.slice(offset);
        return { code: Number(line.slice(0, 3)), lines, line };
      }
    }
  }

  async command(line: string, timeoutMs?: number): Promise<Reply> {
    this.send(line);
    return this.reply(timeoutMs);
  }

  /** EHLO and the extension keywords it announced (upper-case, first word of each line). */
  async ehlo(name = 'client.test'): Promise<{ reply: Reply; extensions: string[] }> {
    const reply = await this.command(`EHLO ${name}`);
    const extensions = reply.lines.slice(1).map((l) => l.slice(4));
    return { reply, extensions };
  }

  /** STARTTLS and the TLS handshake (RFC 3207); the session starts over afterwards. */
  async startTls(options: tls.ConnectionOptions = {}): Promise<Reply> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) return reply;
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('end');
    await new Promise<void>((resolve, reject) => {
      const secure = tls.connect({ socket: plain, rejectUnauthorized: false, ...options }, () => resolve());
      secure.once('error', reject);
      this.socket = secure;
      this.endedPromise = new Promise((done) => this.attach(secure, done));
    });
    return reply;
  }

  /** Resolves when the server has closed the connection (fails after `timeoutMs`). */
  async closed(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.endedPromise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** base64 of the SASL PLAIN message (RFC 4616): authzid NUL authcid NUL password. */
export function plainCredentials(user: string, password: string, authzid = ''): string {
  return Buffer.from(`${authzid}\0${user}\0${password}`, 'utf8').toString('base64');
}
