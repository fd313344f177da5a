/**
 * Signing of event webhook deliveries (SPEC §11 "signed like §6") — pure functions, also the
 * reference for receivers (and for plugin authors: hook calls use the same scheme, SPEC §6).
 *
 * Every delivery carries three headers:
 *
 *   X-MaiRust-Webhook-Id:  <webhook id>              (hook calls: X-MaiRust-Plugin-Id: <plugin id>)
 *   X-MaiRust-Timestamp:   <Unix time in seconds>    (decimal, when the request was signed)
 *   X-MaiRust-Signature:   sha256=<hex>
 *
 * where
 *
 *   hex = lowercase hex of HMAC-SHA256(key = secret, message =
 *           timestamp + "\n" + webhook_id + "\n" + hex(SHA-256(raw request body)))
 *
 * `secret` is the whole `whsec_…` string as shown once at creation (UTF-8 bytes, prefix included).
 * The id in the signed string binds a signature to one subscription, so a request captured from
 * one endpoint cannot be replayed to another subscription that happens to share the URL; the
 * timestamp bounds replays in time: receivers reject a timestamp more than 5 minutes away from
 * their clock (SPEC §6), and compare signatures in constant time.
 *
 * A receiver verifies the *raw* body bytes (before any JSON parsing/re-serialisation), e.g. with
 * `verifyWebhookSignature` below (self-contained: node:crypto only, so it can be copied into SDKs):
 *
 *   const ok = verifyWebhookSignature({
 *     secrets: [process.env.WEBHOOK_SECRET],            // old and new while rotating
 *     id: req.headers['x-mairust-webhook-id'],
 *     timestamp: req.headers['x-mairust-timestamp'],
 *     signature: req.headers['x-mairust-signature'],
 *     body: rawBody,
 *   }).ok;
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-MaiRust-Signature';
export const TIMESTAMP_HEADER = 'X-MaiRust-Timestamp';
export const WEBHOOK_ID_HEADER = 'X-MaiRust-Webhook-Id';

/** SPEC §6: receivers reject timestamps outside ±5 min. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

const SCHEME = 'sha256=';
const HEX64 = /^[0-9a-f]{64}$/;
const TIMESTAMP = /^[0-9]{1,12}$/;

export interface SignInput {
  /** The signing secret (`whsec_…`); its UTF-8 bytes are the HMAC key. */
  secret: string | Buffer;
  /** Webhook id (or, for hook calls, the plugin id). */
  id: string;
  /** The exact bytes that are sent as the request body. */
  body: string | Buffer;
  /** Unix time in seconds; default now. */
  timestamp?: number;
}

export interface SignedHeaders {
  timestamp: string;
  /** `sha256=<hex>` */
  signature: string;
}

function sha256Hex(body: string | Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** The hex HMAC of SPEC §6 over `timestamp \n id \n hex(sha256(body))`. */
export function signatureHex(secret: string | Buffer, timestamp: string, id: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}\n${id}\n${sha256Hex(body)}`, 'utf8').digest('hex');
}

/** The values of `X-MaiRust-Timestamp` and `X-MaiRust-Signature` for one request. */
export function signWebhook(input: SignInput): SignedHeaders {
  const ts = input.timestamp ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(ts) || ts < 0) throw new RangeError(`timestamp must be a non-negative integer of seconds (got ${String(ts)})`);
  if (input.id.length === 0 || /[\r\n]/.test(input.id)) throw new RangeError('id must be non-empty and contain no line breaks');
  const timestamp = String(ts);
  return { timestamp, signature: SCHEME + signatureHex(input.secret, timestamp, input.id, input.body) };
}

export type VerifyFailure = 'missing_header' | 'malformed_signature' | 'malformed_timestamp' | 'timestamp_out_of_range' | 'mismatch';

export type VerifyResult = { ok: true } | { ok: false; reason: VerifyFailure };

export interface VerifyInput {
  /** Every secret currently accepted (one, or two during a rotation). */
  secrets: readonly (string | Buffer)[];
  id: string | undefined;
  timestamp: string | undefined;
  /** The header value: `sha256=<hex>`; several comma-separated values are accepted (any may match). */
  signature: string | undefined;
  body: string | Buffer;
  /** Unix time in seconds; default now. */
  now?: number;
  /** Default 300 (SPEC §6). */
  toleranceSeconds?: number;
}

/**
 * Checks a delivery's headers against its raw body. Timestamps further than `toleranceSeconds`
 * from `now` (either direction) fail before any HMAC is computed; the comparison of the
 * signature itself is constant-time.
 */
export function verifyWebhookSignature(input: VerifyInput): VerifyResult {
  const { id, timestamp, signature } = input;
  if (!id || !timestamp || !signature || input.secrets.length === 0) return { ok: false, reason: 'missing_header' };
  if (!TIMESTAMP.test(timestamp)) return { ok: false, reason: 'malformed_timestamp' };
  const now = input.now ?? Math.floor(Date.now() / 1000);
  const tolerance = input.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS;
  if (Math.abs(now - Number(timestamp)) > tolerance) return { ok: false, reason: 'timestamp_out_of_range' };

  const given: Buffer[] = [];
  for (const part of signature.split(',')) {
    const v = part.trim();
    if (!v.startsWith(SCHEME)) continue;
    const hex = v.slice(SCHEME.length).toLowerCase();
    if (HEX64.test(hex)) given.push(Buffer.from(hex, 'hex'));
  }
  if (given.length === 0) return { ok: false, reason: 'malformed_signature' };

  let match = false;
  for (const secret of input.secrets) {
    const expected = Buffer.from(signatureHex(secret, timestamp, id, input.body), 'hex');
    // Every pair is compared (no early exit), so timing does not tell which secret or value matched.
    for (const g of given) match = timingSafeEqual(expected, g) || match;
  }
  return match ? { ok: true } : { ok: false, reason: 'mismatch' };
}
