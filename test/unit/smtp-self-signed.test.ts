/**
 * The generated development certificate (SPEC §2): valid X.509 that OpenSSL (through node:crypto)
 * parses and verifies, usable for a real TLS handshake, generated once into `<data_dir>/tls/` and
 * reused, replaced when the hostname changes or the pair is damaged; and the `tls` config section
 * turned into settings (files, self-signed, clear errors).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { DEFAULT_TLS_CIPHERS } from '../../src/config/sections/tls.js';
import { createSelfSignedCertificate, ensureSelfSignedCertificate } from '../../src/protocols/net/self-signed.js';
import { TlsConfigError, loadTlsSettings } from '../../src/protocols/net/tls.js';
import { tempDir } from '../support/shape.js';

test('the certificate names the host, is self-signed, a leaf for server auth, and verifies', () => {
  const pair = createSelfSignedCertificate('mx.example.test', { now: new Date('2026-11-29T00:00:00Z') });
  const cert = new X509Certificate(pair.cert);
  assert.equal(cert.subject, 'CN=mx.example.test');
  assert.equal(cert.issuer, cert.subject);
  assert.equal(cert.subjectAltName, 'DNS:mx.example.test');
  assert.equal(cert.ca, false);
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  assert.ok(cert.verify(cert.publicKey), 'signature verifies with its own key');
  assert.equal(new Date(cert.validTo).getTime() - new Date('2026-11-29T00:00:00Z').getTime(), 397 * 86_400_000);
  assert.ok(cert.checkHost('mx.example.test'));
  assert.equal(cert.checkHost('other.example.test'), undefined);
});

test('IP addresses and IDNs go into subjectAltName correctly', () => {
  assert.equal(new X509Certificate(createSelfSignedCertificate('127.0.0.1').cert).subjectAltName, 'IP Address:127.0.0.1');
  assert.equal(new X509Certificate(createSelfSignedCertificate('2001:db8::1').cert).subjectAltName, 'IP Address:2001:DB8:0:0:0:0:0:1');
  assert.equal(new X509Certificate(createSelfSignedCertificate('メール.example').cert).subjectAltName, 'DNS:xn--4dkua4c.example');
  assert.throws(() => createSelfSignedCertificate('bad host name'), /cannot make a certificate/);
});

test('a TLS 1.3 and a TLS 1.2 client complete the handshake and trust it when pinned', async () => {
  const pair = createSelfSignedCertificate('mx.example.test');
  const server = tls.createServer({ key: pair.key, cert: pair.cert, ciphers: DEFAULT_TLS_CIPHERS, minVersion: 'TLSv1.2' }, (s) => s.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as import('node:net').AddressInfo).port;
  try {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const result = await new Promise<{ authorized: boolean; protocol: string | null; cipher: string }>((resolve, reject) => {
        const s = tls.connect({ port, host: '127.0.0.1', servername: 'mx.example.test', ca: pair.cert, maxVersion }, () => {
          resolve({ authorized: s.authorized, protocol: s.getProtocol(), cipher: s.getCipher().name });
          s.destroy();
        });
        s.on('error', reject);
      });
      assert.equal(result.authorized, true);
      assert.equal(result.protocol, maxVersion);
      if (maxVersion === 'TLSv1.2') assert.equal(result.cipher, 'ECDHE-ECDSA-AES128-GCM-SHA256');
    }
  } finally {
    server.close();
  }
});

test('generated once into the directory and reused; key file readable by the owner only', async () => {
  const dir = tempDir();
  try {
    const first = await ensureSelfSignedCertificate(join(dir.path, 'tls'), 'mx.example.test');
    assert.equal(first.generated, true);
    assert.equal(statSync(first.keyFile).mode & 0o777, 0o600);
    const mtime = statSync(first.certFile).mtimeMs;
    const second = await ensureSelfSignedCertificate(join(dir.path, 'tls'), 'mx.example.test');
    assert.equal(second.generated, false);
    assert.equal(second.cert, first.cert);
    assert.equal(second.key, first.key);
    assert.equal(statSync(first.certFile).mtimeMs, mtime, 'not rewritten');
  } finally {
    dir.remove();
  }
});

test('replaced when the hostname changes, the pair does not match, or it is about to expire', async () => {
  const dir = tempDir();
  try {
    const tlsDir = join(dir.path, 'tls');
    const first = await ensureSelfSignedCertificate(tlsDir, 'mx.example.test');
    const renamed = await ensureSelfSignedCertificate(tlsDir, 'mx2.example.test');
    assert.equal(renamed.generated, true);
    assert.equal(new X509Certificate(renamed.cert).subject, 'CN=mx2.example.test');

    // A key from another pair (e.g. a crash between the two writes).
    writeFileSync(renamed.keyFile, first.key);
    const repaired = await ensureSelfSignedCertificate(tlsDir, 'mx2.example.test');
    assert.equal(repaired.generated, true);
    assert.ok(new X509Certificate(repaired.cert).checkPrivateKey((await import('node:crypto')).createPrivateKey(repaired.key)));

    writeFileSync(repaired.certFile, 'garbage');
    assert.equal((await ensureSelfSignedCertificate(tlsDir, 'mx2.example.test')).generated, true);

    const later = new Date(Date.now() + 392 * 86_400_000); // 5 days before the end
    assert.equal((await ensureSelfSignedCertificate(tlsDir, 'mx2.example.test', { now: later })).generated, true);
  } finally {
    dir.remove();
  }
});

test('loadTlsSettings: self-signed when no files are configured, the files otherwise', async () => {
  const dir = tempDir();
  try {
    const config = { cert_file: '', key_file: '', min_version: 'TLSv1.3' as const, ciphers: DEFAULT_TLS_CIPHERS };
    const generated = await loadTlsSettings(config, { dataDir: dir.path, hostname: 'mx.example.test' });
    assert.equal(generated.source, 'self-signed');
    assert.equal(generated.generated, true);
    assert.equal(generated.minVersion, 'TLSv1.3');
    assert.equal(readFileSync(join(dir.path, 'tls', 'self-signed.crt'), 'utf8'), generated.cert);

    const files = await loadTlsSettings(
      { ...config, cert_file: join(dir.path, 'tls', 'self-signed.crt'), key_file: join(dir.path, 'tls', 'self-signed.key') },
      { dataDir: dir.path, hostname: 'ignored' },
    );
    assert.equal(files.source, 'files');
    assert.equal(files.cert, generated.cert);
  } finally {
    dir.remove();
  }
});

test('loadTlsSettings: clear errors for half a configuration, missing, non-PEM or mismatched files', async () => {
  const dir = tempDir();
  try {
    const base = { cert_file: '', key_file: '', min_version: 'TLSv1.2' as const, ciphers: DEFAULT_TLS_CIPHERS };
    const opts = { dataDir: dir.path, hostname: 'mx.example.test' };
    await assert.rejects(loadTlsSettings({ ...base, cert_file: '/x.crt' }, opts), /must be set together/);
    await assert.rejects(loadTlsSettings({ ...base, cert_file: '/nonexistent.crt', key_file: '/nonexistent.key' }, opts), /tls\.cert_file: cannot read \/nonexistent\.crt: ENOENT/);
    writeFileSync(join(dir.path, 'a.crt'), 'not pem');
    writeFileSync(join(dir.path, 'a.key'), createSelfSignedCertificate('x.test').key);
    await assert.rejects(loadTlsSettings({ ...base, cert_file: join(dir.path, 'a.crt'), key_file: join(dir.path, 'a.key') }, opts), /is not PEM/);
    writeFileSync(join(dir.path, 'a.crt'), createSelfSignedCertificate('y.test').cert);
    await assert.rejects(loadTlsSettings({ ...base, cert_file: join(dir.path, 'a.crt'), key_file: join(dir.path, 'a.key') }, opts), (err) => {
      assert.ok(err instanceof TlsConfigError);
      assert.match(err.message, /cannot use the TLS certificate/);
      return true;
    });
    await assert.rejects(loadTlsSettings({ ...base, ciphers: 'NO-SUCH-CIPHER' }, opts), TlsConfigError);
  } finally {
    dir.remove();
  }
});
