/** Parsing `dns.servers` entries into what node:dns setServers accepts. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseDnsServer, formatDnsServer, InvalidDnsServerError } from '../../src/dns/index.js';

describe('dns.servers entries', () => {
  test('IPv4 and IPv6, with and without a port', () => {
    assert.deepEqual(parseDnsServer('192.0.2.53'), { host: '192.0.2.53', port: 53 });
    assert.deepEqual(parseDnsServer('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
    assert.deepEqual(parseDnsServer('2001:db8::53'), { host: '2001:db8::53', port: 53 });
    assert.deepEqual(parseDnsServer('[2001:db8::53]'), { host: '2001:db8::53', port: 53 });
    assert.deepEqual(parseDnsServer('[::1]:5353'), { host: '::1', port: 5353 });
    assert.deepEqual(parseDnsServer(' 10.0.0.1 '), { host: '10.0.0.1', port: 53 });
  });

  test('formatted the way node:dns wants them', () => {
    assert.equal(formatDnsServer(parseDnsServer('127.0.0.1:5353')), '127.0.0.1:5353');
    assert.equal(formatDnsServer(parseDnsServer('192.0.2.53:53')), '192.0.2.53');
    assert.equal(formatDnsServer(parseDnsServer('[::1]:5353')), '[::1]:5353');
    assert.equal(formatDnsServer(parseDnsServer('::1')), '::1');
  });

  test('anything else is refused with the entry named', () => {
    const bad: [string, RegExp][] = [
      ['dns.example.test', /host names are not accepted/],
      ['dns.example.test:53', /host names are not accepted/],
      ['192.0.2.1:0', /out of range/],
      ['192.0.2.1:65536', /out of range/],
      ['192.0.2.1:abc', /bad port/],
      ['192.0.2.1:', /bad port/],
      ['[2001:db8::1', /missing "\]"/],
      ['[192.0.2.1]:53', /not an IPv6 address/],
      ['[::1]53', /unexpected/],
      ['', /not an IP address/],
      ['999.1.1.1', /not an IP address/],
    ];
    for (const [entry, why] of bad) {
      assert.throws(() => parseDnsServer(entry), (err: unknown) => err instanceof InvalidDnsServerError && why.test(err.message) && err.message.includes(JSON.stringify(entry)), entry);
    }
  });
});
