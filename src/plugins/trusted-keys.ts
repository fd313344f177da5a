/**
 * `plugins.trusted_keys` accepts an Ed25519 public key as SPKI PEM or as base64 of the raw
 * 32-byte key (RFC 8032 §5.1.5); the package reader (package.ts) wants PEM. The raw form is
 * wrapped in the fixed SPKI header for id-Ed25519 (OID 1.3.101.112, RFC 8410 §4).
 */
import { Buffer } from 'node:buffer';
import { createPublicKey } from 'node:crypto';

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The key as PEM; entries that are neither form are passed through (they then verify nothing). */
export function trustedKeyPem(key: string): string {
  const text = key.trim();
  if (text.includes('-----BEGIN')) return text;
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
    const raw = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (raw.length === 32) {
      try {
        return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
          .export({ type: 'spki', format: 'pem' })
          .toString();
      } catch {
        return text;
      }
    }
  }
  return text;
}

export function trustedKeyPems(keys: readonly string[]): string[] {
  return keys.map(trustedKeyPem);
}
