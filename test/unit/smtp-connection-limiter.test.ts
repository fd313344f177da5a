/** Connections per client (SPEC §5.1) and the client key it counts by (IPv4 address, IPv6 /64). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionLimiter } from '../../src/protocols/net/connection-limiter.js';
import { peerKey } from '../../src/protocols/net/peer-key.js';

test('peerKey: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 reduced to its /64', () => {
  assert.equal(peerKey('192.0.2.1'), '192.0.2.1');
  assert.equal(peerKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(peerKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(peerKey('2001:DB8:1:2::ffff'), '2001:db8:1:2::/64');
  assert.equal(peerKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(peerKey('::1'), '0:0:0:0::/64');
  assert.equal(peerKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(peerKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
});

test('two addresses of one /64 share a limit; another /64 does not', () => {
  const limiter = new ConnectionLimiter(1);
  const release = limiter.acquire('2001:db8:1:2::a');
  assert.ok(release);
  assert.equal(limiter.acquire('2001:db8:1:2::b'), null);
  assert.ok(limiter.acquire('2001:db8:1:3::a'));
});

test('the limit holds per client and frees on release (release is idempotent)', () => {
  const limiter = new ConnectionLimiter(2);
  const a = limiter.acquire('192.0.2.1')!;
  const b = limiter.acquire('192.0.2.1')!;
  assert.equal(limiter.acquire('192.0.2.1'), null);
  assert.ok(limiter.acquire('192.0.2.2'), 'other clients are not affected');
  a();
  a();
  assert.equal(limiter.count('192.0.2.1'), 1);
  const c = limiter.acquire('192.0.2.1');
  assert.ok(c);
  b();
  c!();
  assert.equal(limiter.count('192.0.2.1'), 0);
});

test('bad limits are refused', () => {
  assert.throws(() => new ConnectionLimiter(0), RangeError);
  assert.throws(() => new ConnectionLimiter(1.5), RangeError);
});
