/**
 * The egress rule of webhooks (SPEC §7 "SSRF protection checks resolved addresses", applied to
 * SPEC §11 webhooks): which addresses count as not public, including IPv6 forms that embed IPv4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bareHost, nonPublicReason } from '../../src/webhooks/egress.js';

test('loopback, private, link-local, unique-local and other non-public ranges are named', () => {
  const cases: [string, string][] = [
    ['127.0.0.1', 'loopback (RFC 1122)'],
    ['127.255.255.254', 'loopback (RFC 1122)'],
    ['10.0.0.1', 'private (RFC 1918)'],
    ['172.16.0.1', 'private (RFC 1918)'],
    ['172.31.255.255', 'private (RFC 1918)'],
    ['192.168.1.1', 'private (RFC 1918)'],
    ['169.254.169.254', 'link-local (RFC 3927)'],
    ['100.64.0.1', 'shared address space (RFC 6598)'],
    ['0.0.0.0', 'unspecified ("this network", RFC 1122)'],
    ['224.0.0.1', 'multicast (RFC 5771)'],
    ['255.255.255.255', 'reserved (RFC 1112), incl. broadcast'],
    ['198.18.0.1', 'benchmarking (RFC 2544)'],
    ['::1', 'loopback (RFC 4291)'],
    ['::', 'unspecified (RFC 4291)'],
    ['fd12:3456::1', 'unique-local (RFC 4193)'],
    ['fc00::1', 'unique-local (RFC 4193)'],
    ['fe80::1', 'link-local (RFC 4291)'],
    ['ff02::1', 'multicast (RFC 4291)'],
    ['::ffff:127.0.0.1', 'loopback (RFC 1122)'],
    ['::ffff:7f00:1', 'loopback (RFC 1122)'],
    ['::ffff:a9fe:a9fe', 'link-local (RFC 3927)'],
    ['64:ff9b::10.0.0.1', 'private (RFC 1918)'],
  ];
  for (const [ip, why] of cases) assert.equal(nonPublicReason(ip), why, ip);
});

test('public addresses pass, at the edges of the blocked ranges too', () => {
  for (const ip of ['8.8.8.8', '172.15.255.255', '172.32.0.0', '100.63.255.255', '100.128.0.0', '11.0.0.0', '2001:4860:4860::8888', '::ffff:8.8.8.8', '192.0.2.10']) {
    assert.equal(nonPublicReason(ip), null, ip);
  }
});

test('a host that is not an IP address is refused by the address check', () => {
  assert.equal(nonPublicReason('localhost'), 'not an IP address');
  assert.equal(nonPublicReason(''), 'not an IP address');
});

test('bareHost strips the brackets of IPv6 URL hosts only', () => {
  assert.equal(bareHost('[::1]'), '::1');
  assert.equal(bareHost('example.com'), 'example.com');
});
