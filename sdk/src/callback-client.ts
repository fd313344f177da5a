/**
 * The plugin's side of the callback API (SPEC §7 "Plugin tokens"): a plugin answers a
 * `post_receive` call later with `POST /internal/plugins/callback/:message_id` and reads a message
 * with `GET /internal/plugins/messages/:id`, authenticated by its `plt_…` token. What it may write
 * and read is limited by its permissions; MaiRust answers 403 to an ungranted write.
 * Uses the global fetch of Node ≥ 20; every request has a timeout.
 */
import type { HookResponse, PluginMessage } from './types.js';

export interface CallbackClientOptions {
  /** MaiRust's base URL, e.g. `https://mail.example.com` (the origin of the payload's callback_url). */
  baseUrl: string;
  /** The plugin token, `plt_…`. */
  token: string;
  /** Per-request timeout; default 10 000 ms. */
  timeoutMs?: number;
  /** Replaces the global fetch (tests, proxies). */
  fetch?: typeof fetch;
}

export type PluginApiErrorKind = 'http' | 'timeout' | 'network';

/** A request that did not succeed: a non-2xx status (`http`), a timeout, or no connection. */
export class PluginApiError extends Error {
  constructor(
    message: string,
    readonly kind: PluginApiErrorKind,
    /** HTTP status for `http`, else 0. */
    readonly status: number = 0,
    /** The response body for `http` (parsed JSON when it was JSON, else the text). */
    readonly body: unknown = undefined,
  ) {
    super(message);
    this.name = 'PluginApiError';
  }
}

export interface CallbackClient {
  /** Sends the plugin's answer for a message; resolves with MaiRust's JSON reply (if any). */
  callback(messageId: string, response: HookResponse): Promise<unknown>;
  /** Reads one message as far as the plugin's permissions allow. */
  getMessage(messageId: string): Promise<PluginMessage>;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/** The path under MaiRust's API base that a payload's `callback_url` ends with. */
const CALLBACK_PATH = /\/internal\/plugins\/callback\/[^/]+\/?$/;

/**
 * The `baseUrl` for `createCallbackClient`, taken from a payload's `callback_url`: everything
 * before `/internal/plugins/callback/<message id>` (e.g. `https://mail.example.com/api/v1`).
 * MaiRust serves the callback API under its API prefix, so the origin alone is not enough.
 * Throws a TypeError for a URL of another shape.
 */
export function baseUrlFromCallbackUrl(callbackUrl: string): string {
  let url: URL;
  try {
    url = new URL(callbackUrl);
  } catch {
    throw new TypeError(`callback_url is not a URL: ${callbackUrl}`);
  }
  if (!CALLBACK_PATH.test(url.pathname)) throw new TypeError(`callback_url does not end in /internal/plugins/callback/<id>: ${callbackUrl}`);
  return url.origin + url.pathname.replace(CALLBACK_PATH, '');
}
const TOKEN = /^plt_[\x21-\x7e]+$/;

function parseBody(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function createCallbackClient(options: CallbackClientOptions): CallbackClient {
  let base: URL;
  try {
    base = new URL(options.baseUrl);
  } catch {
    throw new TypeError(`baseUrl is not a URL: ${options.baseUrl}`);
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new TypeError('baseUrl must be an http(s) URL');
  // A visible character string only: anything else could split or forge the Authorization header.
  if (!TOKEN.test(options.token)) throw new TypeError('token must be a plugin token (plt_…)');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError('timeoutMs must be a positive number');
  const doFetch = options.fetch ?? globalThis.fetch;
  const prefix = base.pathname.replace(/\/+$/, '');

  async function request(method: 'GET' | 'POST', path: string, payload?: unknown): Promise<unknown> {
    const url = new URL(prefix + path, base);
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await doFetch(url, {
        method,
        headers,
        body: payload === undefined ? undefined : JSON.stringify(payload),
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      const e = err as Error;
      if (e.name === 'TimeoutError' || e.name === 'AbortError') {
        throw new PluginApiError(`${method} ${url.pathname} timed out after ${timeoutMs} ms`, 'timeout');
      }
      throw new PluginApiError(`${method} ${url.pathname} failed: ${e.message}`, 'network');
    }
    const body = parseBody(text);
    if (!res.ok) throw new PluginApiError(`${method} ${url.pathname} answered ${res.status}`, 'http', res.status, body);
    return body;
  }

  const messagePath = (id: string): string => {
    if (typeof id !== 'string' || id.length === 0) throw new TypeError('messageId must be a non-empty string');
    return encodeURIComponent(id);
  };

  return {
    callback: async (messageId, response) => request('POST', `/internal/plugins/callback/${messagePath(messageId)}`, response),
    getMessage: async (messageId) => (await request('GET', `/internal/plugins/messages/${messagePath(messageId)}`)) as PluginMessage,
  };
}
