/** The bounded, expiring LRU cache behind the resolver. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ExpiringLruCache } from '../../src/dns/index.js';

describe('ExpiringLruCache', () => {
  test('entries expire after their TTL', () => {
    let now = 0;
    const c = new ExpiringLruCache<string>(10, () => now);
    c.set('a', 'A', 1000);
    now = 999;
    assert.equal(c.get('a'), 'A');
    now = 1000;
    assert.equal(c.get('a'), undefined);
    assert.equal(c.size, 0, 'an expired entry is dropped when met');
  });

  test('a TTL of 0 or less stores nothing', () => {
    const c = new ExpiringLruCache<string>(10);
    c.set('a', 'A', 0);
    c.set('b', 'B', -5);
    c.set('c', 'C', Number.NaN);
    assert.equal(c.size, 0);
  });

  test('at most maxEntries; the least recently used is dropped', () => {
    const c = new ExpiringLruCache<number>(3);
    c.set('a', 1, 1e6);
    c.set('b', 2, 1e6);
    c.set('c', 3, 1e6);
    c.get('a');
    c.set('d', 4, 1e6);
    assert.equal(c.size, 3);
    assert.equal(c.get('b'), undefined);
    assert.deepEqual([c.get('a'), c.get('c'), c.get('d')], [1, 3, 4]);
    c.set('c', 33, 1e6); // replacing refreshes, never grows
    assert.equal(c.size, 3);
    assert.equal(c.get('c'), 33);
  });

  test('size must be a positive integer', () => {
    assert.throws(() => new ExpiringLruCache(0), /positive integer/);
    assert.throws(() => new ExpiringLruCache(1.5), /positive integer/);
  });

  test('clear() empties it', () => {
    const c = new ExpiringLruCache<number>(3);
    c.set('a', 1, 1e6);
    c.clear();
    assert.equal(c.size, 0);
  });
});
