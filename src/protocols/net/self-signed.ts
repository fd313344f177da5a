/**
 * The development certificate of SPEC §2: when no certificate is configured, a self-signed one for
 * the node's hostname is generated once into `<data_dir>/tls/` and reused at every start, so a
 * client that pinned it on first use keeps working.
 *
 * Built here with node:crypto (key generation, signing) and the small DER encoder in der.ts rather
 * than the `selfsigned` package: that package pulls in a general ASN.1/PKI stack (@peculiar/x509,
 * pkijs, asn1js and their helpers) for what is one fixed structure of RFC 5280 §4.1 — about 60 lines
 * below — while the cryptography itself is node:crypto's either way.
 *
 * Key: ECDSA P-256 with SHA-256 (RFC 5758 §3.2): generated in milliseconds, supported by every TLS
 * 1.2/1.3 client in use, and matched by the ECDHE-ECDSA suites of the default cipher list.
 */
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { domainToASCII } from 'node:url';
import * as der from './der.js';
import { ipv6Groups } from './peer-key.js';

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** Validity of a generated certificate (the CA/Browser Forum maximum; renewed automatically). */
export const SELF_SIGNED_VALID_DAYS = 397;
/** A certificate that ends sooner than this is replaced at start. */
const RENEW_BEFORE_MS = 7 * 86_400_000;
const DAY_MS = 86_400_000;

export interface CertificatePair {
  /** PEM private key (PKCS#8). */
  key: string;
  /** PEM certificate. */
  cert: string;
}

export interface SelfSignedOptions {
  now?: Date;
  validDays?: number;
}

/** The name as it goes into the certificate: an IP address, or an A-label DNS name. */
function certificateName(hostname: string): { ip: string } | { dns: string } {
  const bare = hostname.trim().replace(/^\[(.*)\]$/, '$1');
  if (net.isIP(bare)) return { ip: bare };
  const ascii = domainToASCII(bare.toLowerCase().replace(/\.$/, ''));
  if (!ascii || ascii.length > 253) throw new Error(`cannot make a certificate for hostname ${JSON.stringify(hostname)}`);
  return { dns: ascii };
}

function ipOctets(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  return Buffer.concat(ipv6Groups(ip).map((g) => Buffer.from([g >> 8, g & 0xff])));
}

/** Builds and signs a self-signed X.509 v3 certificate for `hostname` (RFC 5280 §4.1). */
export function createSelfSignedCertificate(hostname: string, opts: SelfSignedOptions = {}): CertificatePair {
  const name = certificateName(hostname);
  const now = opts.now ?? new Date();
  const validDays = opts.validDays ?? SELF_SIGNED_VALID_DAYS;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  const signatureAlgorithm = der.sequence(der.objectIdentifier(OID.ecdsaWithSha256));
  const subject = der.sequence(
    der.set(der.sequence(der.objectIdentifier(OID.commonName), der.utf8String('ip' in name ? name.ip : name.dns))),
  );
  const altName = 'ip' in name ? der.implicitPrimitive(7, ipOctets(name.ip)) : der.implicitPrimitive(2, Buffer.from(name.dns, 'ascii'));
  const extension = (oid: string, critical: boolean, value: Buffer) =>
    der.sequence(der.objectIdentifier(oid), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
  const extensions = der.sequence(
    // A leaf, not a CA (RFC 5280 §4.2.1.9); keyUsage digitalSignature only, as ECDHE needs (§4.2.1.3).
    extension(OID.basicConstraints, true, der.sequence()),
    extension(OID.keyUsage, true, der.bitString(Buffer.from([0x80]), 7)),
    extension(OID.extKeyUsage, false, der.sequence(der.objectIdentifier(OID.serverAuth))),
    // Clients match the name in subjectAltName, not the CN (RFC 6125 §6.4.4).
    extension(OID.subjectAltName, false, der.sequence(altName)),
  );
  // Serial: positive, at most 20 octets, unpredictable (RFC 5280 §4.1.2.2).
  const serial = randomBytes(16);
  serial[0] &= 0x7f;
  const tbs = der.sequence(
    der.explicit(0, der.smallInteger(2)), // v3
    der.unsignedInteger(serial),
    signatureAlgorithm,
    subject, // issuer = subject: self-signed
    der.sequence(der.time(new Date(now.getTime() - 3_600_000)), der.time(new Date(now.getTime() + validDays * DAY_MS))),
    subject,
    publicKey.export({ type: 'spki', format: 'der' }),
    der.explicit(3, extensions),
  );
  const signature = sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value, as X.509 wants (RFC 5758 §3.2)
  const certificate = der.sequence(tbs, signatureAlgorithm, der.bitString(signature));
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: toPem('CERTIFICATE', certificate),
  };
}

function toPem(label: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export interface StoredCertificate extends CertificatePair {
  keyFile: string;
  certFile: string;
  /** True when this call generated it (first start, hostname changed, expired or unreadable). */
  generated: boolean;
}

/** Whether a stored pair is still right for `hostname`: parses, names it, matches its key, not near its end. */
function usable(pair: CertificatePair, hostname: string, now: Date): boolean {
  try {
    const cert = new X509Certificate(pair.cert);
    const key: KeyObject = createPrivateKey(pair.key);
    const name = certificateName(hostname);
    const names = 'ip' in name ? cert.checkIP(name.ip) : cert.checkHost(name.dns);
    return !!names && cert.checkPrivateKey(key) && new Date(cert.validTo).getTime() - now.getTime() > RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}

/**
 * Returns the self-signed pair in `dir` (normally `<data_dir>/tls`), generating and storing it
 * first when there is none or the stored one does not fit `hostname` any more.
 */
export async function ensureSelfSignedCertificate(dir: string, hostname: string, opts: SelfSignedOptions = {}): Promise<StoredCertificate> {
  const keyFile = join(dir, 'self-signed.key');
  const certFile = join(dir, 'self-signed.crt');
  const now = opts.now ?? new Date();
  const existing = await readPair(keyFile, certFile);
  if (existing && usable(existing, hostname, now)) return { ...existing, keyFile, certFile, generated: false };

  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pair = createSelfSignedCertificate(hostname, opts);
  // Key first: a crash in between leaves a new key with an old certificate, which `usable` rejects
  // at the next start (checkPrivateKey), so it is regenerated instead of served broken.
  await writeDurably(keyFile, pair.key, 0o600);
  await writeDurably(certFile, pair.cert, 0o644);
  return { ...pair, keyFile, certFile, generated: true };
}

async function readPair(keyFile: string, certFile: string): Promise<CertificatePair | null> {
  try {
    const [key, cert] = await Promise.all([readFile(keyFile, 'utf8'), readFile(certFile, 'utf8')]);
    return { key, cert };
  } catch {
    return null;
  }
}

/** temp file + fsync + rename, so a reader never sees half a key (same pattern as the fs blob store). */
async function writeDurably(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, path);
}
