/**
 * The accept loop every mail listener shares (SMTP, IMAP, POP3): one TCP server, the per-client
 * connection limit, the implicit-TLS handshake with the current (reloadable) certificate, and a
 * graceful close that ends idle sessions at once and busy ones after the drain time.
 *
 * What differs per protocol — the session class, the refusal line (`421 4.7.0`, `* BYE`,
 * `-ERR [SYS/TEMP]`), what "idle" means and how a session is told to stop — comes in through
 * `ListenerCoreOptions`.
 */
import net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { ConnectionLimiter } from './connection-limiter.js';
import { acceptTls } from './tls-handshake.js';
import { createSecureContext, type TlsSettings } from './tls.js';

/** While draining, how often sessions are looked at for having become idle (after RSET, NOOP…). */
const DRAIN_POLL_MS = 100;

export type RefusalReason = 'too-many-connections' | 'shutting-down';

export interface ListenerCoreOptions<S> {
  /** For log lines: `SMTP`, `IMAP`, `POP3`. */
  protocol: string;
  host: string;
  /** 0 = any free port (tests). */
  port: number;
  /** TLS from the first byte (RFC 8314 §3.3); otherwise the protocol offers STARTTLS/STLS. */
  implicitTls: boolean;
  tls: TlsSettings;
  handshakeTimeoutMs: number;
  limiter: ConnectionLimiter;
  log: Logger;
  /** Writes the protocol's final refusal and closes the socket (no session exists). */
  refuse(socket: net.Socket, reason: RefusalReason): void;
  /**
   * Builds and starts a session on an accepted (and, for implicit TLS, handshaken) socket.
   * `secureContext` is the certificate for a later STARTTLS (null when the socket is already
   * encrypted). The session must call `closed` exactly once, when its socket has closed.
   */
  open(socket: net.Socket, ctx: { secure: boolean; secureContext: () => tls.SecureContext | null; draining: () => boolean; closed: () => void }): S;
  /** Sessions with no command or transfer in progress are ended at once when draining. */
  isIdle(session: S): boolean;
  /** Tells a session the server is going away (its final reply, then close). */
  shutdown(session: S): void;
  /** How long a shut-down session may take to close after its final reply. */
  lingerMs: number;
}

export interface ListenerCore {
  /** Starts accepting; resolves with the bound port. */
  listen(): Promise<{ port: number }>;
  /** Stops accepting, ends idle sessions, waits up to `drainMs` for busy ones, then ends them too. */
  close(drainMs: number): Promise<void>;
  /** New connections (and STARTTLS) use this certificate from now on; open ones keep theirs. */
  reloadTls(tls: TlsSettings): void;
  readonly openSessions: number;
}

export function createListenerCore<S>(opts: ListenerCoreOptions<S>): ListenerCore {
  const { log } = opts;
  const sessions = new Set<S>();
  let secureContext = createSecureContext(opts.tls);
  let draining = false;
  let closing: Promise<void> | null = null;
  const emptied: (() => void)[] = [];
  const sessionsClosed = () => (sessions.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => emptied.push(resolve)));
  /** Sockets still in the implicit-TLS handshake: not yet sessions. */
  const handshaking = new Set<net.Socket>();

  const start = (socket: net.Socket, release: (() => void) | null, secure: boolean) => {
    if (!release) {
      log.info({ remote_addr: socket.remoteAddress }, 'connection refused: too many connections from this client');
      return opts.refuse(socket, 'too-many-connections');
    }
    if (draining) {
      release();
      return opts.refuse(socket, 'shutting-down');
    }
    let done = false;
    // `closed` may run while `open` is still building the session (a socket that died at once).
    let session: S | undefined;
    session = opts.open(socket, {
      secure,
      secureContext: () => (secure ? null : secureContext),
      draining: () => draining,
      closed: () => {
        if (done) return;
        done = true;
        if (session !== undefined) sessions.delete(session);
        release();
        if (sessions.size === 0) emptied.splice(0).forEach((resolve) => resolve());
      },
    });
    if (!done) sessions.add(session);
  };

  const server = net.createServer((raw) => {
    // Until a session owns the socket, nobody else listens for its errors.
    raw.on('error', (err) => log.debug({ err: { message: err.message } }, 'socket error before the session started'));
    // Replies are small and answer a whole command group at once: send them without delay.
    raw.setNoDelay(true);
    const release = opts.limiter.acquire(raw.remoteAddress ?? '');
    // With implicit TLS even a refusal goes through TLS (the client could not read it otherwise).
    if (!opts.implicitTls) return start(raw, release, false);
    handshaking.add(raw);
    acceptTls(raw, secureContext, opts.handshakeTimeoutMs).then(
      (socket) => {
        handshaking.delete(raw);
        start(socket, release, true);
      },
      (err: Error) => {
        handshaking.delete(raw);
        release?.();
        log.info({ remote_addr: raw.remoteAddress, err: { message: err.message } }, 'TLS handshake failed');
      },
    );
  });

  const drain = async (drainMs: number) => {
    draining = true;
    const stopped = new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    for (const raw of handshaking) raw.destroy();
    const endIdle = () => [...sessions].forEach((s) => opts.isIdle(s) && opts.shutdown(s));
    endIdle();
    const poll = setInterval(endIdle, DRAIN_POLL_MS);
    await within(sessionsClosed(), drainMs);
    clearInterval(poll);
    [...sessions].forEach((s) => opts.shutdown(s));
    // Every socket is ended now and destroyed within the linger time.
    await stopped;
    await within(sessionsClosed(), opts.lingerMs + 500);
    log.info('listener closed');
  };

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          server.off('error', reject);
          server.on('error', (err) => log.error({ err }, 'listener error'));
          const { port } = server.address() as net.AddressInfo;
          log.info({ host: opts.host, port, implicit_tls: opts.implicitTls }, `${opts.protocol} listener started`);
          resolve({ port });
        });
      });
    },
    close(drainMs: number) {
      closing ??= drain(Math.max(0, drainMs));
      return closing;
    },
    reloadTls(next: TlsSettings) {
      secureContext = createSecureContext(next);
      log.info('TLS certificate reloaded');
    },
    get openSessions() {
      return sessions.size;
    },
  };
}

/** Waits for `promise`, but no longer than `ms`. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Writes one final line and closes; the socket is destroyed if the client does not close in time. */
export function writeLineAndClose(socket: net.Socket, line: string, lingerMs: number): void {
  if (socket.destroyed) return;
  socket.end(`${line}\r\n`);
  setTimeout(() => socket.destroy(), lingerMs).unref();
}
