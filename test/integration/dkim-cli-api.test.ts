/**
 * DKIM key management from the outside (SPEC §3.2 step 3, §11 "domains … DKIM", §12 `dkim
 * generate`): the API routes `/domains/:id/dkim-keys…` and `/dkim-keys/:id/retire` through the whole
 * HTTP pipeline, and `mairust dkim generate|list` as an operator runs them (bin/mairust.mjs in a
 * child process) against the same database. A rotation keeps the old key published as `retiring`
 * (RFC 6376 §3.1 selectors; both records in `dns-records`) until it is retired; the domain's last
 * active key cannot be retired (409). The private key (sealed in the secret store, SPEC §10) is in
 * no response and no CLI output: checked against the key itself, besides the harness's PEM scan.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startApi, auditRowsFor, actorOf, type ApiHarness, type ApiResponse, type CallOptions, type TestTenant, type TestUser } from '../support/api.js';
import { runCli, type CliResult } from '../support/server-process.js';
import { shape } from '../support/shape.js';
import { tenantScope } from '../../src/core/scope.js';
import type { Domain } from '../../src/core/tenancy/types.js';

let api: ApiHarness;
let a: TestTenant;
let b: TestTenant;
let plain: TestUser;
let otherDomainAdmin: TestUser;
let dom: Domain;
const bodies: string[] = [];
const cliOutputs: CliResult[] = [];
/** Every key id seen, to check afterwards that none of their private keys was ever printed. */
const keyIds = new Set<string>();

async function call(method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse> {
  const res = await api.call(method, path, opts);
  bodies.push(res.body);
  return res;
}

async function cli(...args: string[]): Promise<CliResult> {
  const r = await runCli(args, { MAIRUST_CONFIG: join(api.dataDir, 'config.yaml') });
  cliOutputs.push(r);
  return r;
}

const keysPath = () => `/api/v1/domains/${dom.id}/dkim-keys`;

before(async () => {
  api = await startApi();
  a = await api.tenant('dk-a');
  b = await api.tenant('dk-b');
  plain = await api.user(a.id, { role: 'user' });
  dom = await api.app.tenancy.domains.add(tenantScope(a.id), { name: 'a.test' });
  const other = await api.app.tenancy.domains.add(tenantScope(a.id), { name: 'other-a.test' });
  otherDomainAdmin = await api.user(a.id, { role: 'domain_admin', domainScope: [other.id] });
});

after(async () => {
  if (api) {
    // SPEC §10: the private keys of every key made here appear in no response and no CLI output.
    const texts = [...bodies, ...cliOutputs.flatMap((r) => [r.stdout, r.stderr])];
    for (const id of keyIds) {
      const key = await api.deps.dkim.privateKey(tenantScope(a.id), id);
      const der = key.export({ format: 'der', type: 'pkcs8' });
      const forms = [der.toString('base64'), der.subarray(-32).toString('base64'), der.subarray(-32).toString('hex')];
      for (const text of texts) for (const f of forms) assert.ok(!text.includes(f), `the private key of ${id} was printed`);
    }
    await api.close();
  }
});

describe(`DKIM keys: API (${shape})`, () => {
  let first: any;
  let second: any;

  test('roles: plain users are refused; another tenant or domain is 404', async () => {
    assert.equal((await call('GET', keysPath(), { token: plain.token })).status, 403);
    assert.equal((await call('POST', keysPath(), { token: plain.token, body: { algorithm: 'ed25519-sha256' } })).status, 403);
    for (const t of [b.admin, otherDomainAdmin]) {
      assert.equal((await call('GET', keysPath(), { token: t.token })).status, 404);
      assert.equal((await call('POST', keysPath(), { token: t.token, body: { algorithm: 'ed25519-sha256' } })).status, 404);
      assert.equal((await call('POST', `${keysPath()}/rotate`, { token: t.token, body: {} })).status, 404);
    }
    assert.equal((await api.app.db.kysely.selectFrom('dkim_keys').select('id').where('domain_id', '=', dom.id).execute()).length, 0, 'nothing was created');
    const list = await call('GET', keysPath(), { token: a.admin.token });
    assert.equal(list.status, 200, list.body);
    assert.deepEqual(list.json.data, []);
  });

  test('generate an Ed25519 key: the TXT record to publish, public parts only, audited', async () => {
    const res = await call('POST', keysPath(), { token: a.admin.token, body: { algorithm: 'ed25519-sha256' } });
    assert.equal(res.status, 201, res.body);
    first = res.json.data;
    keyIds.add(first.id);
    assert.equal(first.algorithm, 'ed25519-sha256');
    assert.equal(first.status, 'active');
    assert.equal(first.published, true);
    assert.match(first.selector, /^mr\d{6}(-\d+)?$/);
    // RFC 8463 §4.2: p= is the base64 of the 32-byte raw public key.
    assert.equal(Buffer.from(first.public_key, 'base64').length, 32);
    assert.deepEqual(first.dns_record, { type: 'TXT', name: `${first.selector}._domainkey.a.test`, value: `v=DKIM1; k=ed25519; p=${first.public_key}` });
    assert.deepEqual(Object.keys(first).sort(), ['algorithm', 'created_at', 'dns_record', 'domain_id', 'id', 'public_key', 'published', 'retired_at', 'selector', 'status']);
    assert.equal((await call('POST', keysPath(), { token: a.admin.token, body: { algorithm: 'dsa' } })).status, 422, 'an unknown algorithm is refused');

    const list = await call('GET', keysPath(), { token: a.admin.token });
    assert.deepEqual(list.json.data.map((k: any) => [k.id, k.status]), [[first.id, 'active']]);
    const audit = await auditRowsFor(api, 'dkim.key_generated', first.id);
    assert.equal(audit.length, 1);
    assert.deepEqual(audit[0].actor, actorOf(a.admin));
    assert.equal(audit[0].metadata.algorithm, 'ed25519-sha256');
  });

  test('rotate: a new active key; the old one retiring and still in dns-records', async () => {
    const res = await call('POST', `${keysPath()}/rotate`, { token: a.admin.token, body: {} });
    assert.equal(res.status, 201, res.body);
    second = res.json.data.key;
    keyIds.add(second.id);
    assert.equal(second.status, 'active');
    assert.equal(second.algorithm, 'ed25519-sha256', 'the algorithm of the current key by default');
    assert.notEqual(second.selector, first.selector);
    assert.deepEqual(res.json.data.retiring.map((k: any) => [k.id, k.status, k.published]), [[first.id, 'retiring', true]]);

    const records = await call('GET', `/api/v1/domains/${dom.id}/dns-records`, { token: a.admin.token });
    assert.equal(records.status, 200, records.body);
    const dkim = records.json.data.records.filter((r: any) => r.purpose === 'dkim');
    assert.deepEqual(
      dkim.map((r: any) => [r.name, r.value]).sort(),
      [
        [`${first.selector}._domainkey.a.test`, `v=DKIM1; k=ed25519; p=${first.public_key}`],
        [`${second.selector}._domainkey.a.test`, `v=DKIM1; k=ed25519; p=${second.public_key}`],
      ].sort(),
    );
    assert.equal((await auditRowsFor(api, 'dkim.key_rotated', second.id)).length, 1);
  });

  test('retire: the retiring key is withdrawn; the last active key is refused (409)', async () => {
    // Another tenant cannot retire it, nor see that it exists.
    assert.equal((await call('POST', `/api/v1/dkim-keys/${first.id}/retire`, { token: b.admin.token })).status, 404);
    assert.equal((await call('POST', `/api/v1/dkim-keys/${first.id}/retire`, { token: otherDomainAdmin.token })).status, 404);
    assert.equal((await call('POST', `/api/v1/dkim-keys/${first.id}/retire`, { token: plain.token })).status, 403);

    const res = await call('POST', `/api/v1/dkim-keys/${first.id}/retire`, { token: a.admin.token });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.data.status, 'retired');
    assert.equal(res.json.data.published, false);
    assert.ok(res.json.data.retired_at);
    const audit = await auditRowsFor(api, 'dkim.key_retired', first.id);
    assert.equal(audit.length, 1);
    assert.equal(audit[0].metadata.previous_status, 'retiring');

    const refused = await call('POST', `/api/v1/dkim-keys/${second.id}/retire`, { token: a.admin.token });
    assert.equal(refused.status, 409, refused.body);
    assert.equal((await auditRowsFor(api, 'dkim.key_retired', second.id)).length, 0);

    const records = await call('GET', `/api/v1/domains/${dom.id}/dns-records`, { token: a.admin.token });
    assert.deepEqual(records.json.data.records.filter((r: any) => r.purpose === 'dkim').map((r: any) => r.name), [`${second.selector}._domainkey.a.test`]);
    const list = await call('GET', keysPath(), { token: a.admin.token });
    assert.deepEqual(list.json.data.map((k: any) => [k.id, k.status]), [[first.id, 'retired'], [second.id, 'active']]);
  });
});

describe(`DKIM keys: CLI (${shape})`, () => {
  test('`dkim generate a.test --algorithm ed25519` prints the TXT record; `dkim list` shows it', async () => {
    const gen = await cli('dkim', 'generate', 'a.test', '--algorithm', 'ed25519');
    assert.equal(gen.code, 0, gen.stderr);
    const line = gen.stdout.split('\n')[0];
    const m = /^(mr\d{6}(?:-\d+)?)\._domainkey\.a\.test TXT "v=DKIM1; k=ed25519; p=([A-Za-z0-9+/=]{44})"$/.exec(line);
    assert.ok(m, `zone-file line: ${line}`);
    const [, selector, publicKey] = m;
    assert.match(gen.stdout, /; key \S+ \(ed25519-sha256\) is active/);

    const row = await api.app.db.kysely.selectFrom('dkim_keys').selectAll().where('domain_id', '=', dom.id).where('selector', '=', selector).executeTakeFirstOrThrow();
    keyIds.add(row.id);
    assert.equal(row.public_key, publicKey);
    assert.equal(row.status, 'active');
    assert.equal(row.algorithm, 'ed25519-sha256');
    const audit = await auditRowsFor(api, 'dkim.key_generated', row.id);
    assert.deepEqual(audit.map((r) => r.actor), [{ type: 'cli' }]);

    const list = await cli('--json', 'dkim', 'list', 'a.test');
    assert.equal(list.code, 0, list.stderr);
    const keys = JSON.parse(list.stdout) as { id: string; selector: string; status: string; dns: string }[];
    assert.equal(keys.length, 3);
    assert.deepEqual(keys.find((k) => k.id === row.id), {
      id: row.id,
      selector,
      algorithm: 'ed25519-sha256',
      status: 'active',
      created_at: new Date(Number(row.created_at)).toISOString(),
      dns: line,
    });
    assert.equal(keys.filter((k) => k.status === 'retired').length, 1);

    // The API sees the CLI's key: the newest active key, published.
    const api_ = await call('GET', keysPath(), { token: a.admin.token });
    assert.ok(api_.json.data.some((k: any) => k.id === row.id && k.published));
  });
});
