/**
 * Destination routing (SPEC §3.3, §5.2) against a real DNS server on loopback, and MTA-STS
 * (RFC 8461) against a real HTTPS server with a certificate the cache is told to trust.
 * Needs no database: the same in both shapes.
 */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Value } from '@sinclair/typebox/value';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { createResolver, type DnsResolver } from '../../src/dns/index.js';
import { OutboundConfigSchema, type OutboundConfig } from '../../src/config/sections/outbound.js';
import { createSelfSignedCertificate } from '../../src/protocols/net/self-signed.js';
import { createDestinationResolver } from '../../src/outbound/routing/resolve-destination.js';
import { createMtaStsCache, lookupPolicyId, mxMatchesPolicy, type MtaStsCache } from '../../src/outbound/routing/mta-sts.js';
import type { Destination, DestinationHost } from '../../src/outbound/types.js';

function baseConfig(over: Partial<OutboundConfig> = {}): OutboundConfig {
  const cfg = Value.Default(OutboundConfigSchema, {}) as OutboundConfig;
  return { ...cfg, port: 2525, mta_sts: false, ...over };
}

function hostsOf(d: Destination): DestinationHost[] {
  assert.equal(d.kind, 'hosts', `expected hosts, got ${JSON.stringify(d)}`);
  return (d as Extract<Destination, { kind: 'hosts' }>).hosts;
}

let dns: TestDnsServer;
let resolver: DnsResolver;

before(async () => {
  dns = await startDnsServer({
    'pref.test': { MX: [{ priority: 20, exchange: 'mx2.pref.test' }, { priority: 10, exchange: 'mx1.pref.test' }, { priority: 30, exchange: 'gone.pref.test' }] },
    'mx1.pref.test': { A: ['192.0.2.1'], AAAA: ['2001:db8::1'] },
    'mx2.pref.test': { A: ['192.0.2.2'] },
    'ties.test': {
      MX: [
        { priority: 10, exchange: 'a.ties.test' },
        { priority: 10, exchange: 'b.ties.test' },
        { priority: 10, exchange: 'c.ties.test' },
        { priority: 50, exchange: 'z.ties.test' },
      ],
    },
    'a.ties.test': { A: ['192.0.2.11'] },
    'b.ties.test': { A: ['192.0.2.12'] },
    'c.ties.test': { A: ['192.0.2.13'] },
    'z.ties.test': { A: ['192.0.2.19'] },
    'nullmx.test': { MX: [{ priority: 0, exchange: '.' }], A: ['192.0.2.30'] },
    'plain.test': { A: ['192.0.2.40'], AAAA: ['2001:db8::40'] },
    'nothing.test': { TXT: ['v=spf1 -all'] },
    'deadmx.test': { MX: [{ priority: 10, exchange: 'nowhere.deadmx.test' }] },
    'literalmx.test': { MX: [{ priority: 10, exchange: '192.0.2.50' }] },
    'halfbroken.test': { MX: [{ priority: 10, exchange: 'sick.halfbroken.test' }, { priority: 20, exchange: 'ok.halfbroken.test' }] },
    'ok.halfbroken.test': { A: ['192.0.2.60'] },
    'relay.example.test': { A: ['192.0.2.70'] },
    'tls.test': { MX: [{ priority: 10, exchange: 'mx.tls.test' }] },
    'mx.tls.test': { A: ['192.0.2.80'] },
  });
  dns.fail('sick.halfbroken.test', 'servfail');
  dns.fail('servfail.test', 'servfail');
  dns.fail('timeout.test', 'drop');
  // No answer cache: the tests change zones between lookups.
  resolver = createResolver({ servers: [dns.address], timeout_ms: 300, tries: 1, cache_ttl_seconds: 0, negative_cache_ttl_seconds: 0, cache_max_entries: 100 });
});

after(async () => {
  await dns.close();
});

describe('MX routing', () => {
  test('MX hosts in preference order, IPv6 before IPv4, the configured port; a host without addresses is skipped', async () => {
    const r = createDestinationResolver({ resolver, config: () => baseConfig(), mtaSts: null });
    const d = await r.resolve('Pref.TEST.');
    assert.equal(d.kind, 'hosts');
    assert.equal(d.domain, 'pref.test');
    const hosts = hostsOf(d);
    assert.deepEqual(
      hosts.map((h) => [h.host, h.preference, h.addresses]),
      [
        ['mx1.pref.test', 10, ['2001:db8::1', '192.0.2.1']],
        ['mx2.pref.test', 20, ['192.0.2.2']],
      ],
    );
    for (const h of hosts) {
      assert.equal(h.port, 2525);
      assert.equal(h.source, 'mx');
      assert.equal(h.tls, 'opportunistic');
      assert.equal(h.verifyCertificate, false);
      assert.equal(h.auth, undefined);
    }
    assert.deepEqual((d as Extract<Destination, { kind: 'hosts' }>).mtaSts, { mode: 'none' });
  });

  test('equal preferences are shuffled; a higher preference always comes after', async () => {
    const orders = new Set<string>();
    for (const seq of [[0, 0], [0.99, 0.99], [0.5, 0.1], [0.1, 0.9]]) {
      let i = 0;
      const r = createDestinationResolver({ resolver, config: () => baseConfig(), mtaSts: null, random: () => seq[i++ % seq.length] });
      const hosts = hostsOf(await r.resolve('ties.test'));
      assert.equal(hosts.length, 4);
      assert.equal(hosts[3].host, 'z.ties.test', 'preference 50 stays last');
      assert.deepEqual(hosts.slice(0, 3).map((h) => h.host).sort(), ['a.ties.test', 'b.ties.test', 'c.ties.test']);
      orders.add(hosts.slice(0, 3).map((h) => h.host).join(','));
    }
    assert.ok(orders.size >= 3, `the tie group came out in different orders: ${[...orders].join(' | ')}`);
    // And with the default random source, over many runs, each tie host leads at least once.
    const r = createDestinationResolver({ resolver, config: () => baseConfig(), mtaSts: null });
    const leaders = new Set<string>();
    for (let n = 0; n < 40 && leaders.size < 3; n++) leaders.add(hostsOf(await r.resolve('ties.test'))[0].host);
    assert.equal(leaders.size, 3);
  });

  test('RFC 7505 null MX: the domain accepts no mail, whatever A records it has', async () => {
    const r = createDestinationResolver({ resolver, config: () => baseConfig(), mtaSts: null });
    assert.deepEqual(await r.resolve('nullmx.test'), { kind: 'null-mx', domain: 'nullmx.test' });
  });

  test('no MX records: the implicit MX is the domain itself (AAAA then A)', async () => {
    const r = createDestinationResolver({ resolver, config: () => baseConfig(), mtaSts: null });
    const hosts = hostsOf(await r.resolve('plain.test'));
    assert.deepEqual(hosts, [
      { host: 'plain.test', port: 2525, preference: 0, addresses: ['2001:db8::40', '192.0.2.40'], tls: 'opportunistic', verifyCertificate: false, source: 'a' },
    ]);
  });

  test('permanent errors: NXDOMAIN, no MX and no address, MX hosts without addresses, MX naming an IP', async () => {
    const r = createDestinationResolver({ resolver, config: () => baseConfig(), mtaSts: null });
    const cases: [string, RegExp][] = [
      ['doesnotexist.test', /does not exist/],
      ['nothing.test', /no MX and no A\/AAAA/],
      ['deadmx.test', /no MX host .* has an address/],
      ['literalmx.test', /IP addresses, not hosts/],
    ];
    for (const [domain, why] of cases) {
      const d = await r.resolve(domain);
      assert.equal(d.kind, 'error', domain);
      if (d.kind !== 'error') continue;
      assert.equal(d.temporary, false, `${domain} is permanent`);
      assert.match(d.message, why);
    }
  });

  test('temporary errors: SERVFAIL and a server that does not answer', async () => {
    const r = createDestinationResolver({ resolver, config: () => baseConfig(), mtaSts: null });
    for (const domain of ['servfail.test', 'timeout.test']) {
      const started = Date.now();
      const d = await r.resolve(domain);
      assert.equal(d.kind, 'error', domain);
      if (d.kind !== 'error') continue;
      assert.equal(d.temporary, true, `${domain} is temporary`);
      assert.match(d.message, /MX lookup for .* failed/);
      assert.ok(Date.now() - started < 10_000, 'answered within a generous bound');
    }
  });

  test('an MX host whose lookup fails is left out when another host resolves; alone it is a temporary error', async () => {
    const r = createDestinationResolver({ resolver, config: () => baseConfig(), mtaSts: null });
    assert.deepEqual(hostsOf(await r.resolve('halfbroken.test')).map((h) => h.host), ['ok.halfbroken.test']);
    dns.set('sickonly.test', { MX: [{ priority: 10, exchange: 'sick.halfbroken.test' }] });
    const d = await r.resolve('sickonly.test');
    assert.equal(d.kind, 'error');
    assert.equal(d.kind === 'error' && d.temporary, true);
  });

  test('address literals go straight to the address', async () => {
    const r = createDestinationResolver({ resolver, config: () => baseConfig(), mtaSts: null });
    assert.deepEqual(hostsOf(await r.resolve('[192.0.2.99]')).map((h) => [h.host, h.addresses]), [['192.0.2.99', ['192.0.2.99']]]);
    assert.deepEqual(hostsOf(await r.resolve('[IPv6:2001:DB8::9]')).map((h) => h.addresses), [['2001:db8::9']]);
  });

  test('require_tls_domains: required TLS for listed domains only (read per call)', async () => {
    let cfg = baseConfig();
    const r = createDestinationResolver({ resolver, config: () => cfg, mtaSts: null });
    assert.equal(hostsOf(await r.resolve('tls.test'))[0].tls, 'opportunistic');
    cfg = baseConfig({ require_tls_domains: ['TLS.test'] });
    const [h] = hostsOf(await r.resolve('tls.test'));
    assert.equal(h.tls, 'required');
    assert.equal(h.verifyCertificate, false, 'required STARTTLS is not certificate verification');
    assert.equal(hostsOf(await r.resolve('pref.test'))[0].tls, 'opportunistic');
  });
});

describe('static routes', () => {
  const routes: OutboundConfig['routes'] = [
    { domain: 'Partner.Test', host: '127.0.0.1', port: 2526, tls: 'none', auth_user: '', auth_password: '' },
    { domain: 'named.test', host: 'relay.example.test', port: 587, tls: 'opportunistic', auth_user: '', auth_password: '' },
    { domain: '*', host: 'relay.example.test', port: 465, tls: 'implicit', auth_user: 'relay-user', auth_password: 's3cret' },
  ];

  test('an exact route (case-insensitive) wins over the smarthost; an IP host needs no DNS', async () => {
    const r = createDestinationResolver({ resolver, config: () => baseConfig({ routes: [routes[0]] }), mtaSts: null });
    const before = dns.queries.length;
    const d = await r.resolve('partner.TEST');
    assert.deepEqual(hostsOf(d), [{ host: '127.0.0.1', port: 2526, preference: 0, addresses: ['127.0.0.1'], tls: 'none', verifyCertificate: false, source: 'route' }]);
    assert.equal(dns.queries.length, before, 'no DNS query for a route to an IP');
    // Other domains still use MX.
    assert.equal(hostsOf(await r.resolve('pref.test'))[0].source, 'mx');
  });

  test('a route to a host name resolves it; require_tls_domains makes an opportunistic route required', async () => {
    const r = createDestinationResolver({ resolver, config: () => baseConfig({ routes: [routes[1]], require_tls_domains: ['named.test'] }), mtaSts: null });
    const [h] = hostsOf(await r.resolve('named.test'));
    assert.deepEqual([h.host, h.port, h.addresses, h.tls, h.verifyCertificate, h.source], ['relay.example.test', 587, ['192.0.2.70'], 'required', false, 'route']);
    assert.equal(dns.queryCount('named.test', 'MX'), 0, 'a routed domain is not looked up');
  });

  test('smarthost with auth: every other domain, verified TLS, credentials from the route', async () => {
    const r = createDestinationResolver({ resolver, config: () => baseConfig({ routes }), mtaSts: null });
    for (const domain of ['pref.test', 'doesnotexist.test', '[192.0.2.5]']) {
      const [h] = hostsOf(await r.resolve(domain));
      assert.equal(h.host, 'relay.example.test');
      assert.equal(h.port, 465);
      assert.equal(h.tls, 'implicit');
      assert.equal(h.verifyCertificate, true);
      assert.deepEqual(h.auth, { user: 'relay-user', password: 's3cret' });
      assert.equal(h.source, 'route');
    }
    assert.equal(hostsOf(await r.resolve('partner.test'))[0].host, '127.0.0.1', 'the exact route still wins');
  });

  test('a route host that does not resolve is a temporary error (a configuration problem, not a bounce)', async () => {
    const bad = { domain: '*', host: 'missing.example.test', port: 25, tls: 'opportunistic' as const, auth_user: '', auth_password: '' };
    const r = createDestinationResolver({ resolver, config: () => baseConfig({ routes: [bad] }), mtaSts: null });
    const d = await r.resolve('pref.test');
    assert.equal(d.kind, 'error');
    assert.equal(d.kind === 'error' && d.temporary, true);
    assert.match(d.kind === 'error' ? d.message : '', /missing\.example\.test/);
  });
});

describe('MTA-STS', () => {
  const pair = createSelfSignedCertificate('mta-sts.sts.test');
  /** Policy text served per Host header; absent = 404. */
  const policies = new Map<string, { status?: number; type?: string; body: string; hang?: boolean }>();
  const requests: string[] = [];
  let server: https.Server;
  let port: number;

  const policyText = (mode: string, mx: string[], maxAge = 86400) => `version: STSv1\r\nmode: ${mode}\r\n${mx.map((m) => `mx: ${m}\r\n`).join('')}max_age: ${maxAge}\r\n`;

  before(async () => {
    server = https.createServer({ key: pair.key, cert: pair.cert }, (req, res) => {
      const host = String(req.headers.host);
      requests.push(`${host}${req.url}`);
      const p = policies.get(host);
      if (!p || req.url !== '/.well-known/mta-sts.txt') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(p.status ?? 200, { 'content-type': p.type ?? 'text/plain; charset=utf-8', ...(p.status === 301 ? { location: 'https://elsewhere.test/' } : {}) });
      if (p.hang) res.write(p.body.slice(0, 10)); // headers and a little body, then nothing
      else res.end(p.body);
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(() => {
    requests.length = 0;
  });

  /** A domain with two MX hosts, its `_mta-sts` TXT record and its policy host on the HTTPS server. */
  function stsDomain(domain: string, id: string | null, policy: string | null): void {
    dns.set(domain, { MX: [{ priority: 5, exchange: `mx.other.test` }, { priority: 10, exchange: `mx1.${domain}` }, { priority: 20, exchange: `deep.mx.${domain}` }] });
    dns.set(`mx1.${domain}`, { A: ['192.0.2.101'] });
    dns.set(`deep.mx.${domain}`, { A: ['192.0.2.102'] });
    dns.set('mx.other.test', { A: ['192.0.2.103'] });
    if (id !== null) dns.set(`_mta-sts.${domain}`, { TXT: ['v=STSv1; id=' + id] });
    dns.set(`mta-sts.${domain}`, { A: ['127.0.0.1'] });
    if (policy !== null) policies.set(`mta-sts.${domain}`, { body: policy });
  }

  function setup(over: { now?: () => number; ca?: string[] } = {}): { cache: MtaStsCache; routing: ReturnType<typeof createDestinationResolver> } {
    const cache = createMtaStsCache({ resolver, port, ca: 'ca' in over ? over.ca : [pair.cert], now: over.now, timeoutMs: 3000 });
    const routing = createDestinationResolver({ resolver, config: () => baseConfig({ mta_sts: true }), mtaSts: cache });
    return { cache, routing };
  }

  // The server's certificate is for mta-sts.sts.test only; other domains' policy hosts get it too,
  // so tests that must succeed use sts.test or a certificate per name (see `certificate mismatch`).

  test('enforce: only MX hosts matching the policy, required and verified TLS', async () => {
    stsDomain('sts.test', 'id1', policyText('enforce', ['*.sts.test']));
    const { routing } = setup();
    const d = await routing.resolve('sts.test');
    const hosts = hostsOf(d);
    // mx.other.test is not named; deep.mx.sts.test is two labels below (the wildcard covers one, RFC 8461 §4.1).
    assert.deepEqual(hosts.map((h) => h.host), ['mx1.sts.test']);
    assert.equal(hosts[0].tls, 'required');
    assert.equal(hosts[0].verifyCertificate, true);
    assert.deepEqual((d as Extract<Destination, { kind: 'hosts' }>).mtaSts, { mode: 'enforce', id: 'id1' });
    assert.deepEqual(requests, ['mta-sts.sts.test/.well-known/mta-sts.txt']);
  });

  test('cache reuse: two resolves, one fetch; a changed TXT id refetches', async () => {
    stsDomain('sts.test', 'reuse1', policyText('enforce', ['mx1.sts.test']));
    const { routing, cache } = setup();
    await routing.resolve('sts.test');
    await routing.resolve('sts.test');
    assert.equal(requests.length, 1, 'the second resolve used the cached policy');
    // Concurrent lookups share one discovery too.
    cache.clear();
    await Promise.all([cache.get('sts.test'), cache.get('sts.test'), cache.get('STS.test.')]);
    assert.equal(requests.length, 2);

    stsDomain('sts.test', 'reuse2', policyText('testing', ['mx1.sts.test']));
    const d = await routing.resolve('sts.test');
    assert.equal(requests.length, 3, 'a new id means a new fetch');
    assert.deepEqual((d as Extract<Destination, { kind: 'hosts' }>).mtaSts, { mode: 'testing', id: 'reuse2' });
    assert.equal(hostsOf(d).length, 3, 'testing mode filters nothing');
    assert.ok(hostsOf(d).every((h) => h.tls === 'opportunistic' && !h.verifyCertificate), 'and enforces no TLS');
  });

  test('max_age: an expired policy is fetched again even with the same id', async () => {
    let clock = 1_000_000;
    stsDomain('sts.test', 'age1', policyText('enforce', ['mx1.sts.test'], 60));
    const { cache } = setup({ now: () => clock });
    assert.equal((await cache.get('sts.test'))?.maxAgeSeconds, 60);
    clock += 59_000;
    await cache.get('sts.test');
    assert.equal(requests.length, 1);
    clock += 2_000;
    await cache.get('sts.test');
    assert.equal(requests.length, 2);
  });

  test('a failed fetch keeps the cached unexpired policy (RFC 8461 §5.1); without one there is no policy', async () => {
    stsDomain('sts.test', 'keep1', policyText('enforce', ['mx1.sts.test']));
    const { routing } = setup();
    assert.equal(hostsOf(await routing.resolve('sts.test')).length, 1);
    // New id, but the policy host now fails.
    dns.set('_mta-sts.sts.test', { TXT: ['v=STSv1; id=keep2'] });
    policies.set('mta-sts.sts.test', { status: 500, body: 'oops' });
    const d = await routing.resolve('sts.test');
    assert.equal(requests.length, 2, 'the new id was tried');
    assert.deepEqual((d as Extract<Destination, { kind: 'hosts' }>).mtaSts, { mode: 'enforce', id: 'keep1' }, 'the old policy still applies');
    assert.deepEqual(hostsOf(d).map((h) => h.host), ['mx1.sts.test']);
    // The TXT record disappearing does not drop the cached policy either.
    dns.remove('_mta-sts.sts.test');
    assert.deepEqual(hostsOf(await routing.resolve('sts.test')).map((h) => h.host), ['mx1.sts.test']);

    // A fresh cache (another node) with the failing host: no policy, plain opportunistic delivery.
    dns.set('_mta-sts.sts.test', { TXT: ['v=STSv1; id=keep3'] });
    const fresh = setup();
    const d2 = await fresh.routing.resolve('sts.test');
    assert.deepEqual((d2 as Extract<Destination, { kind: 'hosts' }>).mtaSts, { mode: 'none' });
    assert.equal(hostsOf(d2).length, 3);
    const n = requests.length;
    await fresh.routing.resolve('sts.test');
    assert.equal(requests.length, n, 'a failed id is not refetched at every delivery');
  });

  test('enforce with no matching MX is a temporary error', async () => {
    stsDomain('sts.test', 'nomatch', policyText('enforce', ['mail.elsewhere.test']));
    const { routing } = setup();
    const d = await routing.resolve('sts.test');
    assert.equal(d.kind, 'error');
    if (d.kind !== 'error') return;
    assert.equal(d.temporary, true);
    assert.match(d.message, /MTA-STS policy nomatch .*enforce.* allows none of the MX hosts/);
  });

  test('untrusted certificate, redirect, wrong media type: no policy is taken', async () => {
    const cases: [string, { status?: number; type?: string }, string[] | undefined][] = [
      ['untrusted', {}, undefined],
      ['redirect', { status: 301 }, [pair.cert]],
      ['html', { type: 'text/html' }, [pair.cert]],
    ];
    for (const [id, how, ca] of cases) {
      stsDomain('sts.test', id, null);
      policies.set('mta-sts.sts.test', { ...how, body: policyText('enforce', ['mx1.sts.test']) });
      const cache = createMtaStsCache({ resolver, port, ca, timeoutMs: 3000 });
      assert.equal(await cache.get('sts.test'), null, id);
    }
  });

  test('a policy host that stalls mid-body is given up after the timeout; a body over 64 KiB is refused', async () => {
    stsDomain('sts.test', 'stall1', null);
    policies.set('mta-sts.sts.test', { hang: true, body: policyText('enforce', ['mx1.sts.test']) });
    const slow = createMtaStsCache({ resolver, port, ca: [pair.cert], timeoutMs: 400 });
    const started = Date.now();
    assert.equal(await slow.get('sts.test'), null);
    assert.ok(Date.now() - started < 5000, 'gave up within a generous bound of the 400 ms timeout');

    stsDomain('sts.test', 'big1', null);
    const big = policyText('enforce', ['mx1.sts.test']) + `# ${'x'.repeat(70 * 1024)}\r\n`;
    policies.set('mta-sts.sts.test', { body: big });
    const cache = createMtaStsCache({ resolver, port, ca: [pair.cert], timeoutMs: 3000 });
    assert.equal(await cache.get('sts.test'), null);
    // The same policy under 64 KiB is accepted (the refusal above was the size).
    stsDomain('sts.test', 'big2', null);
    policies.set('mta-sts.sts.test', { body: policyText('enforce', ['mx1.sts.test']) + `# ${'x'.repeat(60 * 1024)}\r\n` });
    assert.equal((await createMtaStsCache({ resolver, port, ca: [pair.cert], timeoutMs: 3000 }).get('sts.test'))?.id, 'big2');
  });

  test('the certificate must name mta-sts.<domain> (SNI and verification use the name, not the address)', async () => {
    // other.test's policy host is the same server, whose certificate is for mta-sts.sts.test.
    stsDomain('other-sts.test', 'x1', policyText('enforce', ['mx1.other-sts.test']));
    const { cache } = setup();
    assert.equal(await cache.get('other-sts.test'), null);
  });

  test('mta_sts: false in config skips the policy entirely', async () => {
    stsDomain('sts.test', 'off1', policyText('enforce', ['nothing.test']));
    const cache = createMtaStsCache({ resolver, port, ca: [pair.cert] });
    const routing = createDestinationResolver({ resolver, config: () => baseConfig({ mta_sts: false }), mtaSts: cache });
    assert.equal(hostsOf(await routing.resolve('sts.test')).length, 3);
    assert.equal(requests.length, 0);
  });

  test('TXT record parsing (RFC 8461 §3.1)', async () => {
    const cases: [(string | string[])[], string | null][] = [
      [['v=STSv1; id=20240101T00'], '20240101T00'],
      [['v=STSv1;id=abc123'], 'abc123'],
      [[['v=STSv1; ', 'id=split1']], 'split1'],
      [['v=STSv1; id=a', 'v=STSv1; id=b'], null],
      [['something else', 'v=STSv1; id=only'], 'only'],
      [['v=STSv1; id=has-dash'], null],
      [['v=STSv2; id=abc'], null],
    ];
    for (const [txt, want] of cases) {
      dns.set('_mta-sts.parse.test', { TXT: txt });
      const got = await lookupPolicyId(resolver, 'parse.test');
      assert.deepEqual(got, want === null ? { kind: 'none' } : { kind: 'id', id: want }, JSON.stringify(txt));
    }
    dns.fail('_mta-sts.parse.test', 'servfail');
    assert.equal((await lookupPolicyId(resolver, 'parse.test')).kind, 'error');
    dns.fail('_mta-sts.parse.test', null);
  });

  test('mx patterns: exact names and one-label wildcards', () => {
    assert.equal(mxMatchesPolicy('MX1.Example.com.', ['mx1.example.com']), true);
    assert.equal(mxMatchesPolicy('a.example.com', ['*.example.com']), true);
    assert.equal(mxMatchesPolicy('a.b.example.com', ['*.example.com']), false);
    assert.equal(mxMatchesPolicy('example.com', ['*.example.com']), false);
    assert.equal(mxMatchesPolicy('badexample.com', ['*.example.com']), false);
  });
});
