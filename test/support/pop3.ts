/**
 * POP3 test harness: real POP3 listeners (STLS and implicit TLS) over the real services of the
 * current shape (mail-services.ts), the test certificate, and a raw wire client that shows the
 * exact lines the server sent.
 *
 * Faults are injected at the two ports the brief's failure rules are about, never by mocking a peer:
 * - `faults.blobs`: the blob store the POP3 sessions read through is the real one, wrapped so a
 *   test can make it unavailable (`down`) or fail after the first chunk of a message (`mid-stream`);
 * - `faults.deleteFails`: the mailbox-state service's deleteMessages throws (the database failing
 *   in the UPDATE state).
 */
import net from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import tls from 'node:tls';
import { MailboxStateService } from '../../src/core/mailbox-state/index.js';
import type { Scope } from '../../src/core/scope.js';
import type { MailAccessServices } from '../../src/protocols/imap/services.js';
import { ConnectionLimiter } from '../../src/protocols/net/connection-limiter.js';
import { createPop3Listener, type Pop3Listener } from '../../src/protocols/pop3/listener.js';
import { MaildropLocks } from '../../src/protocols/pop3/maildrop-locks.js';
import type { Pop3Limits } from '../../src/protocols/pop3/session-context.js';
import type { TlsSettings } from '../../src/protocols/net/tls.js';
import type { LockoutOptions } from '../../src/security/lockout.js';
import { BlobStoreUnavailableError, type BlobStore } from '../../src/store/blob/blob-store.js';
import { mailServicesFixture, type MailServicesFixture } from './mail-services.js';
import { TEST_HOSTNAME, testCertificate } from './smtp-fixture.js';

export const DEFAULT_TEST_LIMITS: Pop3Limits = { maxLineBytes: 1024, idleTimeoutMs: 60_000, maxBadCommands: 10 };

export interface Faults {
  blobs: 'ok' | 'down' | 'mid-stream';
  deleteFails: boolean;
}

export interface ListenerOptions {
  implicitTls?: boolean;
  limits?: Partial<Pop3Limits>;
  connectionLimiter?: ConnectionLimiter;
  maxConnectionsPerIp?: number;
  locks?: MaildropLocks;
}

export interface Pop3Harness {
  fx: MailServicesFixture;
  services: MailAccessServices;
  faults: Faults;
  tls: TlsSettings;
  /** The STLS listener (`pop3`) and the implicit-TLS one (`pop3s`), sharing limiter and locks. */
  port: number;
  tlsPort: number;
  listeners: Pop3Listener[];
  /** One more listener over the same services (limit tests), closed with the harness. */
  listen(opts?: ListenerOptions): Promise<{ port: number; listener: Pop3Listener }>;
  close(): Promise<void>;
}

/** A BlobStore that reads through to the real one unless the test switched on a fault. */
function faultyBlobs(real: BlobStore, faults: Faults): BlobStore {
  return new Proxy(real, {
    get(target, prop) {
      if (prop !== 'get') {
        const value = Reflect.get(target, prop);
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (key: string): Promise<Readable> => {
        if (faults.blobs === 'down') throw new BlobStoreUnavailableError('test: blob store switched off');
        const stream = await target.get(key);
        if (faults.blobs !== 'mid-stream') return stream;
        const out = new PassThrough();
        stream.once('data', (chunk: Buffer) => {
          stream.destroy();
          out.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
          setImmediate(() => out.destroy(new BlobStoreUnavailableError('test: connection to the blob store lost')));
        });
        stream.once('error', (err) => out.destroy(err));
        return out;
      };
    },
  });
}

class FaultyState extends MailboxStateService {
  constructor(deps: ConstructorParameters<typeof MailboxStateService>[0], private readonly faults: Faults) {
    super(deps);
  }

  override async deleteMessages(scope: Scope, folderId: string, uids: number[]): Promise<number[]> {
    if (this.faults.deleteFails) throw new Error('test: database unavailable');
    return super.deleteMessages(scope, folderId, uids);
  }
}

export async function startPop3Harness(opts: { lockout?: Partial<LockoutOptions>; limits?: Partial<Pop3Limits> } = {}): Promise<Pop3Harness> {
  const fx = await mailServicesFixture({ lockout: opts.lockout });
  const faults: Faults = { blobs: 'ok', deleteFails: false };
  const state = new FaultyState({ db: fx.test.db, blobs: faultyBlobs(fx.blobs, faults), bus: fx.bus, nodeId: 'test-node', logger: fx.logger }, faults);
  const services: MailAccessServices = { ...fx.services, state };
  const cert = testCertificate();
  const tlsSettings: TlsSettings = { key: cert.key, cert: cert.cert, minVersion: 'TLSv1.2' };
  const all: Pop3Listener[] = [];

  const listen = async (o: ListenerOptions = {}) => {
    const listener = createPop3Listener({
      implicitTls: o.implicitTls ?? false,
      host: '127.0.0.1',
      port: 0,
      hostname: TEST_HOSTNAME,
      services,
      tls: tlsSettings,
      limits: { ...DEFAULT_TEST_LIMITS, ...opts.limits, ...o.limits },
      logger: fx.logger,
      connectionLimiter: o.connectionLimiter,
      maxConnectionsPerIp: o.maxConnectionsPerIp,
      locks: o.locks,
    });
    const { port } = await listener.listen();
    all.push(listener);
    return { port, listener };
  };

  const limiter = new ConnectionLimiter(20);
  const locks = new MaildropLocks();
  const plain = await listen({ connectionLimiter: limiter, locks });
  const secure = await listen({ implicitTls: true, connectionLimiter: limiter, locks });
  return {
    fx,
    services,
    faults,
    tls: tlsSettings,
    port: plain.port,
    tlsPort: secure.port,
    listeners: [plain.listener, secure.listener],
    listen,
    async close() {
      await Promise.all(all.map((l) => l.close(0).catch(() => {})));
      await fx.close();
    },
  };
}

// ── raw wire client ───────────────────────────────────────────────────────────────────────────────

const MAX_BUFFER = 64 * 1024 * 1024;

/** A raw POP3 client: sends bytes as given, returns lines exactly as the server wrote them. */
export class Pop3Wire {
  private buffer = '';
  private waiting: (() => void) | null = null;
  private ended = false;
  private endedPromise!: Promise<void>;

  private constructor(private socket: net.Socket) {
    this.attach(socket);
  }

  private attach(socket: net.Socket) {
    this.endedPromise = new Promise((resolve) => {
      socket.on('data', (d: Buffer) => {
        // latin1 keeps every byte as one character, so message bytes can be compared exactly.
        this.buffer += d.toString('latin1');
        if (this.buffer.length > MAX_BUFFER) socket.destroy(new Error('test client: buffer overflow'));
        this.waiting?.();
      });
      const finish = () => {
        this.ended = true;
        this.waiting?.();
        resolve();
      };
      socket.once('close', finish);
      socket.once('end', finish);
      socket.on('error', () => {});
    });
  }

  /** Connects in clear (from `localAddress` if given), or with implicit TLS when `tls` is given. */
  static connect(port: number, opts: { localAddress?: string; tls?: tls.ConnectionOptions } = {}): Promise<Pop3Wire> {
    return new Promise((resolve, reject) => {
      const raw = net.connect({ host: '127.0.0.1', port, localAddress: opts.localAddress }, () => {
        if (!opts.tls) resolve(new Pop3Wire(raw));
      });
      raw.once('error', reject);
      if (!opts.tls) return;
      const socket = tls.connect({ socket: raw, rejectUnauthorized: false, ...opts.tls }, () => resolve(new Pop3Wire(socket)));
      socket.once('error', reject);
    });
  }

  get tlsSocket(): tls.TLSSocket | null {
    return this.socket instanceof tls.TLSSocket ? this.socket : null;
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** The next line without CRLF; rejects when the connection ends first or after `timeoutMs`. */
  async line(timeoutMs = 10_000): Promise<string> {
    return this.waitFor(() => {
      const end = this.buffer.indexOf('\r\n');
      if (end < 0) return null;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      return line;
    }, timeoutMs);
  }

  /** The body of a multi-line response up to "." (RFC 1939 §3), raw (still byte-stuffed). */
  async rawBody(timeoutMs = 10_000): Promise<string> {
    return this.waitFor(() => {
      if (this.buffer.startsWith('.\r\n')) {
        this.buffer = this.buffer.slice(3);
        return '';
      }
      const end = this.buffer.indexOf('\r\n.\r\n');
      if (end < 0) return null;
      const body = this.buffer.slice(0, end + 2);
      this.buffer = this.buffer.slice(end + 5);
      return body;
    }, timeoutMs);
  }

  /** The lines of a multi-line body, un-stuffed. */
  async lines(timeoutMs?: number): Promise<string[]> {
    const body = await this.rawBody(timeoutMs);
    if (body === '') return [];
    return body
      .slice(0, -2)
      .split('\r\n')
      .map((l) => (l.startsWith('.') ? l.slice(1) : l));
  }

  async command(line: string, timeoutMs?: number): Promise<string> {
    this.send(line);
    return this.line(timeoutMs);
  }

  /** A command with a multi-line answer: the status line, and the lines when it is +OK. */
  async multi(line: string, timeoutMs?: number): Promise<{ status: string; lines: string[] }> {
    const status = await this.command(line, timeoutMs);
    return { status, lines: status.startsWith('+OK') ? await this.lines(timeoutMs) : [] };
  }

  /** STLS and the TLS handshake (RFC 2595 §4). */
  async stls(options: tls.ConnectionOptions = {}): Promise<string> {
    const status = await this.command('STLS');
    if (!status.startsWith('+OK')) return status;
    await this.upgrade(options);
    return status;
  }

  /** Starts TLS on the connection now (after the server's +OK to STLS). */
  async upgrade(options: tls.ConnectionOptions = {}): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('end');
    await new Promise<void>((resolve, reject) => {
      const secure = tls.connect({ socket: plain, rejectUnauthorized: false, ...options }, () => resolve());
      secure.once('error', reject);
      this.socket = secure;
      this.attach(secure);
    });
  }

  /** Everything still buffered (tests that check nothing else was sent). */
  pending(): string {
    return this.buffer;
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

  private async waitFor<T>(take: () => T | null, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = take();
      if (value !== null) return value;
      if (this.ended) throw new Error(`connection closed; unread: ${JSON.stringify(this.buffer.slice(0, 500))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`nothing complete within ${timeoutMs} ms; unread: ${JSON.stringify(this.buffer.slice(0, 500))}`);
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
}

/** base64 of the SASL PLAIN message (RFC 4616): authzid NUL authcid NUL password. */
export function plainCredentials(user: string, password: string, authzid = ''): string {
  return Buffer.from(`${authzid}\0${user}\0${password}`, 'utf8').toString('base64');
}

/** A session on the STLS port from `localAddress`, through STLS, greeting read. */
export async function tlsSession(port: number, localAddress = '127.0.0.1'): Promise<Pop3Wire> {
  const c = await Pop3Wire.connect(port, { localAddress });
  await c.line();
  const status = await c.stls();
  if (status !== '+OK Begin TLS negotiation') throw new Error(`STLS refused: ${status}`);
  return c;
}

/** A logged-in session (USER/PASS under STLS); throws with the server's line when the login fails. */
export async function loggedIn(port: number, email: string, password: string, localAddress?: string): Promise<{ c: Pop3Wire; status: string }> {
  const c = await tlsSession(port, localAddress);
  await c.command(`USER ${email}`);
  const status = await c.command(`PASS ${password}`);
  if (!status.startsWith('+OK')) {
    c.destroy();
    throw new Error(`login failed: ${status}`);
  }
  return { c, status };
}
