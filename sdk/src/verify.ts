/**
 * Verifying that a request really comes from MaiRust (SPEC §6 "Signing"). Self-contained
 * (node:crypto only) so plugin authors need nothing else.
 *
 *   X-MaiRust-Plugin-Id:  <plugin id>
 *   X-MaiRust-Timestamp:  <Unix time in seconds>
 *   X-MaiRust-Signature:  sha256=<hex>[,sha256=<hex>]   (two values while MaiRust rotates the secret)
 *
 *   hex = HMAC-SHA256(secret, timestamp + "\n" + plugin_id + "\n" + hex(SHA-256(raw body)))
 *
 * Verify the raw body bytes exactly as received, before JSON parsing: re-serialised JSON differs.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-MaiRust-Signature';
export const TIMESTAMP_HEADER = 'X-MaiRust-Timestamp';
export const PLUGIN_ID_HEADER = 'X-MaiRust-Plugin-Id';

/** SPEC §6: requests signed more than 5 minutes before or after the receiver's clock are refused. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

const SCHEME = 'sha256=';
const HEX64 = /^[0-9a-f]{64}$/;
const TIMESTAMP = /^[0-9]{1,12}$/;

export type VerifyFailure =
  | 'missing_header'
  | 'malformed_signature'
  | 'malformed_timestamp'
  | 'timestamp_out_of_range'
  | 'mismatch';

export type VerifyResult = { ok: true } | { ok: false; reason: VerifyFailure };

export interface VerifySignatureInput {
  /** Every secret you accept: the current one, plus the previous one while you rotate. */
  secrets: readonly (string | Buffer)[];
  /** Your plugin id; also compare it with the X-MaiRust-Plugin-Id header (done here when given). */
  pluginId: string;
  /** The X-MaiRust-Timestamp header. */
  timestamp: string | undefined | null;
  /** The X-MaiRust-Signature header. */
  signature: string | undefined | null;
  /** The raw request body. */
  body: string | Buffer | Uint8Array;
  /** The X-MaiRust-Plugin-Id header; when given it must equal `pluginId`. */
  pluginIdHeader?: string | undefined | null;
  /** Unix time in seconds; default now. */
  now?: number;
  /** Default 300 (±5 min). */
  toleranceSeconds?: number;
}

function expectedSignature(secret: string | Buffer, timestamp: string, pluginId: string, body: string | Buffer | Uint8Array): Buffer {
  const bodyHash = createHash('sha256').update(body).digest('hex');
  return createHmac('sha256', secret).update(`${timestamp}\n${pluginId}\n${bodyHash}`, 'utf8').digest();
}

/**
 * Checks a hook call's signature. The timestamp window is checked first (a replayed old request
 * fails without any HMAC work); signatures are compared in constant time, and every (secret,
 * value) pair is compared so timing does not reveal which one matched.
 */
export function verifySignature(input: VerifySignatureInput): VerifyResult {
  const { pluginId, timestamp, signature } = input;
  if (!pluginId || !timestamp || !signature || input.secrets.length === 0) return { ok: false, reason: 'missing_header' };
  if (input.pluginIdHeader !== undefined && input.pluginIdHeader !== pluginId) {
    return input.pluginIdHeader ? { ok: false, reason: 'mismatch' } : { ok: false, reason: 'missing_header' };
  }
  if (!TIMESTAMP.test(timestamp)) return { ok: false, reason: 'malformed_timestamp' };
  const now = input.now ?? Math.floor(Date.now() / 1000);
  const tolerance = input.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS;
  if (Math.abs(now - Number(timestamp)) > tolerance) return { ok: false, reason: 'timestamp_out_of_range' };

  const given: Buffer[] = [];
  for (const part of signature.split(',')) {
    const value = part.trim();
    if (!value.startsWith(SCHEME)) continue;
    const hex = value.slice(SCHEME.length).toLowerCase();
    if (HEX64.test(hex)) given.push(Buffer.from(hex, 'hex'));
  }
  if (given.length === 0) return { ok: false, reason: 'malformed_signature' };

  let match = false;
  for (const secret of input.secrets) {
    const expected = expectedSignature(secret, timestamp, pluginId, input.body);
    for (const g of given) match = timingSafeEqual(expected, g) || match;
  }
  return match ? { ok: true } : { ok: false, reason: 'mismatch' };
}

/** Reads a header from node:http's lower-cased header object or from a fetch `Headers`. */
export function headerValue(headers: Headers | Record<string, string | string[] | undefined>, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (k.toLowerCase() === wanted && v !== undefined) return Array.isArray(v) ? v.join(',') : v;
  }
  return undefined;
}

/** Convenience: `verifySignature` with the three headers taken from a request's headers. */
export function verifyRequest(input: Omit<VerifySignatureInput, 'timestamp' | 'signature' | 'pluginIdHeader'> & {
  headers: Headers | Record<string, string | string[] | undefined>;
}): VerifyResult {
  const { headers, ...rest } = input;
  return verifySignature({
    ...rest,
    timestamp: headerValue(headers, TIMESTAMP_HEADER),
    signature: headerValue(headers, SIGNATURE_HEADER),
    pluginIdHeader: headerValue(headers, PLUGIN_ID_HEADER) ?? null,
  });
}
