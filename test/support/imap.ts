/**
 * The harness of the IMAP suites: real IMAP listeners (STARTTLS on `imap`, implicit TLS on
 * `imaps`, both on port 0 with the test certificate) over real services of the current shape
 * (mail-services.ts), a raw line client that shows the server's bytes exactly (`ImapWire`), and
 * an imapflow client for real-client checks.
 *
 * `ImapWire.command('a1 LOGIN …')` sends one command and collects every response up to the tagged
 * one. It is literal-aware both ways: a synchronizing literal `{n}\r\n` in the command is sent only
 * after the server's `+` (RFC 9051 §4.3), and a response with literals (`{n}\r\n` + n octets) is
 * returned as one string. `send(raw)` writes bytes as they are, for byte-exact tests.
 */
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import { ConnectionLimiter } from '../../src/protocols/net/connection-limiter.js';
import { loadCommandModules } from '../../src/protocols/imap/commands/index.js';
import { createImapListener, type ImapListener } from '../../src/protocols/imap/listener.js';
import { DEFAULT_IMAP_LIMITS } from '../../src/protocols/imap/session/limits.js';
import { UserSessionCounter } from '../../src/protocols/imap/session/user-sessions.js';
import type { ImapLimits } from '../../src/protocols/imap/session/types.js';
import type { LockoutOptions } from '../../src/security/lockout.js';
import { mailServicesFixture, type MailServicesFixture, type TestAccount } from './mail-services.js';
import { testCertificate } from './smtp-fixture.js';

/** Limits the suites start with: the production defaults (APPENDLIMIT 1 MiB unless overridden). */
export const TEST_IMAP_LIMITS: ImapLimits = { ...DEFAULT_IMAP_LIMITS, maxAppendBytes: 1024 * 1024 };

export interface ImapServerOptions {
  /** Reuse services (e.g. two servers over one database); default a fresh fixture owned by the server. */
  fixture?: MailServicesFixture;
  limits?: Partial<ImapLimits>;
  lockout?: Partial<LockoutOptions>;
  maxConnectionsPerIp?: number;
  maxConnectionsPerUser?: number;
}

export interface ImapTestServer {
  /** STARTTLS listener (`listeners.imap`). */
  imapPort: number;
  /** Implicit-TLS listener (`listeners.imaps`). */
  imapsPort: number;
  fixture: MailServicesFixture;
  listeners: { imap: ImapListener; imaps: ImapListener };
  limits: ImapLimits;
  /** A raw client; the greeting is read already (`wire.greeting`). Default: implicit TLS. */
  connect(opts?: { tls?: boolean; localAddress?: string }): Promise<ImapWire>;
  /** A raw client over implicit TLS (default) that has logged in as `account` with tag `l0`. */
  login(account: TestAccount, opts?: { tls?: boolean; localAddress?: string }): Promise<ImapWire>;
  /** A connected, logged-in imapflow client over implicit TLS (logout it or let close() do it). */
  imapflowClient(account: TestAccount, opts?: Partial<ImapFlowOptions>): Promise<ImapFlow>;
  /** Closes every client of the harness, the listeners, and the fixture if the server owns it. */
  close(): Promise<void>;
}

export async function startImapServer(opts: ImapServerOptions = {}): Promise<ImapTestServer> {
  const ownFixture = !opts.fixture;
  const fixture = opts.fixture ?? (await mailServicesFixture({ lockout: opts.lockout }));
  const limits: ImapLimits = { ...TEST_IMAP_LIMITS, ...opts.limits };
  const cert = testCertificate();
  const commands = await loadCommandModules();
  const connectionLimiter = new ConnectionLimiter(opts.maxConnectionsPerIp ?? 50);
  const userSessions = new UserSessionCounter(opts.maxConnectionsPerUser ?? 100);
  const make = (name: 'imap' | 'imaps') =>
    createImapListener({
      name,
      implicitTls: name === 'imaps',
      host: '127.0.0.1',
      port: 0,
      services: fixture.services,
      tls: { key: cert.key, cert: cert.cert, minVersion: 'TLSv1.2' },
      limits,
      commands,
      connectionLimiter,
      userSessions,
      logger: fixture.logger,
    });
  const listeners = { imap: make('imap'), imaps: make('imaps') };
  const imapPort = (await listeners.imap.listen()).port;
  const imapsPort = (await listeners.imaps.listen()).port;
  const wires = new Set<ImapWire>();
  const flows = new Set<ImapFlow>();

  const connect = async (o: { tls?: boolean; localAddress?: string } = {}) => {
    const useTls = o.tls ?? true;
    const wire = await ImapWire.connect(useTls ? imapsPort : imapPort, { tls: useTls, localAddress: o.localAddress });
    wires.add(wire);
    return wire;
  };

  return {
    imapPort,
    imapsPort,
    fixture,
    listeners,
    limits,
    connect,
    async login(account, o = {}) {
      const wire = await connect(o);
      if (o.tls === false) await wire.starttls();
      const r = await wire.command(`l0 LOGIN ${quote(account.email)} ${quote(account.password)}`);
      if (!r.tagged.startsWith('l0 OK')) throw new Error(`test login failed: ${r.tagged}`);
      return wire;
    },
    async imapflowClient(account, o = {}) {
      const client = new ImapFlow({
        host: '127.0.0.1',
        port: imapsPort,
        secure: true,
        auth: { user: account.email, pass: account.password },
        tls: { rejectUnauthorized: false },
        logger: false,
        ...o,
      });
      // imapflow emits 'error' on socket trouble; unhandled it would crash the test process.
      client.on('error', () => {});
      await client.connect();
      flows.add(client);
      return client;
    },
    async close() {
      for (const f of flows) await f.logout().catch(() => f.close());
      for (const w of wires) w.destroy();
      await Promise.all([listeners.imap.close(0), listeners.imaps.close(0)]);
      if (ownFixture) await fixture.close();
    },
  };
}

/** An IMAP quoted string (RFC 9051 §4.3) of a test value. */
export function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** base64 of the SASL PLAIN message (RFC 4616): authzid NUL authcid NUL password. */
export function saslPlain(user: string, password: string, authzid = ''): string {
  return Buffer.from(`${authzid}\0${user}\0${password}`, 'utf8').toString('base64');
}

export interface ImapReply {
  /** Untagged responses (`* …`), each with its literals inline, without the final CRLF. */
  untagged: string[];
  /** Continuation requests (`+ …`) the server sent during the command. */
  continuations: string[];
  /** The tagged completion line, e.g. `a1 OK LOGIN completed`. */
  tagged: string;
}

const MAX_BUFFER = 64 * 1024 * 1024;

/** A raw IMAP client that returns the server's responses exactly as written. */
export class ImapWire {
  /** The greeting line (`* OK [CAPABILITY …] …` or `* BYE …`). */
  greeting = '';
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: (() => void) | null = null;
  private ended = false;
  private endedPromise!: Promise<void>;
  private inflate: zlib.InflateRaw | null = null;
  private deflate: zlib.DeflateRaw | null = null;

  private constructor(private socket: net.Socket) {
    this.listen(socket);
  }

  /** Connects (in clear, or with implicit TLS) and reads the greeting. */
  static async connect(port: number, opts: { host?: string; tls?: boolean; localAddress?: string } = {}): Promise<ImapWire> {
    const host = opts.host ?? '127.0.0.1';
    let socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port, localAddress: opts.localAddress }, () => resolve(s));
      s.once('error', reject);
    });
    if (opts.tls) {
      const plain = socket;
      socket = await new Promise<net.Socket>((resolve, reject) => {
        const s = tls.connect({ socket: plain, rejectUnauthorized: false }, () => resolve(s));
        s.once('error', reject);
      });
    }
    const wire = new ImapWire(socket);
    wire.greeting = await wire.response();
    return wire;
  }

  get secure(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  /** The connection has been closed by either side. */
  get isClosed(): boolean {
    return this.ended;
  }

  private listen(socket: net.Socket): void {
    this.endedPromise = new Promise((resolve) => {
      socket.on('data', (d: Buffer) => (this.inflate ? this.inflate.write(d) : this.received(d)));
      let finished = false;
      const done = () => {
        this.ended = true;
        this.waiting?.();
        resolve();
      };
      const finish = () => {
        if (finished) return;
        finished = true;
        // Compressed bytes may still be in the inflater: the connection ends after them.
        const inflate = this.inflate;
        if (!inflate) return done();
        inflate.once('end', done);
        inflate.once('error', done);
        inflate.end();
      };
      socket.once('close', finish);
      socket.once('end', finish);
      socket.on('error', () => {});
    });
  }

  private received(d: Buffer): void {
    this.buffer = this.buffer.length === 0 ? d : Buffer.concat([this.buffer, d]);
    if (this.buffer.length > MAX_BUFFER) this.socket.destroy(new Error('test client: response buffer overflow'));
    this.waiting?.();
  }

  /** Writes bytes as they are (add CRLF yourself). Compressed when COMPRESS is active. */
  send(raw: string | Buffer): void {
    if (this.ended) throw new Error('test client: connection closed');
    if (this.deflate) {
      this.deflate.write(raw);
      this.deflate.flush(zlib.constants.Z_SYNC_FLUSH);
    } else {
      this.socket.write(raw);
    }
  }

  /**
   * Sends one command (CRLF added) and returns the responses up to the tagged one (the tag is the
   * first word). Each synchronizing literal `{n}\r\n` in `text` waits for the server's `+`; when the
   * server answers with the tagged response instead (e.g. `NO [TOOBIG]`), the rest is not sent.
   */
  async command(text: string | Buffer, timeoutMs = 10_000): Promise<ImapReply> {
    const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
    const tag = bytes.subarray(0, bytes.indexOf(0x20) < 0 ? bytes.length : bytes.indexOf(0x20)).toString('utf8');
    const reply: ImapReply = { untagged: [], continuations: [], tagged: '' };
    let rest = Buffer.concat([bytes, Buffer.from('\r\n')]);
    for (;;) {
      const sync = findSyncLiteral(rest);
      if (!sync) break;
      this.send(rest.subarray(0, sync.end));
      rest = rest.subarray(sync.end);
      for (;;) {
        const line = await this.response(timeoutMs);
        if (line.startsWith('+')) {
          reply.continuations.push(line);
          break;
        }
        if (isTagged(line, tag)) return { ...reply, tagged: line };
        reply.untagged.push(line);
      }
      // The literal's octets go as they are; announcements inside them are data, not literals.
      this.send(rest.subarray(0, sync.size));
      rest = rest.subarray(sync.size);
    }
    this.send(rest);
    return this.readUntilTagged(tag, timeoutMs, reply);
  }

  /** Reads responses until the tagged one of `tag`. */
  async readUntilTagged(tag: string, timeoutMs = 10_000, into?: ImapReply): Promise<ImapReply> {
    const reply = into ?? { untagged: [], continuations: [], tagged: '' };
    for (;;) {
      const line = await this.response(timeoutMs).catch((err: Error) => {
        throw new Error(`${err.message}; waiting for ${tag}; got ${JSON.stringify(reply)}`);
      });
      if (isTagged(line, tag)) return { ...reply, tagged: line };
      if (line.startsWith('+')) reply.continuations.push(line);
      else reply.untagged.push(line);
    }
  }

  /**
   * The next response: one line without its CRLF, with any literals it carries inline. Rejects when
   * the connection ends first or after `timeoutMs`.
   */
  async response(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const taken = this.take();
      if (taken !== null) return taken;
      if (this.ended) throw new Error(`connection closed; unread: ${JSON.stringify(this.buffer.toString('utf8'))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms; unread: ${JSON.stringify(this.buffer.toString('utf8'))}`);
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

  /** True when a complete response is buffered (nothing is consumed). */
  hasResponse(): boolean {
    return responseEnd(this.buffer) >= 0;
  }

  /** Bytes received and not read yet (e.g. to check that nothing more was sent). */
  get unread(): string {
    return this.buffer.toString('utf8');
  }

  private take(): string | null {
    const end = responseEnd(this.buffer);
    if (end < 0) return null;
    const text = this.buffer.subarray(0, end).toString('utf8');
    this.buffer = this.buffer.subarray(end + 2);
    return text;
  }

  /** STARTTLS (RFC 9051 §6.2.1) and the TLS handshake; the reply of the STARTTLS command. */
  async starttls(tag = 's1'): Promise<ImapReply> {
    const reply = await this.command(`${tag} STARTTLS`);
    if (reply.tagged.startsWith(`${tag} OK`)) await this.upgradeTls();
    return reply;
  }

  /** The TLS handshake on this connection (after a STARTTLS the test sent itself). */
  async upgradeTls(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('end');
    this.buffer = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const secure = tls.connect({ socket: plain, rejectUnauthorized: false }, () => resolve());
      secure.once('error', reject);
      this.socket = secure;
      this.listen(secure);
    });
  }

  /** COMPRESS DEFLATE (RFC 4978): from the tagged OK on, both directions are raw deflate. */
  async compress(tag = 'z1'): Promise<ImapReply> {
    const reply = await this.command(`${tag} COMPRESS DEFLATE`);
    if (!reply.tagged.startsWith(`${tag} OK`)) return reply;
    const leftover = this.buffer;
    this.buffer = Buffer.alloc(0);
    this.inflate = zlib.createInflateRaw();
    this.inflate.on('data', (d: Buffer) => this.received(d));
    this.inflate.on('error', (err) => this.socket.destroy(err));
    this.deflate = zlib.createDeflateRaw();
    this.deflate.on('data', (d: Buffer) => this.socket.write(d));
    if (leftover.length > 0) this.inflate.write(leftover);
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
    this.inflate?.destroy();
    this.deflate?.destroy();
    this.socket.destroy();
  }
}

function isTagged(line: string, tag: string): boolean {
  return line.startsWith(`${tag} `);
}

/**
 * Where the first complete response in `buf` ends (index of its final CRLF), or -1. A line ending
 * in a literal announcement `{n}` / `~{n}` continues after n octets (RFC 9051 §4.3, RFC 3516).
 */
function responseEnd(buf: Buffer): number {
  let from = 0;
  for (;;) {
    const cr = buf.indexOf('\r\n', from);
    if (cr < 0) return -1;
    const m = /\{(\d+)\}$/.exec(buf.subarray(Math.max(from, cr - 24), cr).toString('latin1'));
    if (!m) return cr;
    const next = cr + 2 + Number(m[1]);
    if (next > buf.length) return -1;
    from = next;
  }
}

/** The first synchronizing literal announcement `{n}\r\n` (not `{n+}`) in a command. */
function findSyncLiteral(bytes: Buffer): { end: number; size: number } | null {
  let from = 0;
  for (;;) {
    const cr = bytes.indexOf('\r\n', from);
    if (cr < 0 || cr + 2 >= bytes.length) return null;
    const m = /~?\{(\d+)(\+?)\}$/.exec(bytes.subarray(Math.max(from, cr - 24), cr).toString('latin1'));
    if (!m) {
      from = cr + 2;
      continue;
    }
    if (m[2] !== '+') return { end: cr + 2, size: Number(m[1]) };
    // A non-synchronizing literal: its octets follow at once; look after them.
    from = cr + 2 + Number(m[1]);
  }
}
