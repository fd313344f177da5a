/**
 * SPF, DKIM, DMARC and ARC verification against a real DNS server on loopback serving test zones
 * (TEST-PEERS.md "DNS"): keys are generated per run, published as TXT records, and messages are
 * signed with mailauth's signer and sealer, so every check runs through real DNS and real
 * cryptography.
 */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate } from 'mailauth';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { createResolver, type DnsResolver } from '../../src/dns/index.js';
import { verifyMessage, parseAuthResults, GRACE_MS, type EmailAuthResult, type ParsedAuthResults } from '../../src/emailauth/index.js';
import type { EmailAuthConfig } from '../../src/config/sections/emailauth.js';
import { dnsConfig, ed25519Key, emailAuthConfig, memorySource, message, rsaKey, sign, stalledSource, type DkimKey } from '../fixtures/emailauth/world.js';

const RECEIVER = 'mx.receiver.test';
const LISTED_IP = '192.0.2.10';
const OTHER_IP = '198.51.100.7';

let dns: TestDnsServer;
let resolver: DnsResolver;
let rsa: DkimKey;
let ed: DkimKey;
let arcKey: DkimKey;

interface Envelope {
  ip?: string;
  mailFrom?: string | null;
  helo?: string;
  config?: EmailAuthConfig;
  random?: () => number;
  resolver?: DnsResolver;
}

function verify(msg: string, env: Envelope = {}): Promise<EmailAuthResult> {
  return verifyMessage(
    {
      source: memorySource(msg),
      remoteAddress: env.ip ?? LISTED_IP,
      helo: env.helo ?? 'mail.example.test',
      mailFrom: env.mailFrom === undefined ? 'alice@example.test' : env.mailFrom,
      receiverHostname: RECEIVER,
    },
    { resolver: env.resolver ?? resolver, config: env.config ?? emailAuthConfig(), random: env.random },
  );
}

/** The header, checked for line length and parsed back. */
function parsedHeader(result: EmailAuthResult): ParsedAuthResults {
  const { header } = result;
  assert.match(header, /^Authentication-Results: /);
  assert.ok(header.endsWith('\r\n'), 'ends with CRLF');
  for (const line of header.slice(0, -2).split('\r\n')) assert.ok(line.length <= 78, `line over 78 characters: ${JSON.stringify(line)}`);
  const value = header.slice('Authentication-Results:'.length).replace(/\r\n(?=[ \t])/g, '');
  const parsed = parseAuthResults(value);
  assert.ok(parsed, `header parses: ${header}`);
  assert.equal(parsed.authservId, RECEIVER);
  return parsed;
}

function methodResults(result: EmailAuthResult): string[] {
  return parsedHeader(result).results.map((r) => `${r.method}=${r.result}`);
}

function property(result: EmailAuthResult, method: string, name: string): string | undefined {
  const [ptype, prop] = name.split('.');
  return parsedHeader(result)
    .results.find((r) => r.method === method)
    ?.properties.find((p) => p.ptype === ptype && p.property === prop)?.value;
}

function publishBase(): void {
  dns.zones.clear();
  dns.failures.clear();
  dns.down = false;
  dns.set('example.test', { TXT: [`v=spf1 ip4:${LISTED_IP} -all`], MX: [{ priority: 10, exchange: 'mx.example.test' }] });
  dns.set('rsa._domainkey.example.test', { TXT: [rsa.txt] });
  dns.set('ed._domainkey.example.test', { TXT: [ed.txt] });
  dns.set('_dmarc.example.test', { TXT: ['v=DMARC1; p=reject'] });
  dns.set('arc._domainkey.forwarder.test', { TXT: [arcKey.txt] });
  dns.set('forwarder.test', { TXT: ['v=spf1 ip4:203.0.113.5 -all'] });
}

before(async () => {
  dns = await startDnsServer();
  resolver = createResolver(dnsConfig(dns.address));
  rsa = rsaKey(2048);
  ed = ed25519Key();
  arcKey = rsaKey(2048);
});

after(async () => {
  await dns.close();
});

beforeEach(() => publishBase());

describe('DKIM (RFC 6376, RFC 8463)', () => {
  test('RSA-2048 signature passes', async () => {
    const r = await verify(await sign(message(), 'example.test', 'rsa', rsa));
    assert.deepEqual(r.dkim, [{ result: 'pass', domain: 'example.test', selector: 'rsa' }]);
    assert.equal(property(r, 'dkim', 'header.d'), 'example.test');
    assert.equal(property(r, 'dkim', 'header.s'), 'rsa');
    assert.equal(property(r, 'dkim', 'header.a'), 'rsa-sha256');
    assert.equal(property(r, 'dkim', 'header.b')?.length, 8);
  });

  test('Ed25519 signature passes', async () => {
    const r = await verify(await sign(message(), 'example.test', 'ed', ed));
    assert.deepEqual(r.dkim, [{ result: 'pass', domain: 'example.test', selector: 'ed' }]);
    assert.equal(property(r, 'dkim', 'header.a'), 'ed25519-sha256');
  });

  test('both signatures are reported, each with its own result', async () => {
    const signed = await sign(await sign(message(), 'example.test', 'rsa', rsa), 'example.test', 'ed', ed);
    const r = await verify(signed);
    assert.deepEqual(r.dkim.map((d) => `${d.selector}=${d.result}`).sort(), ['ed=pass', 'rsa=pass']);
    assert.deepEqual(methodResults(r).filter((m) => m.startsWith('dkim')), ['dkim=pass', 'dkim=pass']);
  });

  test('a body changed after signing fails', async () => {
    const signed = await sign(message({ body: 'Pay invoice 1001.\r\n' }), 'example.test', 'rsa', rsa);
    const r = await verify(signed.replace('invoice 1001', 'invoice 6666'));
    assert.equal(r.dkim[0].result, 'fail');
    assert.ok(methodResults(r).includes('dkim=fail'));
  });

  test('a signed header changed after signing fails', async () => {
    const signed = await sign(message({ subject: 'Lunch' }), 'example.test', 'ed', ed);
    const r = await verify(signed.replace('Subject: Lunch', 'Subject: Wire transfer'));
    assert.equal(r.dkim[0].result, 'fail');
  });

  test('a key missing from DNS gives neutral (no key), not pass', async () => {
    dns.remove('rsa._domainkey.example.test');
    const r = await verify(await sign(message(), 'example.test', 'rsa', rsa));
    assert.equal(r.dkim[0].result, 'neutral');
  });

  test('an RSA key shorter than min_rsa_key_bits is not trusted (policy)', async () => {
    const small = rsaKey(1024);
    dns.set('small._domainkey.example.test', { TXT: [small.txt] });
    const r = await verify(await sign(message(), 'example.test', 'small', small), { config: emailAuthConfig({ min_rsa_key_bits: 2048 }) });
    assert.equal(r.dkim[0].result, 'policy');
  });

  test('an unsigned message reports dkim=none and an empty list', async () => {
    const r = await verify(message());
    assert.deepEqual(r.dkim, []);
    assert.ok(methodResults(r).includes('dkim=none'));
  });
});

describe('SPF (RFC 7208)', () => {
  test('the listed IP passes', async () => {
    const r = await verify(message());
    assert.deepEqual(r.spf, { result: 'pass', domain: 'example.test' });
    assert.equal(property(r, 'spf', 'smtp.mailfrom'), 'alice@example.test');
    assert.equal(property(r, 'spf', 'smtp.helo'), 'mail.example.test');
  });

  test('another IP fails under -all', async () => {
    const r = await verify(message(), { ip: OTHER_IP });
    assert.equal(r.spf.result, 'fail');
  });

  test('another IP soft-fails under ~all', async () => {
    dns.set('example.test', { TXT: [`v=spf1 ip4:${LISTED_IP} ~all`] });
    const r = await verify(message(), { ip: OTHER_IP });
    assert.equal(r.spf.result, 'softfail');
    assert.ok(methodResults(r).includes('spf=softfail'));
  });

  test('include: follows the included domain', async () => {
    dns.set('example.test', { TXT: ['v=spf1 include:_spf.provider.test -all'] });
    dns.set('_spf.provider.test', { TXT: ['v=spf1 ip4:198.51.100.0/24 -all'] });
    assert.equal((await verify(message(), { ip: OTHER_IP })).spf.result, 'pass');
    assert.equal((await verify(message(), { ip: '203.0.113.99' })).spf.result, 'fail');
  });

  test('a record longer than 255 bytes (several character-strings) is joined before parsing', async () => {
    const filler = Array.from({ length: 20 }, (_, i) => `ip4:10.${i}.0.0/16`).join(' ');
    const record = `v=spf1 ${filler} ip4:${OTHER_IP} -all`;
    assert.ok(Buffer.byteLength(record) > 255, 'the record needs more than one character-string');
    dns.set('example.test', { TXT: [record] });
    assert.equal((await verify(message(), { ip: OTHER_IP })).spf.result, 'pass');
    assert.equal((await verify(message(), { ip: '203.0.113.99' })).spf.result, 'fail');
  });

  test('IPv6 and IPv4-mapped client addresses', async () => {
    dns.set('example.test', { TXT: ['v=spf1 ip6:2001:db8::/32 ip4:192.0.2.10 -all'] });
    assert.equal((await verify(message(), { ip: '2001:db8::25' })).spf.result, 'pass');
    assert.equal((await verify(message(), { ip: '::ffff:192.0.2.10' })).spf.result, 'pass');
    assert.equal((await verify(message(), { ip: '2001:db9::25' })).spf.result, 'fail');
  });

  test('the null sender is checked against the HELO identity (RFC 7208 §2.4)', async () => {
    dns.set('mail.example.test', { TXT: [`v=spf1 ip4:${LISTED_IP} -all`] });
    const r = await verify(message(), { mailFrom: null });
    assert.deepEqual(r.spf, { result: 'pass', domain: 'mail.example.test' });
    assert.equal(property(r, 'spf', 'smtp.mailfrom'), undefined);
    assert.equal(property(r, 'spf', 'smtp.helo'), 'mail.example.test');
  });

  test('no SPF record gives none', async () => {
    dns.set('example.test', { MX: [{ priority: 10, exchange: 'mx.example.test' }] });
    assert.equal((await verify(message())).spf.result, 'none');
  });
});

describe('DMARC (RFC 7489) and the disposition', () => {
  test('passes by aligned DKIM while SPF fails', async () => {
    const r = await verify(await sign(message(), 'example.test', 'rsa', rsa), { ip: OTHER_IP });
    assert.equal(r.spf.result, 'fail');
    assert.deepEqual(r.dmarc, { result: 'pass', policy: 'reject', domain: 'example.test' });
    assert.equal(r.disposition, 'accept');
    assert.equal(property(r, 'dmarc', 'header.from'), 'example.test');
  });

  test('a DKIM signature of another domain does not align', async () => {
    const other = rsaKey(2048);
    dns.set('s._domainkey.mailer.test', { TXT: [other.txt] });
    const r = await verify(await sign(message(), 'mailer.test', 's', other), { ip: OTHER_IP });
    assert.equal(r.dkim[0].result, 'pass');
    assert.equal(r.dmarc.result, 'fail');
    assert.equal(r.disposition, 'reject');
  });

  test('fails with p=reject → reject', async () => {
    const r = await verify(message(), { ip: OTHER_IP });
    assert.deepEqual(r.dmarc, { result: 'fail', policy: 'reject', domain: 'example.test' });
    assert.equal(r.disposition, 'reject');
    const dmarc = parsedHeader(r).results.find((x) => x.method === 'dmarc');
    assert.deepEqual(dmarc?.comments, ['p=reject dis=reject']);
  });

  test('fails with p=quarantine → quarantine', async () => {
    dns.set('_dmarc.example.test', { TXT: ['v=DMARC1; p=quarantine'] });
    const r = await verify(message(), { ip: OTHER_IP });
    assert.equal(r.dmarc.policy, 'quarantine');
    assert.equal(r.disposition, 'quarantine');
  });

  test('fails with p=none → accept', async () => {
    dns.set('_dmarc.example.test', { TXT: ['v=DMARC1; p=none'] });
    const r = await verify(message(), { ip: OTHER_IP });
    assert.deepEqual(r.dmarc, { result: 'fail', policy: 'none', domain: 'example.test' });
    assert.equal(r.disposition, 'accept');
  });

  test('pct=0 never rejects: the policy steps down to quarantine (RFC 7489 §6.6.4)', async () => {
    dns.set('_dmarc.example.test', { TXT: ['v=DMARC1; p=reject; pct=0'] });
    for (const random of [() => 0, () => 0.5, () => 0.999999]) {
      const r = await verify(message(), { ip: OTHER_IP, random });
      assert.equal(r.dmarc.result, 'fail');
      assert.equal(r.disposition, 'quarantine');
    }
    const noQuarantine = emailAuthConfig({ dmarc: { quarantine: false } });
    assert.equal((await verify(message(), { ip: OTHER_IP, config: noQuarantine })).disposition, 'accept');
  });

  test('pct=50 applies the policy to the sampled half', async () => {
    dns.set('_dmarc.example.test', { TXT: ['v=DMARC1; p=reject; pct=50'] });
    assert.equal((await verify(message(), { ip: OTHER_IP, random: () => 0.49 })).disposition, 'reject');
    assert.equal((await verify(message(), { ip: OTHER_IP, random: () => 0.5 })).disposition, 'quarantine');
  });

  test('sp= applies to a sub-domain of the organisational domain', async () => {
    dns.set('_dmarc.example.test', { TXT: ['v=DMARC1; p=none; sp=reject'] });
    dns.set('news.example.test', { TXT: [`v=spf1 ip4:${LISTED_IP} -all`] });
    const sub = await verify(message({ from: 'alice@news.example.test' }), { ip: OTHER_IP, mailFrom: 'alice@news.example.test' });
    assert.deepEqual(sub.dmarc, { result: 'fail', policy: 'reject', domain: 'news.example.test' });
    assert.equal(sub.disposition, 'reject');
    const org = await verify(message(), { ip: OTHER_IP });
    assert.deepEqual(org.dmarc, { result: 'fail', policy: 'none', domain: 'example.test' });
    assert.equal(org.disposition, 'accept');
  });

  test('a record of the sub-domain itself wins over the organisational sp=', async () => {
    dns.set('_dmarc.example.test', { TXT: ['v=DMARC1; p=reject; sp=reject'] });
    dns.set('_dmarc.news.example.test', { TXT: ['v=DMARC1; p=none'] });
    const r = await verify(message({ from: 'alice@news.example.test' }), { ip: OTHER_IP, mailFrom: 'alice@news.example.test' });
    assert.equal(r.dmarc.policy, 'none');
    assert.equal(r.disposition, 'accept');
  });

  test('enforce_reject: false quarantines instead of rejecting', async () => {
    const r = await verify(message(), { ip: OTHER_IP, config: emailAuthConfig({ dmarc: { enforce_reject: false } }) });
    assert.equal(r.disposition, 'quarantine');
    const none = await verify(message(), { ip: OTHER_IP, config: emailAuthConfig({ dmarc: { enforce_reject: false, quarantine: false } }) });
    assert.equal(none.disposition, 'accept');
  });

  test('quarantine: false delivers p=quarantine failures normally', async () => {
    dns.set('_dmarc.example.test', { TXT: ['v=DMARC1; p=quarantine'] });
    const r = await verify(message(), { ip: OTHER_IP, config: emailAuthConfig({ dmarc: { quarantine: false } }) });
    assert.equal(r.disposition, 'accept');
  });

  test('no DMARC record gives none and accept', async () => {
    dns.remove('_dmarc.example.test');
    const r = await verify(message(), { ip: OTHER_IP });
    assert.deepEqual(r.dmarc, { result: 'none', policy: null, domain: 'example.test' });
    assert.equal(r.disposition, 'accept');
  });
});

describe('DNS trouble is never a reason to refuse mail', () => {
  test('DNS server not answering → temperror for every check, disposition accept, within the bound', async () => {
    const signed = await sign(message(), 'example.test', 'rsa', rsa);
    dns.down = true;
    const slowResolver = createResolver(dnsConfig(dns.address, { timeout_ms: 3000, tries: 1 }));
    const config = emailAuthConfig({ timeout_ms: 700 });
    const started = Date.now();
    const r = await verify(signed, { ip: OTHER_IP, resolver: slowResolver, config });
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 700 + GRACE_MS + 2000, `took ${elapsed} ms`);
    assert.equal(r.spf.result, 'temperror');
    assert.equal(r.dkim[0].result, 'temperror');
    assert.equal(r.dmarc.result, 'temperror');
    assert.equal(r.disposition, 'accept');
    const results = methodResults(r);
    assert.deepEqual(results, ['spf=temperror', 'dkim=temperror', 'dmarc=temperror', 'arc=none']);
  });

  test('resolver timeouts shorter than the bound also end in temperror', async () => {
    dns.down = true;
    const r = await verify(message(), { ip: OTHER_IP, resolver: createResolver(dnsConfig(dns.address, { timeout_ms: 200, tries: 1 })) });
    assert.equal(r.spf.result, 'temperror');
    assert.equal(r.dmarc.result, 'temperror');
    assert.equal(r.disposition, 'accept');
  });

  test('only the DMARC lookup timing out: SPF fail is real, DMARC temperror, accepted', async () => {
    dns.fail('_dmarc.example.test', 'drop');
    const r = await verify(message(), { ip: OTHER_IP });
    assert.equal(r.spf.result, 'fail');
    assert.equal(r.dmarc.result, 'temperror');
    assert.equal(r.disposition, 'accept');
  });

  test('SERVFAIL for the DMARC record → temperror, accepted', async () => {
    dns.fail('_dmarc.example.test', 'servfail');
    const r = await verify(message(), { ip: OTHER_IP });
    assert.equal(r.dmarc.result, 'temperror');
    assert.equal(r.disposition, 'accept');
  });

  test('a message stream that stalls → everything temperror after the bound, not a hang', async () => {
    const started = Date.now();
    const warnings: string[] = [];
    const r = await verifyMessage(
      { source: stalledSource(message()), remoteAddress: OTHER_IP, helo: 'mail.example.test', mailFrom: 'alice@example.test', receiverHostname: RECEIVER },
      { resolver, config: emailAuthConfig({ timeout_ms: 300 }), logger: { warn: (_obj, msg) => warnings.push(msg) } },
    );
    assert.deepEqual(warnings, ['email authentication timed out']);
    assert.ok(Date.now() - started < 300 + GRACE_MS + 2000);
    assert.deepEqual(methodResults(r), ['spf=temperror', 'dkim=temperror', 'dmarc=temperror', 'arc=temperror']);
    assert.equal(r.disposition, 'accept');
    assert.equal(parsedHeader(r).results[0].comments[0], 'verification timed out');
  });
});

describe('ARC (RFC 8617)', () => {
  /** A forwarder receives the signed message, authenticates it and seals it with its own ARC key. */
  async function forwardSealed(original: string): Promise<string> {
    const sealed = await authenticate(original, {
      ip: LISTED_IP,
      helo: 'mail.example.test',
      sender: 'alice@example.test',
      mta: 'mx.forwarder.test',
      resolver: ((name: string, type: string) => resolver.resolve(name, type)) as never,
      disableBimi: true,
      seal: { signingDomain: 'forwarder.test', selector: 'arc', privateKey: arcKey.privateKeyPem },
    });
    assert.match(sealed.headers, /^ARC-Seal: /m);
    return sealed.headers + original;
  }

  test('a valid ARC set passes; DMARC still passes by the original DKIM signature', async () => {
    const forwarded = await forwardSealed(await sign(message(), 'example.test', 'rsa', rsa));
    const r = await verify(forwarded, { ip: '203.0.113.5', mailFrom: 'bounces@forwarder.test', helo: 'mx.forwarder.test' });
    assert.equal(r.arc.result, 'pass');
    assert.equal(r.spf.result, 'pass');
    assert.equal(r.dmarc.result, 'pass');
    const arc = parsedHeader(r).results.find((x) => x.method === 'arc');
    assert.deepEqual(arc?.comments, ['i=1']);
  });

  test('a message changed after sealing fails ARC', async () => {
    const forwarded = await forwardSealed(await sign(message({ body: 'Original text.\r\n' }), 'example.test', 'rsa', rsa));
    const r = await verify(forwarded.replace('Original text.', 'Changed text.'), { ip: '203.0.113.5', mailFrom: 'bounces@forwarder.test' });
    assert.equal(r.arc.result, 'fail');
    assert.equal(r.dkim[0].result, 'fail');
  });

  test('an unsealed message gives arc=none', async () => {
    const r = await verify(message());
    assert.equal(r.arc.result, 'none');
    assert.ok(methodResults(r).includes('arc=none'));
  });

  test('with ARC verification off, arc is not reported', async () => {
    const r = await verify(message(), { config: emailAuthConfig({ arc: false }) });
    assert.deepEqual(methodResults(r), ['spf=pass', 'dkim=none', 'dmarc=pass']);
  });
});

describe('the Authentication-Results header', () => {
  test('lists spf, dkim, dmarc, arc in that order under our authserv-id, every line ≤ 78', async () => {
    const r = await verify(await sign(message(), 'example.test', 'rsa', rsa));
    assert.deepEqual(methodResults(r), ['spf=pass', 'dkim=pass', 'dmarc=pass', 'arc=none']);
    assert.match(r.header, /^Authentication-Results: mx\.receiver\.test;\r\n spf=pass /);
  });

  test('a hostile envelope cannot inject header lines or break the structure', async () => {
    const r = await verify(message(), { mailFrom: 'x"; dkim=pass\r\nX-Evil: 1@example.test', helo: 'h (dkim=pass) \r\nX: y' });
    assert.doesNotMatch(r.header, /\r\n[^ ]/, 'every line after the first is a continuation');
    assert.doesNotMatch(r.header, /\nX-Evil|\nX:/);
    const parsed = parsedHeader(r);
    assert.deepEqual(
      parsed.results.map((x) => x.method),
      ['spf', 'dkim', 'dmarc', 'arc'],
    );
    assert.equal(parsed.results.filter((x) => x.method === 'dkim').length, 1);
  });

  test('disabled verification adds no header and accepts', async () => {
    const r = await verify(message(), { ip: OTHER_IP, config: emailAuthConfig({ enabled: false }) });
    assert.equal(r.header, '');
    assert.equal(r.disposition, 'accept');
  });
});
