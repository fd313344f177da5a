// Verifies that a hook call really comes from MaiRust (SPEC §6 "Signing"), with node:crypto only:
//
//   X-MaiRust-Plugin-Id:  <plugin id>
//   X-MaiRust-Timestamp:  <Unix time in seconds>
//   X-MaiRust-Signature:  sha256=<hex>[,sha256=<hex>]   (two values while MaiRust rotates the secret)
//
//   hex = HMAC-SHA256(secret, timestamp + "\n" + plugin_id + "\n" + hex(SHA-256(raw body)))
//
// Receivers refuse timestamps more than 5 minutes away from their clock. The TypeScript SDK
// (sdk/src/verify.ts, `verifyRequest`) does the same; this copy keeps the example dependency-free.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const TOLERANCE_SECONDS = 300;

function header(headers, name) {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(',') : value;
}

/**
 * @param {object} input
 * @param {string[]} input.secrets  the current secret, plus the previous one while rotating
 * @param {string} input.pluginId
 * @param {Record<string, string | string[] | undefined>} input.headers  node:http's (lower-case) headers
 * @param {Buffer} input.body  the raw body, before JSON parsing
 * @param {number} [input.now]  Unix seconds
 * @returns {{ ok: true } | { ok: false, reason: string }}
 */
export function verifyHookCall({ secrets, pluginId, headers, body, now = Math.floor(Date.now() / 1000) }) {
  const id = header(headers, 'x-mairust-plugin-id');
  const timestamp = header(headers, 'x-mairust-timestamp');
  const signature = header(headers, 'x-mairust-signature');
  if (!id || !timestamp || !signature) return { ok: false, reason: 'missing_header' };
  if (id !== pluginId) return { ok: false, reason: 'wrong_plugin_id' };
  if (!/^[0-9]{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed_timestamp' };
  // The window first: a replayed old request costs no HMAC work.
  if (Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) return { ok: false, reason: 'timestamp_out_of_range' };

  const given = signature
    .split(',')
    .map((part) => part.trim())
    .filter((part) => /^sha256=[0-9a-fA-F]{64}$/.test(part))
    .map((part) => Buffer.from(part.slice(7), 'hex'));
  if (given.length === 0) return { ok: false, reason: 'malformed_signature' };

  const bodyHash = createHash('sha256').update(body).digest('hex');
  let match = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(`${timestamp}\n${pluginId}\n${bodyHash}`, 'utf8').digest();
    // Constant time, and every pair compared, so timing tells nothing about which one matched.
    for (const g of given) match = timingSafeEqual(expected, g) || match;
  }
  return match ? { ok: true } : { ok: false, reason: 'mismatch' };
}
