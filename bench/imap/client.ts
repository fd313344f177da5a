/**
 * A tiny IMAP client for the load generator: raw TLS socket, one response parser, no mail model.
 * Full clients (ImapFlow) keep per-connection state and parse every response into objects, which
 * is too heavy for 1 000 sessions in the same process as the load; this one keeps, per response
 * line, the text and the sizes of its literals, and throws the literal octets away.
 *
 * Protocol points it relies on (RFC 9051):
 *  - §2.2.1/§7: every response line ends in CRLF; a line may carry literals `{n}` CRLF <n octets>,
 *    after which the same line goes on. `{n+}` (RFC 7888) only appears client → server.
 *  - §2.2.2: commands may be pipelined; the tagged completion names its command, untagged data
 *    before it belongs to the oldest pending command here (good enough for a load generator).
 *  - §7.5: a `+` continuation request answers a synchronizing literal or IDLE (RFC 2177).
 */
import tls from 'node:tls';
import net from 'node:net';

export interface ResponseLine {
  /** The line with literal markers (`{123}`) kept and the literal octets removed. */
  text: string;
  /** Octet counts of the literals of this line, in order. */
  literals: number[];
}

export interface Reply {
  tag: string;
  status: 'OK' | 'NO' | 'BAD';
  /** Text after the status (response code included). */
  text: string;
  untagged: ResponseLine[];
}

export class ImapError extends Error {
  constructor(
    message: string,
    readonly reply?: Reply,
  ) {
    super(message);
  }
}

interface Pending {
  tag: string;
  untagged: ResponseLine[];
  resolve(r: Reply): void;
  reject(err: Error): void;
  /** Waiting for `+` (a synchronizing literal or IDLE). */
  onContinue?: () => void;
}

export interface ConnectOptions {
  host: string;
  port: number;
  /** Implicit TLS (imaps); the bench always uses it so both servers pay the same TLS cost. */
  tls: boolean;
  timeoutMs?: number;
}

const CRLF = Buffer.from('\r\n');
const LITERAL_AT_END = /\{(\d+)\+?\}$/;

export class ImapClient {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Octets of the current literal still to skip. */
  private need = 0;
  private parts: string[] = [];
  private literals: number[] = [];
  private pending: Pending[] = [];
  private seq = 0;
  private closedError: Error | null = null;
  private greeting: { resolve(line: string): void; reject(err: Error): void } | null = null;
  /** Untagged lines that arrived while no command was pending (greeting, BYE). */
  readonly unsolicited: ResponseLine[] = [];
  capabilities = new Set<string>();

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  /** Connects and waits for the greeting (`* OK`; `* PREAUTH` is not expected here). */
  static async connect(opts: ConnectOptions): Promise<ImapClient> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const socket = opts.tls
      ? tls.connect({ host: opts.host, port: opts.port, rejectUnauthorized: false })
      : net.connect({ host: opts.host, port: opts.port });
    const client = new ImapClient(socket);
    const greeting = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no greeting within ${timeoutMs} ms`)), timeoutMs);
      client.greeting = {
        resolve: (line) => (clearTimeout(timer), resolve(line)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
    }).catch((err) => {
      socket.destroy();
      throw err;
    });
    if (!greeting.startsWith('* OK')) {
      socket.destroy();
      throw new ImapError(`unexpected greeting: ${greeting.slice(0, 200)}`);
    }
    client.readCapabilities(greeting);
    return client;
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  private readCapabilities(line: string): void {
    const m = /\[CAPABILITY ([^\]]*)\]/i.exec(line) ?? /^\* CAPABILITY (.*)$/i.exec(line);
    if (m) this.capabilities = new Set(m[1].toUpperCase().split(' '));
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.greeting?.reject(err);
    this.greeting = null;
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) p.reject(err);
  }

  private onData(chunk: Buffer): void {
    if (this.pos < this.buf.length) this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    else this.buf = chunk;
    this.pos = 0;
    const buf = this.buf;
    while (this.pos < buf.length) {
      if (this.need > 0) {
        // Inside a literal: skip its octets, whatever they contain (CRLF included).
        const take = Math.min(this.need, buf.length - this.pos);
        this.need -= take;
        this.pos += take;
        continue;
      }
      const end = buf.indexOf(CRLF, this.pos);
      if (end < 0) break;
      const line = buf.toString('latin1', this.pos, end);
      this.pos = end + 2;
      const lit = LITERAL_AT_END.exec(line);
      this.parts.push(line);
      if (lit) {
        const n = Number(lit[1]);
        this.literals.push(n);
        this.need = n;
        continue;
      }
      const text = this.parts.length === 1 ? line : this.parts.join('');
      const literals = this.literals;
      this.parts = [];
      this.literals = [];
      this.dispatch({ text, literals });
    }
  }

  private dispatch(line: ResponseLine): void {
    const t = line.text;
    if (this.greeting) {
      const g = this.greeting;
      this.greeting = null;
      g.resolve(t);
      return;
    }
    if (t.startsWith('+')) {
      const waiting = this.pending.find((p) => p.onContinue);
      if (waiting) {
        const go = waiting.onContinue!;
        waiting.onContinue = undefined;
        go();
      }
      return;
    }
    if (t.startsWith('* ')) {
      const head = this.pending[0];
      if (head) head.untagged.push(line);
      else this.unsolicited.push(line);
      if (/^\* CAPABILITY /i.test(t)) this.readCapabilities(t);
      return;
    }
    const sp = t.indexOf(' ');
    const tag = t.slice(0, sp);
    const i = this.pending.findIndex((p) => p.tag === tag);
    if (i < 0) return; // not ours: ignore rather than crash the load
    const p = this.pending[i];
    this.pending.splice(i, 1);
    const rest = t.slice(sp + 1);
    const sp2 = rest.indexOf(' ');
    const status = (sp2 < 0 ? rest : rest.slice(0, sp2)).toUpperCase();
    const text = sp2 < 0 ? '' : rest.slice(sp2 + 1);
    this.readCapabilities(text);
    p.onContinue = undefined;
    if (status === 'OK' || status === 'NO' || status === 'BAD') p.resolve({ tag, status, text, untagged: p.untagged });
    else p.reject(new ImapError(`unparsable completion: ${t.slice(0, 200)}`));
  }

  private nextTag(): string {
    return `A${++this.seq}`;
  }

  private start(tag: string, write: () => void, onContinue?: () => void): Promise<Reply> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<Reply>((resolve, reject) => {
      this.pending.push({ tag, untagged: [], resolve, reject, onContinue });
      write();
    });
  }

  /** Sends one command line (no literals) and resolves with its completion, whatever the status. */
  command(line: string): Promise<Reply> {
    const tag = this.nextTag();
    return this.start(tag, () => this.socket.write(`${tag} ${line}\r\n`));
  }

  /** Like `command`, but a NO or BAD completion rejects. */
  async ok(line: string): Promise<Reply> {
    const r = await this.command(line);
    if (r.status !== 'OK') throw new ImapError(`${line.split(' ')[0]}: ${r.status} ${r.text}`, r);
    return r;
  }

  async login(user: string, password: string): Promise<Reply> {
    return this.ok(`LOGIN ${quote(user)} ${quote(password)}`);
  }

  /**
   * APPEND (RFC 9051 §6.3.12) with the message as a literal: non-synchronizing (RFC 7888 LITERAL+)
   * when the server announces it, otherwise synchronizing (wait for `+` before the octets).
   */
  append(mailbox: string, message: Buffer, flags: string[], internalDate: string): Promise<Reply> {
    const tag = this.nextTag();
    const head = `${tag} APPEND ${quote(mailbox)} (${flags.join(' ')}) ${quote(internalDate)}`;
    if (this.capabilities.has('LITERAL+')) {
      return this.start(tag, () => {
        this.socket.write(`${head} {${message.length}+}\r\n`);
        this.socket.write(message);
        this.socket.write(CRLF);
      });
    }
    return this.start(
      tag,
      () => this.socket.write(`${head} {${message.length}}\r\n`),
      () => {
        this.socket.write(message);
        this.socket.write(CRLF);
      },
    );
  }

  /**
   * Starts IDLE (RFC 2177) and resolves when the server's `+` arrives; the returned promise of
   * `done` resolves with the completion after `DONE`.
   */
  async idle(): Promise<{ done(): Promise<Reply> }> {
    const tag = this.nextTag();
    let idling!: () => void;
    const started = new Promise<void>((r) => (idling = r));
    const completion = this.start(tag, () => this.socket.write(`${tag} IDLE\r\n`), () => idling());
    // A NO/BAD instead of `+` settles the completion first.
    await Promise.race([started, completion.then((r) => Promise.reject(new ImapError(`IDLE: ${r.status} ${r.text}`, r)))]);
    return {
      done: () => {
        this.socket.write('DONE\r\n');
        return completion;
      },
    };
  }

  /** LOGOUT, then close; never throws (the load only wants the connection gone). */
  async logout(): Promise<void> {
    try {
      if (!this.closedError) await this.command('LOGOUT');
    } catch {
      /* already closed */
    }
    this.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** An IMAP quoted string (RFC 9051 §4.3); the bench only sends ASCII without CR/LF. */
export function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
