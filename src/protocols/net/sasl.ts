/**
 * The client's side of SASL exchanges for the PLAIN (RFC 4616) and LOGIN mechanisms, decoded —
 * for SMTP AUTH (RFC 4954 §4, exchange in smtp/engine/auth-exchange.ts), IMAP AUTHENTICATE
 * (RFC 9051 §6.2.2) and POP3 AUTH (RFC 5034). Pure functions.
 */

/** Base64 as SASL responses carry it (RFC 4648 §4, padded). */
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The `334` challenges of LOGIN (draft-murchison-sasl-login §2.1): "Username:" and "Password:". */
export const LOGIN_USERNAME_CHALLENGE = Buffer.from('Username:').toString('base64');
export const LOGIN_PASSWORD_CHALLENGE = Buffer.from('Password:').toString('base64');

/** Longest authzid, authcid or password accepted (RFC 4616 §2: up to 255 octets each). */
const MAX_FIELD_OCTETS = 255;

export type SaslResponse = { kind: 'cancel' } | { kind: 'invalid' } | { kind: 'value'; value: Buffer };

/** One response line: `*` cancels, `=` is empty (initial response only), otherwise base64. */
export function decodeResponse(line: string): SaslResponse {
  if (line === '*') return { kind: 'cancel' };
  if (line === '=') return { kind: 'value', value: Buffer.alloc(0) };
  if (line === '' || !BASE64.test(line)) return { kind: 'invalid' };
  return { kind: 'value', value: Buffer.from(line, 'base64') };
}

export interface PlainCredentials {
  authzid: string;
  username: string;
  password: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(bytes: Buffer): string | null {
  if (bytes.length > MAX_FIELD_OCTETS) return null;
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** RFC 4616 §2: `[authzid] NUL authcid NUL passwd`; null when malformed. */
export function decodePlain(message: Buffer): PlainCredentials | null {
  const first = message.indexOf(0);
  const second = first < 0 ? -1 : message.indexOf(0, first + 1);
  if (second < 0 || message.indexOf(0, second + 1) >= 0) return null;
  const authzid = text(message.subarray(0, first));
  const username = text(message.subarray(first + 1, second));
  const password = text(message.subarray(second + 1));
  if (authzid === null || !username || !password) return null;
  return { authzid, username, password };
}

/** A LOGIN username or password; null when not UTF-8, empty or too long. */
export function decodeLoginField(bytes: Buffer): string | null {
  const value = text(bytes);
  return value ? value : null;
}
