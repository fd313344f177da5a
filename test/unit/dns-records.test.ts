/**
 * The DNS records a domain must publish (src/core/domains/dns-records.ts) and the DKIM record
 * format helpers they use (src/emailauth/dkim-keys.ts): SPEC §11 "DNS records to publish: MX,
 * SPF, DKIM, DMARC"; RFC 6376 §3.6.1, RFC 7208, RFC 7489 §6.3, RFC 1035 §3.3.14.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { expectedDnsRecords, dmarcValue, isQualifiedHostname, spfValue, MX_PREFERENCE } from '../../src/core/domains/dns-records.js';
import { parseTagList } from '../../src/core/domains/dns-verify.js';
import { publicRecord, selectorFor, txtStrings, keyTypeOf } from '../../src/emailauth/dkim-keys.js';

const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const P = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const KEY = { selector: 'mr202501', algorithm: 'rsa-sha256' as const, publicKey: P };

describe('expectedDnsRecords', () => {
  test('MX, SPF, DKIM, DMARC in that order with exact names and values', () => {
    const records = expectedDnsRecords({ domain: 'example.com', hostname: 'mail.provider.net', dkimKeys: [KEY] });
    assert.deepEqual(
      records.map((r) => [r.purpose, r.type, r.name, r.value]),
      [
        ['mx', 'MX', 'example.com', `${MX_PREFERENCE} mail.provider.net`],
        ['spf', 'TXT', 'example.com', 'v=spf1 mx a:mail.provider.net -all'],
        ['dkim', 'TXT', 'mr202501._domainkey.example.com', `v=DKIM1; k=rsa; p=${P}`],
        ['dmarc', 'TXT', '_dmarc.example.com', 'v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com'],
      ],
    );
    assert.equal(records[2].selector, 'mr202501');
    assert.equal(records[0].selector, undefined);
    for (const r of records) assert.ok(r.description.length > 10, `${r.purpose} has a description`);
    assert.equal(MX_PREFERENCE, 10);
  });

  test('names and the hostname are normalised: lower case, no trailing dot', () => {
    const records = expectedDnsRecords({ domain: 'Example.COM.', hostname: 'Mail.Provider.NET.', dkimKeys: [KEY] });
    assert.equal(records[0].name, 'example.com');
    assert.equal(records[0].value, '10 mail.provider.net');
    assert.equal(records[1].value, 'v=spf1 mx a:mail.provider.net -all');
    assert.equal(records[2].name, 'mr202501._domainkey.example.com');
    assert.equal(records[3].name, '_dmarc.example.com');
  });

  test('one DKIM record per key; no key means no DKIM record', () => {
    const two = expectedDnsRecords({ domain: 'example.com', hostname: 'mx.example.net', dkimKeys: [KEY, { ...KEY, selector: 'mr202502' }] });
    assert.deepEqual(two.filter((r) => r.purpose === 'dkim').map((r) => r.name), ['mr202501._domainkey.example.com', 'mr202502._domainkey.example.com']);
    assert.equal(two.length, 5);
    const none = expectedDnsRecords({ domain: 'example.com', hostname: 'mx.example.net', dkimKeys: [] });
    assert.deepEqual(none.map((r) => r.purpose), ['mx', 'spf', 'dmarc']);
  });

  test('SPF names the hostname with a: only when it is qualified', () => {
    assert.equal(spfValue('mail.example.net'), 'v=spf1 mx a:mail.example.net -all');
    assert.equal(spfValue('localhost'), 'v=spf1 mx -all');
    assert.equal(isQualifiedHostname('localhost'), false);
    assert.equal(isQualifiedHostname('mail.test.'), true);
  });

  test('DMARC: quarantine policy, aggregate reports to the domain postmaster', () => {
    assert.equal(dmarcValue('Example.ORG'), 'v=DMARC1; p=quarantine; rua=mailto:postmaster@example.org');
    const tags = parseTagList(dmarcValue('example.org'));
    assert.equal(tags.get('v'), 'DMARC1');
    assert.equal(tags.get('p'), 'quarantine');
  });
});

describe('DKIM record format', () => {
  test('publicRecord: v=DKIM1; k=rsa; p=<base64 SPKI> that parses back to the same key', () => {
    const value = publicRecord(KEY);
    assert.equal(value, `v=DKIM1; k=rsa; p=${P}`);
    const p = parseTagList(value).get('p')!;
    const parsed = createPublicKey({ key: Buffer.from(p, 'base64'), format: 'der', type: 'spki' });
    assert.equal(parsed.asymmetricKeyType, 'rsa');
    assert.equal(parsed.asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(keyTypeOf('ed25519-sha256'), 'ed25519');
    assert.equal(publicRecord({ algorithm: 'ed25519-sha256', publicKey: 'AAAA' }), 'v=DKIM1; k=ed25519; p=AAAA');
  });

  test('txtStrings splits at 255 characters and joins back to the value (RFC 1035 §3.3.14)', () => {
    const value = publicRecord(KEY);
    assert.ok(value.length > 255, 'an RSA-2048 record needs more than one string');
    const parts = txtStrings(value);
    assert.equal(parts.length, Math.ceil(value.length / 255));
    assert.ok(parts.every((s) => s.length <= 255 && s.length > 0));
    assert.equal(parts[0].length, 255);
    assert.equal(parts.join(''), value);
    assert.deepEqual(txtStrings('x'.repeat(255)), ['x'.repeat(255)]);
    assert.deepEqual(txtStrings('x'.repeat(256)), ['x'.repeat(255), 'x']);
    assert.deepEqual(txtStrings(''), ['']);
  });

  test('selectorFor: mr<yyyymm> in UTC, suffixed when the month\'s selector is taken', () => {
    const jan = Date.UTC(2025, 0, 31, 23, 59);
    assert.equal(selectorFor(jan), 'mr202501');
    assert.equal(selectorFor(Date.UTC(2025, 11, 1)), 'mr202512');
    assert.equal(selectorFor(jan, ['mr202501']), 'mr202501-2');
    assert.equal(selectorFor(jan, ['mr202501', 'mr202501-2']), 'mr202501-3');
    assert.equal(selectorFor(jan, ['mr202412']), 'mr202501');
  });
});

describe('parseTagList (RFC 6376 §3.2)', () => {
  test('whitespace around names and values, empty parts, first occurrence wins', () => {
    const tags = parseTagList(' v = DKIM1 ;k=rsa;; p=AB CD ; p=other;junk');
    assert.equal(tags.get('v'), 'DKIM1');
    assert.equal(tags.get('k'), 'rsa');
    assert.equal(tags.get('p'), 'AB CD');
    assert.equal(tags.size, 3);
  });
});
