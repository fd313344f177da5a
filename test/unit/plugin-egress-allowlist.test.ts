/** The egress allowlist of HTTP plugin endpoints (SPEC §7 "Egress"): pattern forms and matching. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  endpointHostPort, invalidAllowlistPatterns, isEndpointAllowed, parseAllowlistPattern,
} from '../../src/plugins/egress-allowlist.js';

describe('plugin egress allowlist', () => {
  test('a plain host matches that host on any port, case-insensitively', () => {
    const list = ['Tagger.Example.com'];
    assert.equal(isEndpointAllowed('https://tagger.example.com/hook', list), true);
    assert.equal(isEndpointAllowed('http://TAGGER.example.com:8080/hook', list), true);
    assert.equal(isEndpointAllowed('https://tagger.example.com./hook', list), true);
    assert.equal(isEndpointAllowed('https://other.example.com/hook', list), false);
    assert.equal(isEndpointAllowed('https://tagger.example.com.evil.net/hook', list), false);
  });

  test('host:port matches only the effective port', () => {
    const list = ['plugins.example.com:8443', 'web.example.com:443'];
    assert.equal(isEndpointAllowed('https://plugins.example.com:8443/x', list), true);
    assert.equal(isEndpointAllowed('https://plugins.example.com/x', list), false);
    // No port in the URL: https means 443.
    assert.equal(isEndpointAllowed('https://web.example.com/x', list), true);
    assert.equal(isEndpointAllowed('http://web.example.com/x', list), false);
  });

  test('*.domain matches names below the domain, not the domain itself', () => {
    const list = ['*.example.com'];
    assert.equal(isEndpointAllowed('https://a.example.com/', list), true);
    assert.equal(isEndpointAllowed('https://b.a.example.com/', list), true);
    assert.equal(isEndpointAllowed('https://example.com/', list), false);
    assert.equal(isEndpointAllowed('https://badexample.com/', list), false);
    assert.equal(isEndpointAllowed('https://a.example.com:9000/', ['*.example.com:9000']), true);
    assert.equal(isEndpointAllowed('https://a.example.com/', ['*.example.com:9000']), false);
  });

  test('IPv4 and bracketed IPv6 literals', () => {
    assert.equal(isEndpointAllowed('http://127.0.0.1:9/hook', ['127.0.0.1']), true);
    assert.equal(isEndpointAllowed('http://127.0.0.1:9/hook', ['127.0.0.1:9']), true);
    assert.equal(isEndpointAllowed('http://127.0.0.1:10/hook', ['127.0.0.1:9']), false);
    assert.equal(isEndpointAllowed('http://[::1]:8080/hook', ['[::1]']), true);
    assert.equal(isEndpointAllowed('http://[::1]:8080/hook', ['[0:0:0:0:0:0:0:1]:8080']), true);
    assert.equal(isEndpointAllowed('http://[::1]:8081/hook', ['[::1]:8080']), false);
    assert.equal(isEndpointAllowed('http://[::2]/hook', ['[::1]']), false);
  });

  test('invalid patterns match nothing and are reported', () => {
    const bad = ['', 'a b', '*', 'a.*.com', 'http://x.com', 'x.com:0', 'x.com:70000', '*.[::1]', 'user@x.com', '[zz]'];
    for (const p of bad) assert.equal(parseAllowlistPattern(p), null, p);
    assert.deepEqual(invalidAllowlistPatterns(['ok.example.com', 'a.*.com']), ['a.*.com']);
    assert.equal(isEndpointAllowed('https://a.x.com/', ['a.*.com', '*']), false);
    assert.deepEqual(parseAllowlistPattern('*.Example.COM:8443'), { host: 'example.com', wildcard: true, port: 8443 });
  });

  test('an empty allowlist or a non-http URL allows nothing', () => {
    assert.equal(isEndpointAllowed('https://a.example.com/', []), false);
    assert.equal(isEndpointAllowed('ftp://a.example.com/', ['a.example.com']), false);
    assert.equal(isEndpointAllowed('not a url', ['a.example.com']), false);
    assert.deepEqual(endpointHostPort('https://A.example.com/x'), { host: 'a.example.com', port: 443 });
  });
});
