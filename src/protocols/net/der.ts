/**
 * The few DER encoders (ITU-T X.690 §8, §10) that a self-signed X.509 certificate needs
 * (self-signed.ts). Encoding only: certificates are parsed with node:crypto's X509Certificate.
 *
 * Every element is tag + definite length + content. Lengths use the short form below 128 and the
 * long form (0x80 | number of length octets) above (X.690 §8.1.3).
 */

/** Largest content this encoder accepts; a certificate is a few hundred bytes. */
const MAX_CONTENT = 0xffffff;

export function encodeLength(length: number): Buffer {
  if (!Number.isInteger(length) || length < 0 || length > MAX_CONTENT) throw new RangeError(`DER length out of range: ${length}`);
  if (length < 0x80) return Buffer.from([length]);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n & 0xff);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
export const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
export const boolean = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
export const octetString = (content: Buffer): Buffer => tlv(0x04, content);
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));

/** BIT STRING whose first content octet says how many bits of the last octet are unused (§8.6). */
export function bitString(content: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), content]));
}

/**
 * A non-negative INTEGER from its big-endian magnitude: minimal (no leading zero octets) and with a
 * 0x00 in front when the high bit is set, which would otherwise make it negative (§8.3).
 */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  let bytes = magnitude.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if (bytes[0] & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

export function smallInteger(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new RangeError(`small integer out of range: ${value}`);
  return unsignedInteger(Buffer.from([value >> 8, value & 0xff]));
}

/** OBJECT IDENTIFIER: first two arcs as 40·a + b, every arc in base 128 with continuation bits (§8.19). */
export function objectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new Error(`bad OID ${dotted}`);
    return Number(a);
  });
  if (arcs.length < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40)) throw new Error(`bad OID ${dotted}`);
  const out: number[] = [];
  for (const arc of [arcs[0] * 40 + arcs[1], ...arcs.slice(2)]) {
    if (!Number.isSafeInteger(arc)) throw new Error(`bad OID ${dotted}`);
    const base128: number[] = [arc % 128];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) base128.unshift((n % 128) | 0x80);
    out.push(...base128);
  }
  return tlv(0x06, Buffer.from(out));
}

/**
 * Certificate validity time (RFC 5280 §4.1.2.5): UTCTime (YYMMDDHHMMSSZ) for the years 1950–2049,
 * GeneralizedTime (YYYYMMDDHHMMSSZ) from 2050 on. Seconds precision, always UTC.
 */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-11-29T01:02:03.456Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ''); // 20261129010203
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'));
  return tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}

/** [n] EXPLICIT: a constructed context-specific wrapper around one element (§8.14). */
export const explicit = (tagNumber: number, inner: Buffer): Buffer => tlv(0xa0 | tagNumber, inner);

/** [n] IMPLICIT for a primitive type: the content with a context-specific tag. */
export const implicitPrimitive = (tagNumber: number, content: Buffer): Buffer => tlv(0x80 | tagNumber, content);
