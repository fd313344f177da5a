/** The base URL in `callback_url` (src/app/hooks.ts apiBaseUrl): api.public_url, else the HTTP listener. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiBaseUrl } from '../../src/app/hooks.js';

const cfg = (publicUrl: string, host: string, port = 8080) => ({
  api: { public_url: publicUrl },
  listeners: { http: { host, port } },
  server: { hostname: 'mx.example.com' },
}) as Parameters<typeof apiBaseUrl>[0];

test('api.public_url wins; otherwise the listener address, with the host name for wildcard binds and brackets for IPv6', () => {
  assert.equal(apiBaseUrl(cfg('https://mail.example.com', '0.0.0.0')), 'https://mail.example.com');
  assert.equal(apiBaseUrl(cfg('', '127.0.0.1', 9000)), 'http://127.0.0.1:9000');
  assert.equal(apiBaseUrl(cfg('', '0.0.0.0')), 'http://mx.example.com:8080');
  assert.equal(apiBaseUrl(cfg('', '::')), 'http://mx.example.com:8080');
  assert.equal(apiBaseUrl(cfg('', '::1')), 'http://[::1]:8080');
});
