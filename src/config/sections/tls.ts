/**
 * Config section `tls`: the certificate and protocol floor of every TLS listener (SPEC §2 "TLS"):
 * SMTP, IMAP and POP3, with STARTTLS/STLS and implicit TLS.
 *
 * With neither file configured a self-signed certificate for `server.hostname` is generated once into
 * `<data_dir>/tls/` and reused (development only: clients cannot verify it). The files are read again
 * and the minimum version and ciphers re-applied on reload (SIGHUP), for new connections.
 */
import { Type, type Static } from '@sinclair/typebox';

const reloadable = { 'x-reloadable': true } as const;

/** TLS 1.2 suites with forward secrecy and AEAD only: no RC4, 3DES, CBC-SHA1 or MD5 (SPEC §2). */
export const DEFAULT_TLS_CIPHERS = [
  // TLS 1.3 (always AEAD + ephemeral key exchange)
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  // TLS 1.2
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const TlsConfigSchema = Type.Object(
  {
    cert_file: Type.String({
      default: '',
      maxLength: 4096,
      description: 'PEM certificate chain (leaf first). Empty together with key_file = a generated self-signed certificate in `<data_dir>/tls/`.',
      ...reloadable,
    }),
    key_file: Type.String({
      default: '',
      maxLength: 4096,
      description: 'PEM private key of cert_file (the file should be readable by the server only).',
      ...reloadable,
    }),
    min_version: Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], {
      default: 'TLSv1.2',
      description: 'Lowest TLS version accepted; TLS 1.3 is always preferred when the client offers it.',
      ...reloadable,
    }),
    ciphers: Type.String({
      default: DEFAULT_TLS_CIPHERS,
      minLength: 1,
      maxLength: 4096,
      description: 'OpenSSL cipher list (TLS 1.2 suites and TLS 1.3 suite names). The default allows only ECDHE with AES-GCM or ChaCha20-Poly1305.',
      ...reloadable,
    }),
  },
  { additionalProperties: false, default: {}, description: 'Certificate and protocol settings of the TLS listeners.' },
);

export type TlsConfig = Static<typeof TlsConfigSchema>;
