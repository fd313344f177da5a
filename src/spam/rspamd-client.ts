/**
 * Client for rspamd's normal worker: `POST /checkv2` with the message streamed as the body and the
 * SMTP context in request headers (https://rspamd.com/doc/developers/protocol.html):
 *
 *   IP        the client's address (rspamd's host and network checks, SPF)
 *   Helo      the HELO/EHLO argument
 *   Hostname  the client's verified reverse-DNS name, when the MTA has one (else rspamd scores
 *             RDNS_NONE / HFILTER_HOSTNAME_UNKNOWN, as for a host without one)
 *   From      the envelope sender (`<>` for the null reverse-path, RFC 5321 §4.5.5)
 *   Rcpt      one header per envelope recipient
 *   User      the authenticated user (rspamd skips checks meant for strangers)
 *   Queue-Id  the message id, so rspamd's log line can be matched to ours
 *
 * Bounded: one deadline covers connect, upload and answer (`timeoutMs`); the answer is read up
 * to `maxResponseBytes`; at most MAX_SOCKETS checks are in flight per client (the rest wait for a
 * socket, inside their deadline). Every failure is an `RspamdError` with a reason, except a failure
 * to read the message itself, which is rethrown as it is: no other checker could read it either.
 */
import http from 'node:http';
import https from 'node:https';
import { RspamdError } from './errors.js';
import { parseRspamdResponse, type RspamdResult } from './rspamd-response.js';
import type { SpamCheckInput } from './spam-checker.js';

export interface RspamdClientOptions {
  /** Base URL of the normal worker, e.g. `http://127.0.0.1:11333`. */
  url: string;
  timeoutMs: number;
  maxResponseBytes: number;
}

/** Concurrent checks per client; rspamd's worker is asynchronous, so this is about our sockets. */
export const MAX_SOCKETS = 128;
/** rspamd accepts 1024 recipients by default (options.max_recipients); SMTP allows far fewer. */
export const MAX_RCPT_HEADERS = 1000;
/** Longest value put into one request header (an address is at most 254 octets, RFC 5321 §4.5.3.1). */
export const MAX_HEADER_VALUE = 512;
/** Bytes of a non-200 answer quoted in the error. */
const ERROR_SNIPPET = 200;

/**
 * A request header value from untrusted text (a HELO argument, an address): control characters
 * removed so no CR/LF reaches the request, bounded, and UTF-8 (SMTPUTF8 addresses, RFC 6531)
 * passed as its bytes — Node writes header strings as Latin-1.
 */
export function headerValue(text: string): string {
  const clean = text.replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, MAX_HEADER_VALUE);
  return Buffer.from(clean, 'utf8').toString('latin1');
}

export function rspamdHeaders(input: SpamCheckInput, size: number): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {
    'Content-Length': String(size),
    IP: headerValue(input.remoteAddress),
    From: input.mailFrom === null ? '<>' : headerValue(input.mailFrom),
  };
  const helo = headerValue(input.helo);
  if (helo) headers.Helo = helo;
  if (input.hostname) headers.Hostname = headerValue(input.hostname);
  const rcpts = input.recipients.slice(0, MAX_RCPT_HEADERS).map(headerValue).filter((r) => r.length > 0);
  if (rcpts.length > 0) headers.Rcpt = rcpts;
  if (input.authenticatedUser) headers.User = headerValue(input.authenticatedUser);
  if (input.queueId) headers['Queue-Id'] = headerValue(input.queueId);
  return headers;
}

export class RspamdClient {
  private readonly endpoint: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;

  constructor(private readonly opts: RspamdClientOptions) {
    const base = opts.url.endsWith('/') ? opts.url : `${opts.url}/`;
    this.endpoint = new URL('checkv2', base);
    const secure = this.endpoint.protocol === 'https:';
    if (!secure && this.endpoint.protocol !== 'http:') throw new Error(`rspamd URL must be http(s): ${opts.url}`);
    // No keep-alive: rspamd closes after each answer anyway, and a pooled socket the server has
    // closed would turn into a spurious failure.
    this.agent = secure ? new https.Agent({ keepAlive: false, maxSockets: MAX_SOCKETS }) : new http.Agent({ keepAlive: false, maxSockets: MAX_SOCKETS });
    this.request = secure ? https.request : http.request;
  }

  check(input: SpamCheckInput): Promise<RspamdResult> {
    const { timeoutMs, maxResponseBytes } = this.opts;
    return new Promise<RspamdResult>((resolve, reject) => {
      let settled = false;
      const body = input.source.open();
      const req = this.request(this.endpoint, { method: 'POST', agent: this.agent, headers: rspamdHeaders(input, input.source.size) });

      const finish = (err: Error | null, result?: RspamdResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        body.unpipe(req);
        body.destroy();
        if (err) {
          req.destroy();
          reject(err);
        } else {
          resolve(result as RspamdResult);
        }
      };
      const timer = setTimeout(() => finish(new RspamdError('timeout', `rspamd did not answer within ${timeoutMs} ms`)), timeoutMs);

      body.on('error', (err) => finish(err));
      req.on('error', (err) => finish(new RspamdError('unreachable', `rspamd at ${this.endpoint.origin} failed: ${err.message}`, { cause: err })));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let total = 0;
        const declared = Number(res.headers['content-length']);
        if (res.statusCode === 200 && Number.isFinite(declared) && declared > maxResponseBytes) {
          res.destroy();
          finish(new RspamdError('too_large', `rspamd answer of ${declared} bytes exceeds ${maxResponseBytes}`));
          return;
        }
        const limit = res.statusCode === 200 ? maxResponseBytes : ERROR_SNIPPET;
        res.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > limit) {
            if (res.statusCode === 200) {
              res.destroy();
              finish(new RspamdError('too_large', `rspamd answer exceeds ${maxResponseBytes} bytes`));
              return;
            }
            // A non-200 answer is only quoted: keep its first bytes and stop reading.
            chunks.push(chunk.subarray(0, Math.max(0, chunk.length - (total - limit))));
            res.destroy();
            finish(httpStatusError(res.statusCode, Buffer.concat(chunks)));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err) => finish(new RspamdError('unreachable', `rspamd answer broke off: ${err.message}`, { cause: err })));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) {
            finish(httpStatusError(res.statusCode, Buffer.concat(chunks)));
            return;
          }
          try {
            finish(null, parseRspamdResponse(text));
          } catch (err) {
            finish(err as Error);
          }
        });
      });
      body.pipe(req);
    });
  }
}

function httpStatusError(status: number | undefined, snippet: Buffer): RspamdError {
  const text = snippet.toString('utf8').replace(/[\x00-\x1f\x7f]+/g, ' ').trim().slice(0, ERROR_SNIPPET);
  return new RspamdError('http_status', `rspamd answered HTTP ${status ?? '?'}${text ? `: ${text}` : ''}`);
}
