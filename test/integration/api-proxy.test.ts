/**
 * Behind a reverse proxy (`api.trusted_proxies`): the client address and scheme come from
 * X-Forwarded-For/-Proto only when the TCP peer is a trusted proxy — they drive rate limits, the
 * sign-in lockout, audit records and HSTS. Also the 401 challenge header (RFC 6750 §3).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startApi, type ApiHarness } from '../support/api.js';
import { shape } from '../support/shape.js';
import { systemScope } from '../../src/core/scope.js';
import { listAudit } from '../../src/security/audit.js';

async function failedLoginIp(api: ApiHarness, headers: Record<string, string>): Promise<string | undefined> {
  const email = `nobody-${Math.random().toString(36).slice(2)}@proxy.test`;
  const r = await api.call('POST', '/api/v1/auth/login', { body: { email, password: 'not the password at all' }, headers });
  assert.equal(r.status, 401);
  const rows = await listAudit(api.app.db, systemScope, { eventType: 'auth.login_failed' });
  return rows.find((row) => JSON.stringify(row.target).includes(email))?.actor.ip;
}

describe(`API behind a reverse proxy (${shape})`, () => {
  let trusted: ApiHarness;
  let direct: ApiHarness;
  before(async () => {
    trusted = await startApi({ config: { api: { trusted_proxies: ['127.0.0.1'] } } });
    direct = await startApi();
  });
  after(async () => {
    await trusted?.close();
    await direct?.close();
  });

  test('a trusted proxy supplies the client address and scheme', async () => {
    assert.equal(await failedLoginIp(trusted, { 'x-forwarded-for': '203.0.113.9' }), '203.0.113.9');
    const https = await trusted.call('GET', '/api/v1/openapi.json', { headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(https.headers['strict-transport-security'], 'max-age=31536000');
  });

  test('without trusted proxies the forwarded headers are ignored', async () => {
    assert.equal(await failedLoginIp(direct, { 'x-forwarded-for': '203.0.113.9' }), '127.0.0.1');
    const r = await direct.call('GET', '/api/v1/openapi.json', { headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(r.headers['strict-transport-security'], undefined);
  });

  test('a 401 carries the Bearer challenge', async () => {
    const r = await direct.call('GET', '/api/v1/auth/me');
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="mairust"');
    assert.equal(r.json.error.code, 'UNAUTHORIZED');
  });
});
