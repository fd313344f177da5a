/**
 * The plugin registry (SPEC §7) against the database of the current shape and real files:
 * installs from directories and packages, the lifecycle, secrets, tokens, tenant enablement,
 * logs, uninstall and the audit trail.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';
import { freshDatabase, tempDir, type TestDatabase } from '../support/shape.js';
import { DatabaseSecretStore } from '../../src/security/secrets/index.js';
import { masterKeyFromBytes } from '../../src/security/secrets/envelope.js';
import { PluginRegistry, RUNNABLE_CACHE_MS } from '../../src/plugins/registry.js';
import { createPluginPackage, keyFingerprint } from '../../src/plugins/package.js';
import {
  PluginInstallError, PluginNotFoundError, PluginStateError, PLUGIN_SECRET_PREFIX,
} from '../../src/plugins/types.js';
import { NotFoundError, ValidationError } from '../../src/core/tenancy/errors.js';
import { cliActor } from '../../src/security/audit.js';
import type { PluginsConfig } from '../../src/config/sections/plugins.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/plugins/', import.meta.url));
const ECHO = join(FIXTURES, 'echo');
const HTTP_BASIC = join(FIXTURES, 'http-basic');
const VERSION = '0.5.0';
const ECHO_ID = 'com.example.echo';
const DAY = 86_400_000;

function defaults(): PluginsConfig {
  return {
    dir: '', trusted_keys: [], require_signature: false, egress_allowlist: ['127.0.0.1'],
    health_interval_seconds: 30, log_retention_days: 14, secret_overlap_hours: 24, token_ttl_days: 365,
  };
}

/** A script plugin like the echo fixture with another version/permissions. */
function echoToml(o: { version?: string; permissions?: string; command?: string; extra?: string } = {}): string {
  return [
    `id = "${ECHO_ID}"`, 'name = "Echo"', `version = "${o.version ?? '1.0.0'}"`,
    '[entry]', 'type = "hook"', 'protocol = "script"', `command = ${o.command ?? '["node", "echo.mjs"]'}`,
    '[hooks]', 'on = ["post_receive"]',
    '[permissions]', o.permissions ?? 'read_headers = true', o.extra ?? '', '',
  ].join('\n');
}

describe('plugin registry', () => {
  let t: TestDatabase;
  let work: { path: string; remove(): void };
  let pluginsDir: string;
  let secrets: DatabaseSecretStore;
  let cfg: PluginsConfig;
  let clock: number;
  let registry: PluginRegistry;
  let n = 0;

  const make = () => new PluginRegistry({
    db: t.db, secrets, config: () => cfg, pluginsDir, mairustVersion: VERSION, now: () => clock,
  });

  /** A fresh plugin source directory holding echo.mjs and the given plugin.toml. */
  async function source(toml: string): Promise<string> {
    const dir = join(work.path, `src-${n++}`);
    await mkdir(dir);
    await cp(join(ECHO, 'echo.mjs'), join(dir, 'echo.mjs'));
    await writeFile(join(dir, 'plugin.toml'), toml);
    return dir;
  }

  async function audits(eventType: string, id: string) {
    const rows = await t.db.kysely.selectFrom('audit_log').selectAll().where('event_type', '=', eventType).orderBy('id').execute();
    return rows.filter((r) => (JSON.parse(r.target_json) as { type: string; id: string }).id === id);
  }

  async function installError(p: Promise<unknown>): Promise<PluginInstallError> {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof PluginInstallError, `expected PluginInstallError, got ${String(err)}`);
      return err;
    }
    throw new Error('expected the install to be refused');
  }

  before(async () => {
    t = await freshDatabase();
    work = tempDir('plugin-registry-');
    pluginsDir = join(work.path, 'plugins');
    secrets = new DatabaseSecretStore(t.db, masterKeyFromBytes(randomBytes(32)));
    cfg = defaults();
    clock = 1_700_000_000_000;
    registry = make();
  });
  after(async () => {
    await t.drop();
    work.remove();
  });

  test('installs from a directory: installed, not runnable, secret shown once and sealed', async () => {
    const r = await registry.installFromDirectory(ECHO, cliActor);
    assert.equal(r.upgraded, false);
    assert.ok(r.secret?.startsWith(PLUGIN_SECRET_PREFIX));
    assert.match(r.secret!, /^psec_[A-Za-z0-9_-]{43}$/);
    const p = r.plugin;
    assert.equal(p.id, ECHO_ID);
    assert.equal(p.status, 'installed');
    assert.equal(p.runnable, false);
    assert.equal(p.approvedPermissions, null);
    assert.deepEqual(p.pendingPermissions.map((c) => c.permission), ['read_headers']);
    assert.equal(p.source, 'directory');
    assert.equal(p.signature, 'unsigned');
    assert.equal(p.installDir, join(pluginsDir, ECHO_ID, '1.0.0'));
    assert.equal(await readFile(join(p.installDir, 'echo.mjs'), 'utf8'), await readFile(join(ECHO, 'echo.mjs'), 'utf8'));
    assert.equal(await registry.runnable(ECHO_ID), null);

    const row = await t.db.kysely.selectFrom('plugins').selectAll().where('id', '=', ECHO_ID).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(r.secret!), 'the plaintext secret is not in the plugins row');
    assert.equal((await secrets.get(row.secret_id)).toString('utf8'), r.secret);
    const a = await audits('plugin.installed', ECHO_ID);
    assert.equal(a.length, 1);
    assert.equal(a[0].tenant_id, null);
    assert.equal(JSON.parse(a[0].metadata_json).version, '1.0.0');
    assert.equal((await registry.get(ECHO_ID))?.version, '1.0.0');
    assert.equal(await registry.get('com.example.none'), null);
  });

  test('lifecycle: enable needs approval; enabled is runnable; disabled is not', async () => {
    await assert.rejects(registry.enable(ECHO_ID, cliActor), PluginStateError);
    const approved = await registry.approve(ECHO_ID, cliActor);
    assert.deepEqual(approved.pendingPermissions, []);
    assert.equal(approved.approvedPermissions?.read_headers, true);
    assert.equal(approved.runnable, false);
    const enabled = await registry.enable(ECHO_ID, cliActor);
    assert.equal(enabled.status, 'enabled');
    assert.equal(enabled.runnable, true);
    const run = await registry.runnable(ECHO_ID);
    assert.ok(run);
    assert.equal(run.permissions.read_headers, true);
    assert.equal(run.installDir, join(pluginsDir, ECHO_ID, '1.0.0'));
    assert.equal(run.allowPrivate, false);
    const [first] = await run.secrets();
    assert.match(first, /^psec_/);

    await registry.disable(ECHO_ID, cliActor);
    assert.equal(await registry.runnable(ECHO_ID), null, 'a local change drops the cache at once');
    await registry.enable(ECHO_ID, cliActor);
    assert.ok(await registry.runnable(ECHO_ID));
    for (const e of ['plugin.approved', 'plugin.enabled', 'plugin.disabled']) {
      assert.ok((await audits(e, ECHO_ID)).length >= 1, e);
    }
  });

  test('other processes see a change within the 2 s cache window', async () => {
    const other = make();
    assert.ok(await other.runnable(ECHO_ID));
    await registry.disable(ECHO_ID, cliActor);
    assert.ok(await other.runnable(ECHO_ID), 'still cached in the other instance');
    clock += RUNNABLE_CACHE_MS + 1;
    assert.equal(await other.runnable(ECHO_ID), null);
    await registry.enable(ECHO_ID, cliActor);
  });

  test('an upgrade that adds a permission waits for approval; one that does not stays runnable', async () => {
    const oldDir = join(pluginsDir, ECHO_ID, '1.0.0');
    const before = await registry.get(ECHO_ID);
    const secretBefore = (await t.db.kysely.selectFrom('plugins').select('secret_id').where('id', '=', ECHO_ID).executeTakeFirstOrThrow()).secret_id;
    const up = await registry.installFromDirectory(await source(echoToml({ version: '1.1.0', permissions: 'read_headers = true\nwrite_tags = true' })), cliActor);
    assert.equal(up.upgraded, true);
    assert.equal(up.secret, undefined, 'the secret is shown only on the first install');
    assert.equal(up.plugin.status, 'enabled');
    assert.deepEqual(up.plugin.pendingPermissions.map((c) => c.permission), ['write_tags']);
    assert.equal(up.plugin.runnable, false);
    assert.equal(await registry.runnable(ECHO_ID), null);
    assert.equal(existsSync(oldDir), false, 'the old version directory is removed');
    assert.ok(existsSync(join(pluginsDir, ECHO_ID, '1.1.0', 'echo.mjs')));
    await assert.rejects(registry.enable(ECHO_ID, cliActor), /write_tags/);
    const upAudit = await audits('plugin.upgraded', ECHO_ID);
    assert.equal(JSON.parse(upAudit.at(-1)!.metadata_json).needs_approval, true);

    await registry.approve(ECHO_ID, cliActor);
    assert.ok(await registry.runnable(ECHO_ID));
    const row = await t.db.kysely.selectFrom('plugins').select('secret_id').where('id', '=', ECHO_ID).executeTakeFirstOrThrow();
    assert.equal(row.secret_id, secretBefore, 'an upgrade keeps the signing secret');
    assert.equal(before?.installedAt, up.plugin.installedAt);

    const same = await registry.installFromDirectory(await source(echoToml({ version: '1.2.0', permissions: 'read_headers = true' })), cliActor);
    assert.deepEqual(same.plugin.pendingPermissions, []);
    assert.equal(same.plugin.runnable, true);
    assert.ok(await registry.runnable(ECHO_ID));

    // Downgrades are allowed (and logged); reinstalling the same version replaces its files.
    const down = await registry.installFromDirectory(await source(echoToml({ version: '1.1.0', permissions: 'read_headers = true' })), cliActor);
    assert.equal(down.plugin.version, '1.1.0');
    assert.ok((await registry.logs(ECHO_ID)).some((l) => /downgraded from 1\.2\.0 to 1\.1\.0/.test(l.message)));
    assert.equal(JSON.parse((await audits('plugin.upgraded', ECHO_ID)).at(-1)!.metadata_json).downgrade, true);
    const again = await source(echoToml({ version: '1.1.0', permissions: 'read_headers = true' }));
    await writeFile(join(again, 'echo.mjs'), '// v2 of 1.1.0\n');
    await registry.installFromDirectory(again, cliActor);
    assert.equal(await readFile(join(pluginsDir, ECHO_ID, '1.1.0', 'echo.mjs'), 'utf8'), '// v2 of 1.1.0\n');
    assert.equal(existsSync(join(pluginsDir, ECHO_ID, '1.2.0')), false);

    // A wider [limits] network is high risk: it waits for approval like an added permission.
    assert.ok(await registry.runnable(ECHO_ID));
    const wider = await registry.installFromDirectory(
      await source(echoToml({ version: '1.3.0', permissions: 'read_headers = true', extra: '[limits]\nnetwork = "unlimited"' })),
      cliActor,
    );
    assert.deepEqual(wider.plugin.pendingPermissions, [{ permission: 'network', from: 'none', to: 'unlimited' }]);
    assert.equal(await registry.runnable(ECHO_ID), null);
    await registry.approve(ECHO_ID, cliActor);
    assert.ok(await registry.runnable(ECHO_ID));
  });

  test('HTTP endpoints must match the egress allowlist (install and upgrade)', async () => {
    cfg.egress_allowlist = ['*.example.com'];
    const err = await installError(registry.installFromDirectory(HTTP_BASIC, cliActor));
    assert.equal(err.details.host, '127.0.0.1');
    assert.match(err.message, /entry\.endpoint host 127\.0\.0\.1 is not in plugins\.egress_allowlist/);
    assert.equal(await registry.get('com.example.http-basic'), null);
    assert.equal(existsSync(join(pluginsDir, 'com.example.http-basic', '1.0.0')), false, 'nothing left behind');

    cfg.egress_allowlist = ['127.0.0.1:9'];
    const ok = await registry.installFromDirectory(HTTP_BASIC, cliActor);
    assert.equal(ok.plugin.manifest.entry.protocol, 'http');

    const moved = join(work.path, 'http-moved');
    await cp(HTTP_BASIC, moved, { recursive: true });
    const toml = (await readFile(join(moved, 'plugin.toml'), 'utf8'))
      .replace('version = "1.0.0"', 'version = "1.1.0"')
      .replace('http://127.0.0.1:9/hook', 'https://evil.example.net/hook');
    await writeFile(join(moved, 'plugin.toml'), toml);
    const refused = await installError(registry.installFromDirectory(moved, cliActor));
    assert.equal(refused.details.host, 'evil.example.net');
    assert.equal((await registry.get('com.example.http-basic'))?.version, '1.0.0', 'the refused upgrade changed nothing');
    cfg.egress_allowlist = ['127.0.0.1'];
  });

  test('bad manifests and programs are refused with precise errors', async () => {
    const bad = await installError(registry.installFromDirectory(await source(echoToml({ version: '1.0', extra: 'colour = "blue"' })), cliActor));
    const paths = (bad.details.errors as { path: string }[]).map((e) => e.path);
    assert.ok(paths.includes('version'), JSON.stringify(bad.details));
    assert.ok(paths.includes('permissions.colour'), JSON.stringify(bad.details));

    const deps = await installError(registry.installFromDirectory(await source(echoToml({ permissions: 'write_tags = true' })), cliActor));
    assert.ok((deps.details.errors as { path: string; message: string }[]).some((e) => /read_headers/.test(e.message)));

    const compat = await installError(registry.installFromDirectory(await source(echoToml({ extra: '[compat]\nmairust_min = "9.0.0"' })), cliActor));
    assert.ok((compat.details.errors as { path: string }[]).some((e) => e.path === 'compat.mairust_min'));

    const missing = await installError(registry.installFromDirectory(await source(echoToml({ command: '["./missing.sh"]' })), cliActor));
    assert.equal(missing.details.field, 'entry.command[0]');
    const bare = await installError(registry.installFromDirectory(await source(echoToml({ command: '["echo.mjs"]' })), cliActor));
    assert.match(bare.message, /write "\.\/echo\.mjs"/);
    const absent = await installError(registry.installFromDirectory(await source(echoToml({ command: '["/nonexistent/bin/x"]' })), cliActor));
    assert.match(absent.message, /does not exist/);
    const escape = await installError(registry.installFromDirectory(await source(echoToml({ command: '["../../../usr/bin/node"]' })), cliActor));
    assert.match(escape.message, /outside the plugin directory|does not exist/);
    const ok = await source(echoToml({ version: '1.1.0', command: '["./echo.mjs"]' }));
    // A relative program inside the plugin is fine (this one is what was installed last anyway).
    await registry.installFromDirectory(ok, cliActor);

    const link = await source(echoToml({ version: '1.1.0' }));
    await symlink('/etc/passwd', join(link, 'passwd'));
    const outside = await installError(registry.installFromDirectory(link, cliActor));
    assert.match(outside.message, /symlink pointing outside/);
    const inner = await source(echoToml({ version: '1.1.0' }));
    await symlink('echo.mjs', join(inner, 'alias.mjs'));
    await registry.installFromDirectory(inner, cliActor);
    assert.equal(await readFile(join(pluginsDir, ECHO_ID, '1.1.0', 'alias.mjs'), 'utf8'), await readFile(join(inner, 'echo.mjs'), 'utf8'));

    await assert.rejects(registry.installFromDirectory(join(work.path, 'nope'), cliActor), PluginInstallError);
  });

  test('installs from packages: trusted signature, untrusted, tampered, require_signature', async () => {
    const trusted = generateKeyPairSync('ed25519');
    const stranger = generateKeyPairSync('ed25519');
    const pub = trusted.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const pkgSrc = await source(echoToml({ version: '2.0.0' }));
    const signed = join(work.path, 'signed.mairust-plugin');
    await createPluginPackage(pkgSrc, signed, { signingKey: trusted.privateKey });

    cfg.trusted_keys = [stranger.publicKey.export({ type: 'spki', format: 'pem' }).toString()];
    const untrusted = await installError(registry.installFromPackage(signed, cliActor));
    assert.equal(untrusted.details.code, 'untrusted_signature');

    // The raw 32-byte base64 form of a key is accepted as well as PEM.
    const raw = trusted.publicKey.export({ type: 'spki', format: 'der' }).subarray(12).toString('base64');
    cfg.trusted_keys = [raw];
    const r = await registry.installFromPackage(signed, cliActor);
    assert.equal(r.plugin.source, 'package');
    assert.equal(r.plugin.signature, `ed25519:${keyFingerprint(pub)}`);
    assert.equal(r.plugin.version, '2.0.0');
    assert.ok(existsSync(join(pluginsDir, ECHO_ID, '2.0.0', 'echo.mjs')));

    // Tampered: a file changed after signing, checksums left alone.
    const unpacked = join(work.path, 'unpacked');
    await mkdir(unpacked);
    await tar.x({ file: signed, cwd: unpacked });
    await writeFile(join(unpacked, 'echo.mjs'), 'process.exit(1);\n');
    const tampered = join(work.path, 'tampered.mairust-plugin');
    await tar.c({ gzip: true, file: tampered, cwd: unpacked, portable: true }, ['MANIFEST.sha256', 'MANIFEST.sig', 'echo.mjs', 'plugin.toml']);
    const bad = await installError(registry.installFromPackage(tampered, cliActor));
    assert.equal(bad.details.code, 'checksum_mismatch');

    const unsigned = join(work.path, 'unsigned.mairust-plugin');
    await createPluginPackage(await source(echoToml({ version: '2.0.1' })), unsigned);
    cfg.require_signature = true;
    const need = await installError(registry.installFromPackage(unsigned, cliActor));
    assert.equal(need.details.code, 'signature_required');
    const dirRefused = await installError(registry.installFromDirectory(ECHO, cliActor));
    assert.equal(dirRefused.details.code, 'signature_required');
    cfg.require_signature = false;
    const u = await registry.installFromPackage(unsigned, cliActor);
    assert.equal(u.plugin.signature, 'unsigned');
    cfg.trusted_keys = [];
    // No staging directories are left behind.
    const staging = join(pluginsDir, '.staging');
    const { readdir } = await import('node:fs/promises');
    assert.deepEqual(await readdir(staging), []);
  });

  test('secret rotation: [new, old] during the overlap, then only [new]; older secrets are deleted', async () => {
    await registry.approve(ECHO_ID, cliActor);
    await registry.enable(ECHO_ID, cliActor);
    const before = await (await registry.runnable(ECHO_ID))!.secrets();
    assert.equal(before.length, 1);
    const s1 = await registry.rotateSecret(ECHO_ID, cliActor);
    assert.match(s1, /^psec_/);
    assert.deepEqual(await (await registry.runnable(ECHO_ID))!.secrets(), [s1, before[0]]);
    const row1 = await t.db.kysely.selectFrom('plugins').selectAll().where('id', '=', ECHO_ID).executeTakeFirstOrThrow();
    assert.equal(Number(row1.previous_secret_expires_at), clock + 24 * 3_600_000);
    assert.ok(!JSON.stringify(row1).includes(s1));

    clock += 24 * 3_600_000 + 1;
    assert.deepEqual(await (await registry.runnable(ECHO_ID))!.secrets(), [s1]);

    const s2 = await registry.rotateSecret(ECHO_ID, cliActor);
    const row2 = await t.db.kysely.selectFrom('plugins').selectAll().where('id', '=', ECHO_ID).executeTakeFirstOrThrow();
    assert.equal(row2.previous_secret_id, row1.secret_id);
    await assert.rejects(secrets.get(row1.previous_secret_id!), 'the even older secret is deleted');
    assert.deepEqual(await (await registry.runnable(ECHO_ID))!.secrets(), [s2, s1]);
    assert.equal((await audits('plugin.secret_rotated', ECHO_ID)).length, 2);
  });

  test('tokens: issue, verify, rotate, revoke, expire; stored hashed', async () => {
    const { token, info } = await registry.rotateToken(ECHO_ID, ['callback'], cliActor);
    assert.match(token, /^plt_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(info.scopes, ['callback']);
    assert.equal(info.expiresAt, clock + 365 * DAY);
    const row = await t.db.kysely.selectFrom('plugin_tokens').selectAll().where('id', '=', info.id).executeTakeFirstOrThrow();
    assert.notEqual(row.token_hash, token);
    assert.equal(row.token_hash, createHash('sha256').update(token).digest('hex'));
    assert.ok(!JSON.stringify(row).includes(token));

    assert.deepEqual(await registry.verifyToken(token), { tokenId: info.id, pluginId: ECHO_ID, scopes: ['callback'] });
    const used = await t.db.kysely.selectFrom('plugin_tokens').select('last_used_at').where('id', '=', info.id).executeTakeFirstOrThrow();
    assert.equal(Number(used.last_used_at), clock);
    assert.equal(await registry.verifyToken(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), null);
    assert.equal(await registry.verifyToken('plt_short'), null);

    const reader = await registry.rotateToken(ECHO_ID, ['read'], cliActor);
    const rotated = await registry.rotateToken(ECHO_ID, ['callback'], cliActor);
    assert.equal(await registry.verifyToken(token), null, 'rotation revokes the old callback token');
    assert.ok(await registry.verifyToken(rotated.token));
    assert.ok(await registry.verifyToken(reader.token), 'a token without a shared scope survives');

    const both = await registry.rotateToken(ECHO_ID, ['read', 'callback'], cliActor);
    assert.equal(await registry.verifyToken(reader.token), null);
    assert.equal(await registry.verifyToken(rotated.token), null);
    assert.deepEqual((await registry.verifyToken(both.token))?.scopes, ['callback', 'read']);

    assert.equal(await registry.revokeToken(ECHO_ID, both.info.id, cliActor), true);
    assert.equal(await registry.revokeToken(ECHO_ID, both.info.id, cliActor), false);
    assert.equal(await registry.verifyToken(both.token), null);
    assert.equal((await registry.listTokens(ECHO_ID)).length, 4);

    const fresh = await registry.rotateToken(ECHO_ID, ['read'], cliActor);
    clock += 365 * DAY;
    assert.equal(await registry.verifyToken(fresh.token), null, 'expired');
    cfg.token_ttl_days = 0;
    const forever = await registry.rotateToken(ECHO_ID, ['read'], cliActor);
    assert.equal(forever.info.expiresAt, null);
    clock += 3650 * DAY;
    assert.ok(await registry.verifyToken(forever.token));
    cfg.token_ttl_days = 365;

    await assert.rejects(registry.rotateToken(ECHO_ID, [], cliActor), ValidationError);
    await assert.rejects(registry.rotateToken(ECHO_ID, ['admin' as 'read'], cliActor), ValidationError);
    await assert.rejects(registry.rotateToken('com.example.none', ['read'], cliActor), PluginNotFoundError);
    await assert.rejects(registry.listTokens('com.example.none'), PluginNotFoundError);
    assert.equal((await audits('plugin.token_rotated', ECHO_ID)).length, 6);
    assert.equal((await audits('plugin.token_revoked', ECHO_ID)).length, 1);
  });

  test('tenant enablement and config', async () => {
    const tenant = 'tenant-' + randomBytes(4).toString('hex');
    await t.db.kysely.insertInto('tenants').values({
      id: tenant, name: tenant, status: 'active', plan: 'default', limits_json: '{}', legal_hold: 0,
      retention_days: null, used_bytes: 0, created_at: clock, updated_at: clock, deleted_at: null,
    }).execute();
    assert.equal(await registry.enabledForTenant(ECHO_ID, tenant), false);
    assert.deepEqual(await registry.tenantConfig(ECHO_ID, tenant), {});

    const created = await registry.setTenantPlugin(tenant, ECHO_ID, { config: { threshold: 5 } }, cliActor);
    assert.equal(created.enabled, false, 'enabled defaults to false');
    assert.deepEqual(created.config, { threshold: 5 });
    assert.equal(await registry.enabledForTenant(ECHO_ID, tenant), false);

    const on = await registry.setTenantPlugin(tenant, ECHO_ID, { enabled: true }, cliActor);
    assert.equal(on.enabled, true);
    assert.deepEqual(on.config, { threshold: 5 }, 'config kept when not given');
    assert.equal(await registry.enabledForTenant(ECHO_ID, tenant), true);
    assert.deepEqual(await registry.tenantConfig(ECHO_ID, tenant), { threshold: 5 });
    assert.deepEqual((await registry.listTenantPlugins(tenant)).map((p) => p.pluginId), [ECHO_ID]);

    await registry.disable(ECHO_ID, cliActor);
    assert.equal(await registry.enabledForTenant(ECHO_ID, tenant), false, 'needs a runnable plugin');
    await registry.enable(ECHO_ID, cliActor);

    await assert.rejects(registry.setTenantPlugin(tenant, ECHO_ID, { config: [] as unknown as Record<string, unknown> }, cliActor), ValidationError);
    await assert.rejects(registry.setTenantPlugin(tenant, ECHO_ID, { config: { big: 'x'.repeat(17 * 1024) } }, cliActor), ValidationError);
    await assert.rejects(registry.setTenantPlugin('no-such-tenant', ECHO_ID, { enabled: true }, cliActor), NotFoundError);
    await assert.rejects(registry.setTenantPlugin(tenant, 'com.example.none', { enabled: true }, cliActor), PluginNotFoundError);

    const a = await audits('plugin.tenant_changed', ECHO_ID);
    assert.equal(a.length, 2);
    assert.equal(a[0].tenant_id, tenant);
    assert.deepEqual(JSON.parse(a[0].metadata_json).config_keys, ['threshold']);
  });

  test('logs: bounded lines, newest first, paging, tenant filter, pruning', async () => {
    const id = 'com.example.http-basic';
    await registry.log({ pluginId: id, level: 'error', message: 'x'.repeat(5000) });
    clock += 10;
    await registry.log({ pluginId: id, level: 'info', message: 'second', tenantId: 't1', hookId: 'h1', messageId: 'm1' });
    clock += 10;
    await registry.log({ pluginId: id, level: 'warn', message: 'third\nline' });
    const all = await registry.logs(id);
    assert.deepEqual(all.map((l) => l.message.slice(0, 6)), ['third ', 'second', 'xxxxxx']);
    assert.equal(all[2].message.length, 2000);
    assert.deepEqual(
      { tenantId: all[1].tenantId, hookId: all[1].hookId, messageId: all[1].messageId, level: all[1].level },
      { tenantId: 't1', hookId: 'h1', messageId: 'm1', level: 'info' },
    );
    assert.deepEqual((await registry.logs(id, { before: all[0].at })).map((l) => l.message.slice(0, 6)), ['second', 'xxxxxx']);
    assert.deepEqual((await registry.logs(id, { tenantId: 't1' })).map((l) => l.message), ['second']);
    assert.equal((await registry.logs(id, { limit: 1 })).length, 1);
    // Pruning is global: the echo plugin's older lines (its downgrade) go too.
    assert.ok((await registry.pruneLogs(all[0].at)) >= 2);
    assert.deepEqual((await registry.logs(id)).map((l) => l.message.slice(0, 5)), ['third']);
    // Never throws, even when the row cannot be written.
    await registry.log({ pluginId: null as unknown as string, level: 'info', message: 'bad' });
  });

  test('uninstall removes the plugin, its rows, secrets and files but keeps message metadata', async () => {
    const id = ECHO_ID;
    const row = await t.db.kysely.selectFrom('plugins').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    await t.db.kysely.insertInto('hooks').values({ id: 'h-1', tenant_id: null, type: 'post_receive', plugin_id: id, config_json: '{}', created_at: clock, updated_at: clock }).execute();
    await t.db.kysely.insertInto('hook_breakers').values({
      hook_id: 'h-1', plugin_id: id, state: 'closed', consecutive_failures: 0, buckets_json: '[]', opened_at: null, probe_started_at: null, updated_at: clock,
    }).execute();
    await t.db.kysely.insertInto('message_plugin_metadata').values({ message_id: 'm-1', plugin_id: id, tenant_id: 't', data_json: '{}', updated_at: clock }).execute();
    await registry.log({ pluginId: id, level: 'info', message: 'bye' });
    assert.ok(existsSync(join(pluginsDir, id)));

    await registry.uninstall(id, cliActor);
    assert.equal(await registry.get(id), null);
    assert.equal(await registry.runnable(id), null);
    const count = async (table: 'plugin_tokens' | 'tenant_plugins' | 'hooks' | 'hook_breakers' | 'plugin_logs' | 'message_plugin_metadata') =>
      (await t.db.kysely.selectFrom(table).select('plugin_id').where('plugin_id', '=', id).execute()).length;
    assert.equal(await count('plugin_tokens'), 0);
    assert.equal(await count('tenant_plugins'), 0);
    assert.equal(await count('hooks'), 0);
    assert.equal(await count('hook_breakers'), 0);
    assert.equal(await count('plugin_logs'), 0);
    assert.equal(await count('message_plugin_metadata'), 1, 'message metadata is kept');
    await assert.rejects(secrets.get(row.secret_id));
    if (row.previous_secret_id) await assert.rejects(secrets.get(row.previous_secret_id));
    assert.equal(existsSync(join(pluginsDir, id)), false);
    assert.equal((await audits('plugin.uninstalled', id)).length, 1);
    await assert.rejects(registry.enable(id, cliActor), PluginNotFoundError);
    await assert.rejects(registry.uninstall(id, cliActor), PluginNotFoundError);
    // The other plugin is untouched.
    assert.ok(await registry.get('com.example.http-basic'));
    assert.ok((await stat(join(pluginsDir, 'com.example.http-basic'))).isDirectory());
  });
});
