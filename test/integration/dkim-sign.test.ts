/**
 * The DKIM signer (src/outbound/dkim-sign.ts) with keys from DkimKeyService on the real database of
 * the current shape and the real secret store; each signature is verified by mailauth's
 * `authenticate` against a real DNS server on loopback (test/support/dns-server.ts) that serves
 * the TXT records the service says to publish. RSA and Ed25519 (RFC 8463); rotation (new key
 * signs, the retiring one stays published and still verifies); retirement rules and audit.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { authenticate } from 'mailauth';
import { systemScope, tenantScope } from '../../src/core/scope.js';
import { ConflictError } from '../../src/core/tenancy/errors.js';
import type { Domain, Tenant } from '../../src/core/tenancy/types.js';
import { createResolver } from '../../src/dns/index.js';
import { resolverWithDeadline } from '../../src/emailauth/deadline.js';
import { DkimKeyService, publicRecord, type DkimKey } from '../../src/emailauth/dkim-keys.js';
import { createDkimSigner, SIGNED_HEADER_FIELDS } from '../../src/outbound/dkim-sign.js';
import { cliActor } from '../../src/security/audit.js';
import { masterKeyFromBytes } from '../../src/security/secrets/envelope.js';
import { DatabaseSecretStore } from '../../src/security/secrets/store.js';
import { dnsRecordLine } from '../../src/cli/dkim.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { dnsConfig } from '../fixtures/emailauth/world.js';
import { tenancyFixture, type TenancyFixture } from '../support/tenancy-fixtures.js';
import type { DkimSigner } from '../../src/outbound/types.js';

function message(from: string, subject = 'Signed hello'): Buffer {
  return Buffer.from(
    [
      'Received: from client.example (client.example [192.0.2.1]) by mail.sign.test',
      `From: Ann <${from}>`,
      'To: Bob <bob@receiver.example>',
      `Subject: ${subject}`,
      'Date: Sun, 29 Nov 2026 10:00:00 +0000',
      `Message-ID: <${randomBytes(6).toString('hex')}@sign.test>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Hello Bob,',
      '',
      'a  line   with  spaces.   ',
      '',
    ].join('\r\n'),
  );
}

describe('DKIM signing with the domain\'s keys', () => {
  let f: TenancyFixture;
  let dns: TestDnsServer;
  let dkim: DkimKeyService;
  let signer: DkimSigner;
  let acme: Tenant;
  let other: Tenant;
  let dom: Domain;
  let edDom: Domain;
  let otherDom: Domain;

  /** Publishes the TXT records of every published key of `d`. */
  async function publish(d: Domain, tenantId: string): Promise<void> {
    for (const k of await dkim.publishedKeys(tenantScope(tenantId), d.id)) dns.set(`${k.selector}._domainkey.${d.name}`, { TXT: [publicRecord(k)] });
  }

  async function verify(signed: Buffer): Promise<{ result: string; domain: string; selector: string; algo: string }[]> {
    const resolver = resolverWithDeadline(createResolver(dnsConfig(dns.address)), new AbortController().signal);
    const res = await authenticate(signed, { ip: '192.0.2.1', helo: 'client.example', sender: 'ann@sign.test', mta: 'mx.receiver.example', resolver, disableArc: true, disableBimi: true });
    return res.dkim.results.map((r: any) => ({ result: r.status.result, domain: r.signingDomain, selector: r.selector, algo: r.algo }));
  }

  before(async () => {
    f = await tenancyFixture();
    dns = await startDnsServer();
    const secrets = new DatabaseSecretStore(f.test.db, masterKeyFromBytes(randomBytes(32)));
    dkim = new DkimKeyService({ db: f.test.db, secrets });
    signer = createDkimSigner({ db: f.test.db, dkim, tenancy: f.tenancy });
    acme = await f.tenancy.tenants.create(systemScope, { name: 'sign-acme' });
    other = await f.tenancy.tenants.create(systemScope, { name: 'sign-other' });
    dom = await f.tenancy.domains.add(tenantScope(acme.id), { name: 'sign.test' });
    edDom = await f.tenancy.domains.add(tenantScope(acme.id), { name: 'ed.sign.test' });
    otherDom = await f.tenancy.domains.add(tenantScope(other.id), { name: 'other.sign.test' });
  });
  after(async () => {
    await dns?.close();
    await f?.test.drop();
  });

  test('RSA: the DKIM-Signature verifies (dkim=pass), relaxed/relaxed, recommended fields signed, no trace fields', async () => {
    const key = await dkim.generate(tenantScope(acme.id), dom, 'rsa-sha256', cliActor);
    await publish(dom, acme.id);
    const raw = message('ann@sign.test');
    const field = await signer.sign(acme.id, 'sign.test', raw);
    assert.ok(field, 'a signature');
    assert.match(field, /^DKIM-Signature: /);
    assert.ok(field.endsWith('\r\n') && !field.endsWith('\r\n\r\n'));
    const unfolded = field.replace(/\r\n[ \t]+/g, ' ');
    assert.match(unfolded, /\bc=relaxed\/relaxed\b/);
    assert.match(unfolded, /\ba=rsa-sha256\b/);
    assert.match(unfolded, new RegExp(`\\bs=${key.selector}\\b`));
    assert.match(unfolded, /\bd=sign\.test\b/);
    assert.doesNotMatch(unfolded, /\bl=\d/, 'no body length limit');
    const h = /\bh=([^;]+)/.exec(unfolded)![1].split(':').map((x) => x.trim().toLowerCase());
    for (const name of ['from', 'to', 'subject', 'date', 'message-id', 'mime-version', 'content-type']) assert.ok(h.includes(name), `h= has ${name}`);
    assert.ok(!h.includes('received'), 'trace fields are not signed');
    assert.ok(SIGNED_HEADER_FIELDS.includes('List-Unsubscribe-Post'));
    const results = await verify(Buffer.concat([Buffer.from(field), raw]));
    assert.deepEqual(results, [{ result: 'pass', domain: 'sign.test', selector: key.selector, algo: 'rsa-sha256' }]);

    // A changed body no longer verifies: the check itself can fail.
    const tampered = Buffer.from(Buffer.concat([Buffer.from(field), raw]).toString('utf8').replace('Hello Bob', 'Hello Eve'));
    // mailauth reports a body hash mismatch as `neutral` (RFC 6376 §6.3 leaves the wording open): not pass.
    assert.notEqual((await verify(tampered))[0].result, 'pass');
  });

  test('Ed25519 (RFC 8463): p= is the raw 32-byte key and the signature verifies', async () => {
    const key = await dkim.generate(tenantScope(acme.id), edDom, 'ed25519-sha256', cliActor);
    assert.equal(Buffer.from(key.publicKey, 'base64').length, 32);
    assert.equal(publicRecord(key), `v=DKIM1; k=ed25519; p=${key.publicKey}`);
    await publish(edDom, acme.id);
    const raw = message('ann@ed.sign.test');
    const field = await signer.sign(acme.id, 'ed.sign.test', raw);
    assert.ok(field);
    const results = await verify(Buffer.concat([Buffer.from(field), raw]));
    assert.deepEqual(results, [{ result: 'pass', domain: 'ed.sign.test', selector: key.selector, algo: 'ed25519-sha256' }]);
  });

  test('no key, or another tenant\'s domain → null (unsigned)', async () => {
    const raw = message('x@other.sign.test');
    assert.equal(await signer.sign(other.id, 'other.sign.test', raw), null, 'domain without a key');
    await dkim.generate(tenantScope(other.id), otherDom, 'rsa-sha256', cliActor);
    assert.equal(await signer.sign(acme.id, 'other.sign.test', raw), null, 'acme cannot sign with other\'s key');
    assert.equal(await signer.sign(acme.id, 'unknown.example', raw), null);
    assert.ok(await signer.sign(other.id, 'OTHER.sign.test', raw), 'case-insensitive domain');
  });

  test('rotation: the new key signs, the retiring key stays published and mail signed with it still verifies; retire rules; audit', async () => {
    const scope = tenantScope(acme.id);
    const [old] = await dkim.activeKeys(scope, dom.id);
    const before = message('ann@sign.test', 'before rotation');
    const oldField = (await signer.sign(acme.id, 'sign.test', before))!;
    assert.match(oldField.replace(/\r\n[ \t]+/g, ' '), new RegExp(`\\bs=${old.selector}\\b`));

    const r = await dkim.rotate(scope, dom, cliActor);
    assert.notEqual(r.key.selector, old.selector);
    assert.equal(r.key.algorithm, 'rsa-sha256');
    assert.deepEqual(r.retiring.map((k) => [k.id, k.status]), [[old.id, 'retiring']]);
    const published = await dkim.publishedKeys(scope, dom.id);
    assert.deepEqual(published.map((k) => k.id).sort(), [old.id, r.key.id].sort(), 'both keys published');
    assert.deepEqual((await dkim.activeKeys(scope, dom.id)).map((k) => k.id), [r.key.id]);
    await publish(dom, acme.id);

    const after = message('ann@sign.test', 'after rotation');
    const newField = (await signer.sign(acme.id, 'sign.test', after))!;
    assert.equal((newField.match(/DKIM-Signature:/g) ?? []).length, 1, 'one signature, newest key only');
    assert.deepEqual(await verify(Buffer.concat([Buffer.from(newField), after])), [{ result: 'pass', domain: 'sign.test', selector: r.key.selector, algo: 'rsa-sha256' }]);
    assert.equal((await verify(Buffer.concat([Buffer.from(oldField), before])))[0].result, 'pass', 'mail in transit signed with the retiring key verifies');

    // Two active keys (generate beside the current one): the newest signs.
    const extra = await dkim.generate(scope, dom, 'rsa-sha256', cliActor);
    await publish(dom, acme.id);
    const f2 = (await signer.sign(acme.id, 'sign.test', after))!;
    assert.match(f2.replace(/\r\n[ \t]+/g, ' '), new RegExp(`\\bs=${extra.selector}\\b`));

    // Retire: the retiring key goes; another tenant cannot; the last active key cannot.
    await assert.rejects(dkim.retire(tenantScope(other.id), old.id, cliActor), (e: Error) => e.name === 'NotFoundError');
    const retired = await dkim.retire(scope, old.id, cliActor);
    assert.equal(retired.status, 'retired');
    assert.ok(retired.retiredAt);
    assert.ok(!(await dkim.publishedKeys(scope, dom.id)).some((k) => k.id === old.id), 'a retired key is no longer published');
    await dkim.retire(scope, r.key.id, cliActor);
    await assert.rejects(dkim.retire(scope, extra.id, cliActor), (e) => e instanceof ConflictError, 'the only active key');

    const audit = await f.test.db.kysely.selectFrom('audit_log').select(['event_type', 'tenant_id', 'metadata_json']).where('tenant_id', '=', acme.id).where('event_type', 'like', 'dkim.%').execute();
    const types = audit.map((a) => a.event_type);
    assert.ok(types.includes('dkim.key_generated') && types.includes('dkim.key_rotated') && types.includes('dkim.key_retired'), types.join(','));
    assert.ok(!audit.some((a) => a.metadata_json.includes('PRIVATE KEY')), 'no key material audited');
  });

  test('the CLI\'s DNS record line: name, TXT, strings of at most 255 characters', async () => {
    const key: DkimKey = (await dkim.activeKeys(tenantScope(acme.id), dom.id))[0];
    const line = dnsRecordLine(key, 'sign.test');
    assert.ok(line.startsWith(`${key.selector}._domainkey.sign.test TXT "v=DKIM1; k=rsa; p=`));
    const strings = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
    assert.ok(strings.length >= 2, 'an RSA-2048 record needs two strings');
    assert.ok(strings.every((s) => s.length <= 255));
    assert.equal(strings.join(''), publicRecord(key));
  });
});
