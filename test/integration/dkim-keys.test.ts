/**
 * DkimKeyService (src/emailauth/dkim-keys.ts) over the real database of the current shape and the
 * real secret store: one RSA-2048 key per domain, created once (also under concurrent calls), its
 * public record parseable, its private key sealed (never in a row in clear) and usable for
 * signing, all behind the tenant scope (SPEC §9, §10).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { NotFoundError } from '../../src/core/tenancy/errors.js';
import type { Domain, Tenant } from '../../src/core/tenancy/types.js';
import { parseTagList } from '../../src/core/domains/dns-verify.js';
import { DkimKeyService, RSA_BITS } from '../../src/emailauth/dkim-keys.js';
import { masterKeyFromBytes } from '../../src/security/secrets/envelope.js';
import { DatabaseSecretStore } from '../../src/security/secrets/store.js';
import { caught, tenancyFixture, type TenancyFixture } from '../support/tenancy-fixtures.js';

describe('DKIM keys', () => {
  let f: TenancyFixture;
  let secrets: DatabaseSecretStore;
  let dkim: DkimKeyService;
  let a: Tenant;
  let b: Tenant;
  let domA: Domain;
  let domB: Domain;
  const clock = { t: Date.UTC(2025, 2, 14, 12, 0) };

  before(async () => {
    f = await tenancyFixture();
    secrets = new DatabaseSecretStore(f.test.db, masterKeyFromBytes(randomBytes(32)));
    dkim = new DkimKeyService({ db: f.test.db, secrets, now: () => clock.t });
    a = await f.tenancy.tenants.create(systemScope, { name: 'dkim-a' });
    b = await f.tenancy.tenants.create(systemScope, { name: 'dkim-b' });
    domA = await f.tenancy.domains.add(tenantScope(a.id), { name: 'a.example' });
    domB = await f.tenancy.domains.add(tenantScope(b.id), { name: 'b.example' });
  });
  after(async () => {
    await f.test.drop();
  });

  test('ensureKey creates one RSA-2048 key with selector mr<yyyymm>, and only once', async () => {
    const scope = tenantScope(a.id);
    const first = await dkim.ensureKey(scope, domA);
    assert.equal(first.selector, 'mr202503');
    assert.equal(first.algorithm, 'rsa-sha256');
    assert.equal(first.status, 'active');
    assert.equal(first.domainId, domA.id);
    assert.equal(first.tenantId, a.id);
    assert.equal(first.createdAt, clock.t);
    const again = await dkim.ensureKey(scope, domA);
    assert.equal(again.id, first.id);
    const rows = await f.test.db.kysely.selectFrom('dkim_keys').selectAll().where('domain_id', '=', domA.id).execute();
    assert.equal(rows.length, 1);
    assert.deepEqual((await dkim.activeKeys(scope, domA.id)).map((k) => k.id), [first.id]);
    const secretRows = await f.test.db.kysely.selectFrom('secrets').selectAll().where('id', '=', rows[0].private_key_secret_id).execute();
    assert.equal(secretRows.length, 1);
    assert.equal(secretRows[0].kind, 'dkim');
    assert.equal(secretRows[0].tenant_id, a.id);
  });

  test('concurrent ensureKey calls for a new domain end with one key', async () => {
    const d = await f.tenancy.domains.add(tenantScope(a.id), { name: 'race.example' });
    const keys = await Promise.all([1, 2, 3].map(() => dkim.ensureKey(tenantScope(a.id), d)));
    assert.equal(new Set(keys.map((k) => k.id)).size, 1);
    const count = await f.test.db.kysely.selectFrom('dkim_keys').select('id').where('domain_id', '=', d.id).execute();
    assert.equal(count.length, 1);
    // The losers' generated keys were never sealed: exactly one dkim secret per key row.
    assert.equal(await dkim.deleteOrphanedSecrets(tenantScope(a.id)), 0);
  });

  test('the public record parses as an RSA-2048 SubjectPublicKeyInfo', async () => {
    const key = await dkim.ensureKey(tenantScope(a.id), domA);
    const value = dkim.publicRecord(key);
    const tags = parseTagList(value);
    assert.equal(tags.get('v'), 'DKIM1');
    assert.equal(tags.get('k'), 'rsa');
    assert.equal(tags.get('p'), key.publicKey);
    const pub = createPublicKey({ key: Buffer.from(tags.get('p')!, 'base64'), format: 'der', type: 'spki' });
    assert.equal(pub.asymmetricKeyType, 'rsa');
    assert.equal(pub.asymmetricKeyDetails?.modulusLength, RSA_BITS);
    assert.equal(RSA_BITS, 2048);
  });

  test('the private key unseals and signs what the public key verifies', async () => {
    const key = await dkim.ensureKey(tenantScope(a.id), domA);
    const priv = await dkim.privateKey(tenantScope(a.id), key.id);
    assert.equal(priv.type, 'private');
    const data = Buffer.from('DKIM-Signature header hash input');
    const signature = sign('sha256', data, priv);
    const pub = createPublicKey({ key: Buffer.from(key.publicKey, 'base64'), format: 'der', type: 'spki' });
    assert.equal(verify('sha256', data, pub, signature), true);
    assert.equal(verify('sha256', Buffer.from('tampered'), pub, signature), false);
    // Also through the system scope (the outbound signer runs there).
    assert.equal((await dkim.privateKey(systemScope, key.id)).type, 'private');
  });

  test('no row holds the private key in clear', async () => {
    const key = await dkim.ensureKey(tenantScope(a.id), domA);
    const priv = await dkim.privateKey(tenantScope(a.id), key.id);
    const der = priv.export({ type: 'pkcs8', format: 'der' });
    const pem = priv.export({ type: 'pkcs8', format: 'pem' }).toString();
    const pemBody = pem.split('\n')[5]; // a line of the PEM body
    const keyRows = await f.test.db.kysely.selectFrom('dkim_keys').selectAll().execute();
    const secretRows = await f.test.db.kysely.selectFrom('secrets').selectAll().execute();
    const dump = JSON.stringify([keyRows, secretRows]);
    assert.ok(!dump.includes('PRIVATE KEY'), 'no PEM armour');
    assert.ok(!dump.includes(pemBody), 'no PEM body line');
    assert.ok(!dump.includes(der.toString('base64').slice(40, 120)), 'no base64 of the DER');
    assert.ok(!dump.includes(der.toString('hex').slice(80, 240)), 'no hex of the DER');
    // The row's public part is the public key only.
    const row = keyRows.find((r) => r.id === key.id)!;
    assert.deepEqual(Object.keys(row).sort(), ['algorithm', 'created_at', 'domain_id', 'id', 'private_key_secret_id', 'public_key', 'retired_at', 'selector', 'status', 'tenant_id']);
    assert.equal(createPublicKey({ key: Buffer.from(row.public_key, 'base64'), format: 'der', type: 'spki' }).type, 'public');
  });

  test('another tenant can neither read, use nor create keys of the domain', async () => {
    const key = await dkim.ensureKey(tenantScope(a.id), domA);
    const scopeB = tenantScope(b.id);
    assert.deepEqual(await dkim.activeKeys(scopeB, domA.id), []);
    assert.deepEqual(await dkim.keysOf(scopeB, domA.id), []);
    assert.ok((await caught(() => dkim.privateKey(scopeB, key.id))) instanceof NotFoundError);
    assert.ok((await caught(() => dkim.ensureKey(scopeB, domA))) instanceof NotFoundError);
    assert.equal((await f.test.db.kysely.selectFrom('dkim_keys').select('id').where('domain_id', '=', domA.id).execute()).length, 1);
  });

  test('a second key in the same month gets a suffixed selector', async () => {
    const d = await f.tenancy.domains.add(tenantScope(b.id), { name: 'rotate.b.example' });
    const first = await dkim.ensureKey(tenantScope(b.id), d);
    // Rotation comes with the outbound issue; retire by hand to show the selector rule holds.
    await f.test.db.kysely.updateTable('dkim_keys').set({ status: 'retired', retired_at: clock.t }).where('id', '=', first.id).execute();
    const second = await dkim.ensureKey(tenantScope(b.id), d);
    assert.notEqual(second.id, first.id);
    assert.equal(second.selector, `${first.selector}-2`);
    assert.deepEqual((await dkim.activeKeys(tenantScope(b.id), d.id)).map((k) => k.id), [second.id]);
    assert.deepEqual((await dkim.keysOf(tenantScope(b.id), d.id)).map((k) => k.status).sort(), ['active', 'retired']);
  });

  test('removing a domain drops its key rows; the sweep deletes their sealed keys and nothing else', async () => {
    const scope = tenantScope(a.id);
    const d = await f.tenancy.domains.add(scope, { name: 'gone.example' });
    const key = await dkim.ensureKey(scope, d);
    const secretId = (await f.test.db.kysely.selectFrom('dkim_keys').select('private_key_secret_id').where('id', '=', key.id).executeTakeFirstOrThrow()).private_key_secret_id;
    const keep = await dkim.ensureKey(scope, domA);
    const otherTenantKey = await dkim.ensureKey(tenantScope(b.id), domB);
    await f.tenancy.domains.remove(scope, d.id);
    assert.deepEqual(await dkim.keysOf(systemScope, d.id), [], 'ON DELETE CASCADE');
    // Another tenant's sweep does not touch tenant A's orphan.
    assert.equal(await dkim.deleteOrphanedSecrets(tenantScope(b.id)), 0);
    assert.equal(await dkim.deleteOrphanedSecrets(scope), 1);
    assert.equal((await f.test.db.kysely.selectFrom('secrets').select('id').where('id', '=', secretId).execute()).length, 0);
    assert.equal(await dkim.deleteOrphanedSecrets(scope), 0, 'idempotent');
    // Live keys still unseal.
    assert.equal((await dkim.privateKey(scope, keep.id)).type, 'private');
    assert.equal((await dkim.privateKey(tenantScope(b.id), otherTenantKey.id)).type, 'private');
  });
});
