/**
 * Signing of hook calls, MaiRust → plugin (SPEC §6 "Signing"; SPEC §7 `protocol = "http"`).
 *
 * The scheme is the one of event webhooks (src/webhooks/signature.ts, whose primitives are reused
 * here) with the plugin id in the signed string and in its own header:
 *
 *   X-MaiRust-Plugin-Id:  <plugin id>               (reverse-DNS, e.g. com.example.spam-tagger)
 *   X-MaiRust-Timestamp:  <Unix time in seconds>
 *   X-MaiRust-Signature:  sha256=<hex>
 *
 *   hex = HMAC-SHA256(secret, timestamp + "\n" + plugin_id + "\n" + hex(SHA-256(raw body)))
 *
 * Rotation (SPEC §6 "two may be active during rotation"): while a plugin has two active secrets,
 * every call carries one signature per secret, newest first and comma-separated
 * (`sha256=<new>,sha256=<old>`), so a plugin that still knows only the old secret and one already
 * switched to the new one both accept the call; a receiver accepts if any value matches any of its
 * secrets (verification below and in the SDK, sdk/src/verify.ts). Outside a rotation the header is
 * exactly one `sha256=<hex>`.
 */
import { SIGNATURE_HEADER, SIGNATURE_TOLERANCE_SECONDS, TIMESTAMP_HEADER, signWebhook, verifyWebhookSignature } from '../webhooks/signature.js';
import type { VerifyResult } from '../webhooks/signature.js';

export { SIGNATURE_HEADER, SIGNATURE_TOLERANCE_SECONDS, TIMESTAMP_HEADER };
export type { VerifyFailure, VerifyResult } from '../webhooks/signature.js';

export const PLUGIN_ID_HEADER = 'X-MaiRust-Plugin-Id';

/** SPEC §6: one secret, or two while rotating; more would only widen what a leaked secret opens. */
export const MAX_ACTIVE_SECRETS = 2;

export interface HookSignInput {
  /** The plugin's active secrets, newest first (one, or two during a rotation). */
  secrets: readonly (string | Buffer)[];
  pluginId: string;
  /** The exact bytes sent as the request body. */
  body: string | Buffer;
  /** Unix time in seconds; default now. */
  timestamp?: number;
}

/**
 * The three headers of one signed hook call, ready to be merged into a request (a type alias, not
 * an interface, so it is assignable to `Record<string, string>` / fetch's HeadersInit).
 */
export type HookCallHeaders = {
  'X-MaiRust-Plugin-Id': string;
  'X-MaiRust-Timestamp': string;
  'X-MaiRust-Signature': string;
};

/** Signs one hook call with every active secret (see the rotation note above). */
export function signHookCall(input: HookSignInput): HookCallHeaders {
  const { secrets, pluginId, body } = input;
  if (secrets.length === 0 || secrets.length > MAX_ACTIVE_SECRETS) {
    throw new RangeError(`a plugin has 1 to ${MAX_ACTIVE_SECRETS} active secrets (got ${secrets.length})`);
  }
  // One timestamp for all signatures: the receiver checks a single X-MaiRust-Timestamp.
  const timestamp = input.timestamp ?? Math.floor(Date.now() / 1000);
  const signed = secrets.map((secret) => signWebhook({ secret, id: pluginId, body, timestamp }));
  return {
    [PLUGIN_ID_HEADER]: pluginId,
    [TIMESTAMP_HEADER]: signed[0].timestamp,
    [SIGNATURE_HEADER]: signed.map((s) => s.signature).join(','),
  } as HookCallHeaders;
}

export interface HookVerifyInput {
  /** Every secret the receiver accepts (one, or two during a rotation). */
  secrets: readonly (string | Buffer)[];
  /** The id the receiver expects to be called as; a call signed for another plugin id fails. */
  pluginId: string;
  /** Request headers as received (any case; node:http lower-cases them, fetch Headers too). */
  headers: Headers | Record<string, string | string[] | undefined>;
  /** The raw body bytes, before any JSON parsing. */
  body: string | Buffer;
  /** Unix time in seconds; default now. */
  now?: number;
  /** Default 300 (SPEC §6: ±5 min). */
  toleranceSeconds?: number;
}

function header(headers: HookVerifyInput['headers'], name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (k.toLowerCase() !== wanted || v === undefined) continue;
    // A repeated header arrives as an array from node:http; its values are joined like a list header.
    return Array.isArray(v) ? v.join(',') : v;
  }
  return undefined;
}

/**
 * Verifies a signed hook call (used by MaiRust's own tests and tools; plugins use the SDK's
 * `verifySignature`, which implements the same rules without depending on this code base).
 * The plugin id header must equal `pluginId` — checked after the HMAC, which covers the id as
 * well, so a call signed for another plugin fails either way.
 */
export function verifyHookCall(input: HookVerifyInput): VerifyResult {
  if (input.secrets.length > MAX_ACTIVE_SECRETS) {
    throw new RangeError(`at most ${MAX_ACTIVE_SECRETS} secrets are accepted at once (got ${input.secrets.length})`);
  }
  const id = header(input.headers, PLUGIN_ID_HEADER);
  const result = verifyWebhookSignature({
    secrets: input.secrets,
    // The expected id is what is verified: the HMAC binds the signature to it.
    id: id === undefined ? undefined : input.pluginId,
    timestamp: header(input.headers, TIMESTAMP_HEADER),
    signature: header(input.headers, SIGNATURE_HEADER),
    body: input.body,
    now: input.now,
    toleranceSeconds: input.toleranceSeconds,
  });
  if (result.ok && id !== input.pluginId) return { ok: false, reason: 'mismatch' };
  return result;
}
