/**
 * The `http` plugin protocol (SPEC §7): one signed JSON POST to the plugin's endpoint, one JSON
 * reply in the response body.
 *
 * Signing (SPEC §6), with the primitives of src/webhooks/signature.ts:
 *   X-MaiRust-Plugin-Id:  <plugin id>
 *   X-MaiRust-Timestamp:  <Unix seconds>
 *   X-MaiRust-Signature:  sha256=<hex HMAC-SHA256(secret, timestamp "\n" plugin_id "\n" hex(sha256(body)))>
 * During a secret rotation both active secrets sign (src/hooks/signing.ts: two comma-separated values).
 *
 * Egress (SPEC §7 "SSRF protection checks resolved addresses, not names"): the endpoint's host is
 * resolved and every address checked before connecting (src/webhooks/egress.ts), and the socket
 * goes to the checked address (pinned: a second DNS answer cannot rebind the call inside the
 * network). Loopback/private/link-local targets only with `allowPrivate`. The admin's endpoint
 * allowlist is the caller's check, before this one.
 *
 * Outcomes: a 2xx answer with one JSON value → ok; any other status (redirects are never
 * followed), a body over 1 MiB, invalid JSON, a refused or unreachable endpoint → `error`; no
 * complete answer within `timeoutMs` (DNS, connect, TLS and body included) → `timeout`.
 */
import type { DnsResolver } from '../../dns/index.js';
import { bareHost, EgressRefusedError, pinnedPostOptions, resolveEgress, type ResolvedTarget } from '../../webhooks/egress.js';
import { signHookCall } from '../signing.js';
import { MAX_REPLY_BYTES, type ExecResult } from './types.js';

export const USER_AGENT = 'MaiRust-Hooks/1';

export interface HttpCall {
  /** `[entry] endpoint`: http: or https: URL. */
  endpoint: string;
  pluginId: string;
  /** The plugin's active signing secrets, newest first (two during a rotation). */
  secrets: string[];
  /** The JSON payload (serialized here; the signature covers exactly the bytes sent). */
  payload: unknown;
  timeoutMs: number;
  /** Loopback/private/link-local endpoints allowed (admin decision, per plugin). */
  allowPrivate: boolean;
  /** The application's resolver; only A/AAAA lookups are used. */
  resolver: Pick<DnsResolver, 'resolve4' | 'resolve6'>;
  /** Cancels the call (shutdown): reported as a timeout. */
  signal?: AbortSignal;
  /** Extra headers (e.g. X-MaiRust-Hook-Type); cannot replace the signing headers. */
  headers?: Readonly<Record<string, string>>;
}

class Stop extends Error {
  constructor(
    readonly kind: 'timeout' | 'error',
    message: string,
  ) {
    super(message);
  }
}

/** Races `p` against `signal` (resolveEgress itself takes no signal). */
function withSignal<T>(p: Promise<T>, signal: AbortSignal, onAbort: () => Error): Promise<T> {
  if (signal.aborted) return Promise.reject(onAbort());
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(onAbort());
    signal.addEventListener('abort', abort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Runs one HTTP call. Never throws: every failure is an ExecResult with ok: false. */
export async function callHttpPlugin(call: HttpCall): Promise<ExecResult> {
  const started = performance.now();
  const body = Buffer.from(JSON.stringify(call.payload ?? null), 'utf8');
  const counters = { bytesOut: 0, bytesIn: 0 };
  const timeout = AbortSignal.timeout(call.timeoutMs);
  const signal = call.signal ? AbortSignal.any([call.signal, timeout]) : timeout;
  const abortError = () =>
    timeout.aborted ? new Stop('timeout', `no answer within ${call.timeoutMs} ms`) : new Stop('timeout', 'the call was cancelled');
  try {
    const response = await exchange(call, body, signal, abortError, counters);
    return { ok: true, response, durationMs: Math.round(performance.now() - started), ...counters };
  } catch (err) {
    const stop =
      err instanceof Stop
        ? err
        : err instanceof EgressRefusedError
          ? new Stop('error', err.message)
          : new Stop('error', (err as Error).message);
    return { ok: false, kind: stop.kind, message: stop.message, durationMs: Math.round(performance.now() - started), ...counters };
  }
}

async function exchange(
  call: HttpCall,
  body: Buffer,
  signal: AbortSignal,
  abortError: () => Stop,
  counters: { bytesOut: number; bytesIn: number },
): Promise<unknown> {
  let u: URL;
  try {
    u = new URL(call.endpoint);
  } catch {
    throw new Stop('error', 'endpoint is not a valid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Stop('error', `endpoint scheme ${u.protocol} is not http: or https:`);
  const host = bareHost(u.hostname);
  const pinned: ResolvedTarget = await withSignal(resolveEgress(call.resolver as DnsResolver, host, call.allowPrivate, 'private endpoints are not allowed for this plugin'), signal, abortError);
  const signed = signHookCall({ secrets: call.secrets, pluginId: call.pluginId, body });

  // The socket goes to the checked address (no rebinding).
  const { mod, options } = pinnedPostOptions(u, host, pinned, signal);

  const text = await new Promise<string>((resolve, reject) => {
    const req = mod.request(
      {
        ...options,
        headers: {
          ...call.headers,
          'Content-Type': 'application/json',
          'Content-Length': String(body.length),
          Accept: 'application/json',
          'User-Agent': USER_AGENT,
          ...signed,
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        // Only the status matters for a failed answer: do not read a redirect's or error's body.
        if (status < 200 || status >= 300) {
          const redirect = status >= 300 && status < 400 ? '; redirects are not followed' : '';
          reject(new Stop('error', `endpoint answered HTTP ${status}${redirect}`));
          res.destroy();
          return;
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > MAX_REPLY_BYTES) {
          reject(new Stop('error', `reply exceeds ${MAX_REPLY_BYTES} bytes (Content-Length ${declared})`));
          res.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          counters.bytesIn += chunk.length;
          if (counters.bytesIn > MAX_REPLY_BYTES) {
            // Reject before destroying: destroy() emits 'aborted' synchronously.
            reject(new Stop('error', `reply exceeds ${MAX_REPLY_BYTES} bytes`));
            res.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err) => reject(signal.aborted ? abortError() : new Stop('error', `reply interrupted: ${err.message}`)));
        res.on('aborted', () => reject(signal.aborted ? abortError() : new Stop('error', 'reply interrupted')));
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      },
    );
    req.on('error', (err) => {
      if (signal.aborted) {
        reject(abortError());
        return;
      }
      const code = (err as NodeJS.ErrnoException).code;
      reject(new Stop('error', `connection to ${u.host} failed: ${code ?? err.message}`));
    });
    req.end(body, () => {
      counters.bytesOut = body.length;
    });
  });
  if (text.trim() === '') throw new Stop('error', 'empty reply body');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Stop('error', `reply is not one JSON value: ${(err as Error).message}`);
  }
}
