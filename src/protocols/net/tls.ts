/**
 * TLS for every mail listener — SMTP, IMAP, POP3 (SPEC §2 "TLS"): TLS 1.2 minimum (1.3 by config),
 * ECDHE + AEAD suites only, the server's suite order preferred. Used for implicit TLS (465, 993, 995)
 * and for STARTTLS/STLS (25, 587, 143, 110).
 *
 * `loadTlsSettings` turns the `tls` config section into PEM material: the configured files, or the
 * generated self-signed certificate (self-signed.ts) when none is configured. It is called at start
 * and again on reload (SIGHUP), after which the listeners' `reloadTls` swaps the context for new
 * connections; connections already open keep theirs.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { DEFAULT_TLS_CIPHERS, type TlsConfig } from '../../config/sections/tls.js';
import { ensureSelfSignedCertificate } from './self-signed.js';

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

export interface TlsSettings {
  key: string;
  cert: string;
  minVersion: TlsMinVersion;
  /** OpenSSL cipher list; default DEFAULT_TLS_CIPHERS. */
  ciphers?: string;
}

export interface LoadedTlsSettings extends TlsSettings {
  /** Where the certificate came from, for the start-up log line. */
  source: 'files' | 'self-signed';
  generated: boolean;
}

export class TlsConfigError extends Error {
  readonly code = 'TLS_CONFIG';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsConfigError';
  }
}

/** Options for tls.createSecureContext; the same for implicit TLS and STARTTLS. */
export function secureContextOptions(settings: TlsSettings): tls.SecureContextOptions {
  return {
    key: settings.key,
    cert: settings.cert,
    minVersion: settings.minVersion,
    ciphers: settings.ciphers ?? DEFAULT_TLS_CIPHERS,
    // Our list is ordered strongest-first; without this the client's order would win.
    honorCipherOrder: true,
  };
}

/** Builds the context, so a bad key, certificate or cipher list fails here with a clear message. */
export function createSecureContext(settings: TlsSettings): tls.SecureContext {
  try {
    return tls.createSecureContext(secureContextOptions(settings));
  } catch (err) {
    throw new TlsConfigError(`cannot use the TLS certificate/key/ciphers: ${(err as Error).message}`, { cause: err });
  }
}

export interface LoadTlsOptions {
  /** `server.data_dir`; the self-signed pair goes to `<dataDir>/tls/`. */
  dataDir: string;
  /** `server.hostname`; the name of the self-signed certificate. */
  hostname: string;
}

/** Reads the configured certificate and key, or provides the self-signed pair. */
export async function loadTlsSettings(config: TlsConfig, opts: LoadTlsOptions): Promise<LoadedTlsSettings> {
  const common = { minVersion: config.min_version, ciphers: config.ciphers };
  if (!config.cert_file && !config.key_file) {
    const pair = await ensureSelfSignedCertificate(join(opts.dataDir, 'tls'), opts.hostname);
    const settings = { key: pair.key, cert: pair.cert, ...common };
    createSecureContext(settings);
    return { ...settings, source: 'self-signed', generated: pair.generated };
  }
  if (!config.cert_file || !config.key_file) {
    throw new TlsConfigError('tls.cert_file and tls.key_file must be set together (or both left empty for a self-signed certificate)');
  }
  // One after the other, so that with both files wrong the error always names the certificate first.
  const cert = await readPem(config.cert_file, 'tls.cert_file');
  const key = await readPem(config.key_file, 'tls.key_file');
  const settings = { key, cert, ...common };
  createSecureContext(settings);
  return { ...settings, source: 'files', generated: false };
}

/** PEM files are small; anything over 1 MiB is not a certificate chain or a key. */
const MAX_PEM_BYTES = 1024 * 1024;

async function readPem(path: string, key: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new TlsConfigError(`${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (text.length > MAX_PEM_BYTES) throw new TlsConfigError(`${key}: ${path} is larger than 1 MiB`);
  if (!text.includes('-----BEGIN ')) throw new TlsConfigError(`${key}: ${path} is not PEM`);
  return text;
}
