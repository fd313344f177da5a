/**
 * The server side of an implicit-TLS handshake (RFC 8314 §3.3: port 465 speaks TLS from the first
 * byte). The listener owns the accept loop, so it wraps accepted sockets itself and hands only
 * finished handshakes to the SMTP engine; a client offering only TLS 1.1 or weaker suites fails here
 * (SPEC §2) and never reaches a session.
 */
import type net from 'node:net';
import tls from 'node:tls';

export class TlsHandshakeError extends Error {
  readonly code = 'TLS_HANDSHAKE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsHandshakeError';
  }
}

/** Resolves with the TLS socket once the handshake is done; rejects (and destroys the socket) otherwise. */
export function acceptTls(raw: net.Socket, context: tls.SecureContext, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: context, requestCert: false });
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      reject(err instanceof TlsHandshakeError ? err : new TlsHandshakeError(`TLS handshake failed: ${err.message}`, { cause: err }));
    };
    const onClose = () => fail(new TlsHandshakeError('connection closed during the TLS handshake'));
    // A client that connects and never completes the handshake must not hold the socket forever.
    const timer = setTimeout(() => fail(new TlsHandshakeError(`TLS handshake not completed within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    socket.once('error', fail);
    socket.once('close', onClose);
    socket.once('secure', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('error', fail);
      socket.off('close', onClose);
      resolve(socket);
    });
  });
}
