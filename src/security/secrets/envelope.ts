/**
 * Envelope encryption, pure functions (SPEC §10 "Secrets at rest"; docs/adr/0008).
 *
 * A secret is sealed with its own random 256-bit data key (AES-256-GCM), and the data key is
 * wrapped (AES-256-GCM) by the master key. Both blobs are self-describing byte strings, stored as
 * base64 text:
 *
 *   sealed secret   = 0x01 'S'               | iv (12) | tag (16) | ciphertext
 *   wrapped key     = 0x01 'K' | key id (8)  | iv (12) | tag (16) | encrypted data key (32)
 *
 * The first byte is the format version, the second says what the blob is, so a wrapped key can
 * never be taken for a sealed secret. The wrapped key carries the id of the master key that wrapped
 * it, so a wrong key is reported as such instead of as a failed tag check. The header bytes and the
 * secret's id are the GCM additional authenticated data (NIST SP 800-38D §5.2.1.1): changing a
 * header, or moving a ciphertext or wrapped key to another row, makes the tag check fail.
 *
 * IVs are 96 random bits (SP 800-38D §8.2.2). Each data key seals exactly one value and a master
 * key wraps one data key per secret, far below the 2^32 invocations per key that random IVs allow.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** A master key and its id. The key bytes never leave this module family: no toJSON, no logging. */
export interface MasterKey {
  /** First 16 hex characters of SHA-256(key): names the key in rows, errors and output; reveals nothing useful. */
  readonly id: string;
  readonly key: Buffer;
}

export const FORMAT_VERSION = 1;
const TYPE_SEALED = 0x53; // 'S'
const TYPE_WRAPPED = 0x4b; // 'K'
export const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_BYTES = 8;
const SEALED_HEADER_BYTES = 2;
const WRAPPED_HEADER_BYTES = 2 + KEY_ID_BYTES;
const WRAPPED_TOTAL_BYTES = WRAPPED_HEADER_BYTES + IV_BYTES + TAG_BYTES + KEY_BYTES;

/**
 * Largest secret accepted (SPEC §10 "every size bounded"). The biggest real secret is an RSA-4096
 * DKIM private key in PEM (about 3.3 KB); TOTP seeds and webhook secrets are tens of bytes.
 */
export const MAX_SECRET_BYTES = 64 * 1024;

/** Domain-separation labels: the same id can never authenticate a data key as a secret or vice versa. */
const AAD_SECRET = 'mairust/secret/';
const AAD_DATA_KEY = 'mairust/data-key/';

export type SecretErrorCode = 'SECRET_NOT_FOUND' | 'SECRET_KEY_MISMATCH' | 'SECRET_UNSEAL_FAILED' | 'SECRET_TOO_LARGE' | 'SECRET_FORMAT';

/** Every failure of this module; the message never contains key material or plaintext. */
export class SecretError extends Error {
  constructor(readonly code: SecretErrorCode, message: string) {
    super(message);
    this.name = 'SecretError';
  }
}

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, KEY_ID_BYTES * 2);
}

/** Wraps 32 raw bytes as a MasterKey (copying them, so the caller may wipe its buffer). */
export function masterKeyFromBytes(bytes: Buffer): MasterKey {
  if (bytes.length !== KEY_BYTES) throw new SecretError('SECRET_FORMAT', `a master key must be exactly ${KEY_BYTES} bytes (got ${bytes.length})`);
  const key = Buffer.from(bytes);
  const id = keyIdOf(key);
  // Non-enumerable: JSON.stringify, util.inspect and pino's serialisers never show the bytes.
  const out = { id } as { id: string; key: Buffer };
  Object.defineProperty(out, 'key', { value: key, enumerable: false });
  return Object.freeze(out);
}

/** A fresh random 256-bit data key; callers wipe it (`fill(0)`) when done. */
export function generateDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

function aad(header: Buffer, label: string, secretId: string): Buffer {
  return Buffer.concat([header, Buffer.from(label + secretId, 'utf8')]);
}

function gcmEncrypt(key: Buffer, header: Buffer, additional: Buffer, plaintext: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(additional);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, iv, cipher.getAuthTag(), body]);
}

/** Decrypts `blob` (header already checked); null when the tag does not verify. */
function gcmDecrypt(key: Buffer, blob: Buffer, headerBytes: number, additional: Buffer): Buffer | null {
  const iv = blob.subarray(headerBytes, headerBytes + IV_BYTES);
  const tag = blob.subarray(headerBytes + IV_BYTES, headerBytes + IV_BYTES + TAG_BYTES);
  const body = blob.subarray(headerBytes + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(additional);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return null;
  }
}

/** Strict base64 (what we write); anything else is corruption, reported without echoing the text. */
function decodeBase64(text: string, what: string, secretId: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new SecretError('SECRET_FORMAT', `secret ${secretId}: the ${what} is not valid base64`);
  }
  return Buffer.from(text, 'base64');
}

function checkHeader(blob: Buffer, type: number, minBytes: number, what: string, secretId: string): void {
  if (blob.length < minBytes) throw new SecretError('SECRET_FORMAT', `secret ${secretId}: the ${what} is truncated (${blob.length} bytes)`);
  if (blob[0] !== FORMAT_VERSION) throw new SecretError('SECRET_FORMAT', `secret ${secretId}: the ${what} has format version ${blob[0]}; this version reads ${FORMAT_VERSION}`);
  if (blob[1] !== type) throw new SecretError('SECRET_FORMAT', `secret ${secretId}: the ${what} column holds another kind of blob (type byte 0x${blob[1].toString(16)})`);
}

/** Seals `plaintext` with `dataKey` for the secret `secretId`; returns base64 text. */
export function sealSecret(dataKey: Buffer, secretId: string, plaintext: Buffer): string {
  if (plaintext.length > MAX_SECRET_BYTES) {
    throw new SecretError('SECRET_TOO_LARGE', `a secret is at most ${MAX_SECRET_BYTES} bytes (got ${plaintext.length})`);
  }
  const header = Buffer.from([FORMAT_VERSION, TYPE_SEALED]);
  return gcmEncrypt(dataKey, header, aad(header, AAD_SECRET, secretId), plaintext).toString('base64');
}

/** Opens a sealed secret; throws SECRET_UNSEAL_FAILED when the data key, the id or the bytes do not match. */
export function unsealSecret(dataKey: Buffer, secretId: string, sealed: string): Buffer {
  const blob = decodeBase64(sealed, 'sealed secret', secretId);
  checkHeader(blob, TYPE_SEALED, SEALED_HEADER_BYTES + IV_BYTES + TAG_BYTES, 'sealed secret', secretId);
  const header = blob.subarray(0, SEALED_HEADER_BYTES);
  const out = gcmDecrypt(dataKey, blob, SEALED_HEADER_BYTES, aad(header, AAD_SECRET, secretId));
  if (!out) throw new SecretError('SECRET_UNSEAL_FAILED', `secret ${secretId} cannot be unsealed: its ciphertext was altered or belongs to another secret`);
  return out;
}

/** Wraps a data key with the master key for the secret `secretId`; returns base64 text. */
export function wrapDataKey(master: MasterKey, secretId: string, dataKey: Buffer): string {
  if (dataKey.length !== KEY_BYTES) throw new SecretError('SECRET_FORMAT', `a data key must be exactly ${KEY_BYTES} bytes (got ${dataKey.length})`);
  const header = Buffer.concat([Buffer.from([FORMAT_VERSION, TYPE_WRAPPED]), Buffer.from(master.id, 'hex')]);
  return gcmEncrypt(master.key, header, aad(header, AAD_DATA_KEY, secretId), dataKey).toString('base64');
}

/** The id of the master key that wrapped `wrapped` (read from its header; authenticated on unwrap). */
export function wrappedKeyId(secretId: string, wrapped: string): string {
  const blob = decodeBase64(wrapped, 'wrapped data key', secretId);
  checkHeader(blob, TYPE_WRAPPED, WRAPPED_HEADER_BYTES, 'wrapped data key', secretId);
  return blob.subarray(2, WRAPPED_HEADER_BYTES).toString('hex');
}

/** Unwraps a data key; throws SECRET_KEY_MISMATCH for another master key, SECRET_UNSEAL_FAILED for tampering. */
export function unwrapDataKey(master: MasterKey, secretId: string, wrapped: string): Buffer {
  const blob = decodeBase64(wrapped, 'wrapped data key', secretId);
  checkHeader(blob, TYPE_WRAPPED, WRAPPED_HEADER_BYTES, 'wrapped data key', secretId);
  if (blob.length !== WRAPPED_TOTAL_BYTES) {
    throw new SecretError('SECRET_FORMAT', `secret ${secretId}: the wrapped data key is ${blob.length} bytes; expected ${WRAPPED_TOTAL_BYTES}`);
  }
  const keyId = blob.subarray(2, WRAPPED_HEADER_BYTES).toString('hex');
  if (keyId !== master.id) {
    throw new SecretError('SECRET_KEY_MISMATCH', `secret ${secretId} is wrapped by master key ${keyId}, not by the configured master key ${master.id}`);
  }
  const header = blob.subarray(0, WRAPPED_HEADER_BYTES);
  const out = gcmDecrypt(master.key, blob, WRAPPED_HEADER_BYTES, aad(header, AAD_DATA_KEY, secretId));
  if (!out) throw new SecretError('SECRET_UNSEAL_FAILED', `secret ${secretId} cannot be unsealed: its wrapped data key was altered or belongs to another secret`);
  return out;
}

/** The columns of one sealed secret row. */
export interface SealedRecord {
  keyId: string;
  wrappedKey: string;
  ciphertext: string;
}

/** Seals `plaintext` under a fresh data key wrapped by `master`. */
export function seal(master: MasterKey, secretId: string, plaintext: Buffer): SealedRecord {
  const dataKey = generateDataKey();
  try {
    return { keyId: master.id, wrappedKey: wrapDataKey(master, secretId, dataKey), ciphertext: sealSecret(dataKey, secretId, plaintext) };
  } finally {
    dataKey.fill(0);
  }
}

/** Opens a sealed record with `master`. */
export function unseal(master: MasterKey, secretId: string, record: Pick<SealedRecord, 'wrappedKey' | 'ciphertext'>): Buffer {
  const dataKey = unwrapDataKey(master, secretId, record.wrappedKey);
  try {
    return unsealSecret(dataKey, secretId, record.ciphertext);
  } finally {
    dataKey.fill(0);
  }
}

/** Re-wraps a data key from `from` to `to` without touching the sealed secret (master-key rotation). */
export function rewrap(from: MasterKey, to: MasterKey, secretId: string, wrapped: string): string {
  const dataKey = unwrapDataKey(from, secretId, wrapped);
  try {
    return wrapDataKey(to, secretId, dataKey);
  } finally {
    dataKey.fill(0);
  }
}
