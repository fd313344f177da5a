/**
 * The resolver port against a real DNS server on loopback (UDP and TCP): configured servers with
 * a port, the answer shapes and error codes of `dns.promises.resolve`, the bounded cache with
 * TTLs, and timeouts.
 */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import dnsPromises from 'node:dns/promises';
import { startDnsServer, ptrName, type TestDnsServer } from '../support/dns-server.js';
import { createResolver, isNoRecordError, isTemporaryDnsError, type DnsResolver } from '../../src/dns/index.js';
import type { DnsConfig } from '../../src/config/sections/dns.js';

let dns: TestDnsServer;

function config(over: Partial<DnsConfig> = {}): DnsConfig {
  return { servers: [dns.address], timeout_ms: 400, tries: 1, cache_ttl_seconds: 300, negative_cache_ttl_seconds: 60, cache_max_entries: 1000, ...over };
}

/** A resolver with a hand-moved clock. */
function clocked(over: Partial<DnsConfig> = {}): { r: DnsResolver; advance(seconds: number): void } {
  let now = 1_000_000;
  return { r: createResolver(config(over), { now: () => now }), advance: (s) => (now += s * 1000) };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code: string }).code;
  }
  assert.fail('expected the lookup to fail');
}

before(async () => {
  dns = await startDnsServer();
});

after(async () => {
  await dns.close();
});

beforeEach(() => {
  dns.zones.clear();
  dns.failures.clear();
  dns.down = false;
  dns.queries.length = 0;
  dns.set('example.test', {
    A: ['192.0.2.1', '192.0.2.2'],
    AAAA: ['2001:db8::1'],
    MX: [{ priority: 20, exchange: 'mx2.example.test' }, { priority: 10, exchange: 'mx1.example.test' }],
    TXT: ['v=spf1 -all', ['part one ', 'part two']],
  });
  dns.set('mx1.example.test', { A: ['192.0.2.25'] });
});

describe('servers and answers', () => {
  test('a server given as host:port is used, and servers() reports it', async () => {
    const r = createResolver(config());
    assert.deepEqual(r.servers(), [dns.address]);
    assert.deepEqual((await r.resolve4('example.test')).sort(), ['192.0.2.1', '192.0.2.2']);
    assert.equal(dns.queryCount('example.test', 'A'), 1);
  });

  test('no configured servers = the system configuration', () => {
    const r = createResolver(config({ servers: [] }));
    assert.deepEqual(r.servers(), new dnsPromises.Resolver().getServers());
  });

  test('answers have the shapes of dns.promises.resolve', async () => {
    const r = createResolver(config());
    assert.deepEqual(await r.resolve6('example.test'), ['2001:db8::1']);
    assert.deepEqual(
      (await r.resolveMx('example.test')).sort((a, b) => a.priority - b.priority),
      [
        { exchange: 'mx1.example.test', priority: 10 },
        { exchange: 'mx2.example.test', priority: 20 },
      ],
    );
    const txt = await r.resolveTxt('example.test');
    assert.deepEqual(
      txt.map((chunks) => chunks.join('')).sort(),
      ['part one part two', 'v=spf1 -all'],
    );
    // mailauth calls resolve(name, type) only, as a plain function (no `this`)
    const asFunction = r.resolve;
    assert.deepEqual(await asFunction('example.test', 'TXT'), txt);
    assert.deepEqual((await r.resolve('example.test')).sort(), ['192.0.2.1', '192.0.2.2']);
    assert.deepEqual(await r.resolve('example.test', 'aaaa'), ['2001:db8::1']);
  });

  test('a TXT record over 255 bytes comes back as several character-strings (RFC 1035 §3.3.14)', async () => {
    const long = `v=spf1 ${'ip4:10.0.0.0/8 '.repeat(30)}-all`;
    dns.set('long.example.test', { TXT: [long] });
    const [record] = await createResolver(config()).resolveTxt('long.example.test');
    assert.deepEqual(record.map((s) => Buffer.byteLength(s)), [255, Buffer.byteLength(long) - 255]);
    assert.equal(record.join(''), long);
  });

  test('an answer too large for UDP is fetched again over TCP (RFC 7766)', async () => {
    const big = 'k'.repeat(4000);
    dns.set('big.example.test', { TXT: [big] });
    const [record] = await createResolver(config()).resolveTxt('big.example.test');
    assert.equal(record.join(''), big);
    assert.deepEqual(
      dns.queries.filter((q) => q.name === 'big.example.test').map((q) => q.transport),
      ['udp', 'tcp'],
    );
  });

  test('reverse lookup (PTR)', async () => {
    dns.set(ptrName('192.0.2.25'), { PTR: ['mx1.example.test'] });
    dns.set(ptrName('2001:db8::25'), { PTR: ['mx6.example.test'] });
    const r = createResolver(config());
    assert.deepEqual(await r.reverse('192.0.2.25'), ['mx1.example.test']);
    assert.deepEqual(await r.reverse('2001:db8::25'), ['mx6.example.test']);
    assert.equal(await codeOf(r.reverse('192.0.2.99')), 'ENOTFOUND');
    assert.equal(await codeOf(r.reverse('not-an-ip')), 'EBADNAME');
  });

  test('the same results as node:dns itself asking the same server', async () => {
    const native = new dnsPromises.Resolver();
    native.setServers([dns.address]);
    const r = createResolver(config());
    assert.deepEqual(await r.resolve('example.test', 'MX'), await native.resolve('example.test', 'MX'));
    assert.deepEqual(await r.resolve('example.test', 'TXT'), await native.resolve('example.test', 'TXT'));
  });

  test('bad names and unsupported types are refused before any query', async () => {
    const r = createResolver(config());
    assert.equal(await codeOf(r.resolve4('')), 'EBADNAME');
    assert.equal(await codeOf(r.resolve4('a..b')), 'EBADNAME');
    assert.equal(await codeOf(r.resolve4(`${'a'.repeat(64)}.test`)), 'EBADNAME');
    assert.equal(await codeOf(r.resolve4(`${'abcdefghi.'.repeat(26)}test`)), 'EBADNAME');
    assert.equal(await codeOf(r.resolve4('bad name.test')), 'EBADNAME');
    assert.equal(await codeOf(r.resolve4('x\r\n.test')), 'EBADNAME');
    assert.equal(await codeOf(r.resolve('example.test', 'ANY')), 'ERR_INVALID_ARG_VALUE');
    assert.equal(dns.queries.length, 0);
  });
});

describe('error codes', () => {
  test('NXDOMAIN → ENOTFOUND, no records of the type → ENODATA (both "no record")', async () => {
    const r = createResolver(config());
    const nx = r.resolveTxt('nothing.example.test').catch((e: unknown) => e);
    const nodata = r.resolveTxt('mx1.example.test').catch((e: unknown) => e);
    const [a, b] = await Promise.all([nx, nodata]);
    assert.equal((a as { code: string }).code, 'ENOTFOUND');
    assert.equal((b as { code: string }).code, 'ENODATA');
    assert.equal(isNoRecordError(a), true);
    assert.equal(isTemporaryDnsError(a), false);
    assert.equal((a as { hostname: string }).hostname, 'nothing.example.test');
  });

  test('an empty non-terminal name is NODATA, not NXDOMAIN (RFC 8020)', async () => {
    dns.set('sel._domainkey.example.test', { TXT: ['v=DKIM1; p='] });
    assert.equal(await codeOf(createResolver(config()).resolveTxt('_domainkey.example.test')), 'ENODATA');
  });

  test('a server that does not answer → ETIMEOUT within the configured time (temporary)', async () => {
    dns.down = true;
    const r = createResolver(config({ timeout_ms: 300, tries: 2 }));
    const started = Date.now();
    const err = await r.resolveTxt('example.test').catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    assert.equal((err as { code: string }).code, 'ETIMEOUT');
    assert.equal(isTemporaryDnsError(err), true);
    // c-ares doubles the timeout on each try: 300 + 600 ms
    assert.ok(elapsed >= 250 && elapsed < 5000, `took ${elapsed} ms`);
    assert.equal(dns.queryCount('example.test', 'TXT'), 2, 'one query per try');
  });

  test('SERVFAIL → ESERVFAIL (temporary)', async () => {
    dns.fail('example.test', 'servfail');
    const err = await createResolver(config()).resolve4('example.test').catch((e: unknown) => e);
    assert.equal((err as { code: string }).code, 'ESERVFAIL');
    assert.equal(isTemporaryDnsError(err), true);
  });

  test('a server list entry that is not an IP address is refused at construction', () => {
    assert.throws(() => createResolver(config({ servers: ['dns.example.test'] })), /invalid DNS server "dns.example.test"/);
    assert.throws(() => createResolver(config({ servers: ['127.0.0.1:99999'] })), /out of range/);
  });
});

describe('cache', () => {
  test('a second lookup is answered from the cache, not the server', async () => {
    const r = createResolver(config());
    await r.resolveTxt('example.test');
    await r.resolveTxt('example.test');
    await r.resolve('EXAMPLE.test.', 'TXT'); // names are case-insensitive, the root dot optional
    assert.equal(dns.queryCount('example.test', 'TXT'), 1);
    assert.deepEqual(r.stats(), { hits: 2, misses: 1, entries: 1 });
  });

  test('concurrent identical lookups share one query', async () => {
    const r = createResolver(config());
    await Promise.all(Array.from({ length: 20 }, () => r.resolveMx('example.test')));
    assert.equal(dns.queryCount('example.test', 'MX'), 1);
  });

  test('A/AAAA: kept for min(record TTL, cache_ttl_seconds)', async () => {
    dns.set('short.example.test', { A: ['192.0.2.7'], ttl: 5 });
    const { r, advance } = clocked({ cache_ttl_seconds: 300 });
    await r.resolve4('short.example.test');
    advance(4);
    await r.resolve4('short.example.test');
    assert.equal(dns.queryCount('short.example.test', 'A'), 1, 'within the record TTL');
    advance(2);
    await r.resolve4('short.example.test');
    assert.equal(dns.queryCount('short.example.test', 'A'), 2, 'record TTL passed');

    dns.set('long.example.test', { A: ['192.0.2.8'], ttl: 86400 });
    const capped = clocked({ cache_ttl_seconds: 10 });
    await capped.r.resolve4('long.example.test');
    capped.advance(11);
    await capped.r.resolve4('long.example.test');
    assert.equal(dns.queryCount('long.example.test', 'A'), 2, 'cap shorter than the TTL');
  });

  test('other types: kept for cache_ttl_seconds (node:dns does not report their TTL)', async () => {
    const { r, advance } = clocked({ cache_ttl_seconds: 60 });
    await r.resolveTxt('example.test');
    advance(59);
    await r.resolveTxt('example.test');
    assert.equal(dns.queryCount('example.test', 'TXT'), 1);
    advance(2);
    await r.resolveTxt('example.test');
    assert.equal(dns.queryCount('example.test', 'TXT'), 2);
  });

  test('"no record" answers are cached for negative_cache_ttl_seconds, with the same error code', async () => {
    const { r, advance } = clocked({ negative_cache_ttl_seconds: 30 });
    assert.equal(await codeOf(r.resolveTxt('nothing.example.test')), 'ENOTFOUND');
    assert.equal(await codeOf(r.resolveTxt('nothing.example.test')), 'ENOTFOUND');
    assert.equal(await codeOf(r.resolveTxt('mx1.example.test')), 'ENODATA');
    assert.equal(await codeOf(r.resolveTxt('mx1.example.test')), 'ENODATA');
    assert.equal(dns.queryCount('nothing.example.test'), 1);
    assert.equal(dns.queryCount('mx1.example.test', 'TXT'), 1);
    advance(31);
    dns.set('nothing.example.test', { TXT: ['now it exists'] });
    assert.deepEqual(await r.resolveTxt('nothing.example.test'), [['now it exists']]);
  });

  test('timeouts and server failures are never cached', async () => {
    const r = createResolver(config({ timeout_ms: 200, tries: 1 }));
    dns.fail('example.test', 'drop');
    assert.equal(await codeOf(r.resolve4('example.test')), 'ETIMEOUT');
    dns.fail('example.test', 'servfail');
    assert.equal(await codeOf(r.resolve4('example.test')), 'ESERVFAIL');
    dns.fail('example.test', null);
    assert.equal((await r.resolve4('example.test')).length, 2);
    assert.equal(dns.queryCount('example.test', 'A'), 3);
  });

  test('cache_ttl_seconds: 0 turns the cache off', async () => {
    const r = createResolver(config({ cache_ttl_seconds: 0 }));
    await r.resolve4('example.test');
    await r.resolve4('example.test');
    assert.equal(dns.queryCount('example.test', 'A'), 2);
    assert.equal(r.stats().entries, 0);
  });

  test('the cache holds at most cache_max_entries; the least recently used goes first', async () => {
    for (const n of ['a', 'b', 'c']) dns.set(`${n}.example.test`, { A: ['192.0.2.1'] });
    const r = createResolver(config({ cache_max_entries: 2 }));
    await r.resolve4('a.example.test');
    await r.resolve4('b.example.test');
    await r.resolve4('a.example.test'); // a is now the most recently used
    await r.resolve4('c.example.test'); // evicts b
    assert.equal(r.stats().entries, 2);
    await r.resolve4('a.example.test');
    await r.resolve4('b.example.test');
    assert.equal(dns.queryCount('a.example.test'), 1);
    assert.equal(dns.queryCount('b.example.test'), 2);
  });

  test('callers get copies: changing an answer does not change the cache', async () => {
    const r = createResolver(config());
    const first = await r.resolveTxt('example.test');
    first[0][0] = 'tampered';
    first.pop();
    const second = await r.resolveTxt('example.test');
    assert.equal(second.length, 2);
    assert.ok(!second.flat().includes('tampered'));
  });

  test('clearCache() forgets everything', async () => {
    const r = createResolver(config());
    await r.resolve4('example.test');
    r.clearCache();
    await r.resolve4('example.test');
    assert.equal(dns.queryCount('example.test', 'A'), 2);
  });
});
