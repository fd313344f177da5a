/**
 * The POP3 listeners as the composition root builds them (src/app/pop3-listeners.ts): from a config
 * file through openApp, with the `pop3` section's limits, the self-signed certificate of the `tls`
 * section, the real login (Argon2, audit entry naming the listener) and the connection limit shared
 * by both ports.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { openApp, type AppContext } from '../../src/app/context.js';
import { startPop3Listeners, type Pop3Listeners } from '../../src/app/pop3-listeners.js';
import { systemScope } from '../../src/core/scope.js';
import { Pop3Wire } from '../support/pop3.js';
import { freshDatabase, s3TestSettings, shape, tempDir, type TestDatabase } from '../support/shape.js';

const PASSWORD = 'correct horse battery staple';
let dir: ReturnType<typeof tempDir>;
let db: TestDatabase;
let app: AppContext;
let pop3: Pop3Listeners;

before(async () => {
  dir = tempDir('mairust-pop3-app-');
  db = await freshDatabase({ migrate: false });
  await db.db.close();
  const config: Record<string, any> = {
    server: { data_dir: dir.path, hostname: 'pop.app.test' },
    database: { url: shape === 'embedded' ? `sqlite:${join(dir.path, 'mairust.db')}` : db.url },
    listeners: { pop3: { port: 0 }, pop3s: { port: 0 } },
    pop3: { max_line_bytes: 255, max_connections_per_ip: 2 },
    log: { level: 'silent' },
  };
  if (shape === 'cluster') {
    const s3 = s3TestSettings();
    config.storage = {
      backend: 's3',
      s3: { endpoint: s3.endpoint, region: s3.region, access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey, bucket: `mairust-pop3-${randomBytes(5).toString('hex')}`, create_bucket: true },
    };
    config.security = { master_key: randomBytes(32).toString('base64') };
  }
  const configPath = join(dir.path, 'config.yaml');
  writeFileSync(configPath, stringify(config));
  app = await openApp({ configPath, env: {} });
  pop3 = await startPop3Listeners(app);
  const tenant = await app.tenancy.tenants.create(systemScope, { name: 'app' });
  await app.tenancy.domains.add(systemScope, { tenantId: tenant.id, name: 'app.test' });
  const user = await app.tenancy.users.add(systemScope, { tenantId: tenant.id, email: 'ann@app.test', password: PASSWORD });
  await app.tenancy.mailboxes.add(systemScope, { address: 'ann@app.test', user: user.id, quotaBytes: 0 });
});

after(async () => {
  await pop3?.close(0);
  await app?.close();
  if (shape === 'cluster') await db?.drop().catch(() => {});
  dir?.remove();
});

test('both ports bound; login on pop3s is audited with the listener name; config limits apply', async () => {
  assert.ok(pop3.ports.pop3 > 0 && pop3.ports.pop3s > 0);
  const c = await Pop3Wire.connect(pop3.ports.pop3s, { tls: {} });
  const d = await Pop3Wire.connect(pop3.ports.pop3);
  try {
    assert.equal(c.tlsSocket!.getPeerCertificate().subject.CN, 'pop.app.test', 'the generated self-signed certificate');
    assert.match(await c.line(), /^\+OK MaiRust POP3 server ready <.+@pop\.app\.test>$/);
    assert.equal(await c.command('USER ann@app.test'), '+OK Send your password');
    assert.equal(await c.command(`PASS ${PASSWORD}`), '+OK Mailbox open, 0 messages (0 octets)');
    const audit = await app.db.kysely.selectFrom('audit_log').selectAll().where('event_type', '=', 'auth.login').execute();
    assert.deepEqual(audit.map((r) => JSON.parse(r.target_json)), [{ type: 'pop3', id: 'pop3s' }]);
    // pop3.max_line_bytes: 255 octets including CRLF.
    assert.equal(await c.command(`NOOP${' '.repeat(250)}`), '-ERR Line too long');
    assert.equal(await c.command(`NOOP${' '.repeat(249)}`), '+OK');
    // pop3.max_connections_per_ip: 2, over both ports.
    assert.match(await d.line(), /^\+OK /);
    const third = await Pop3Wire.connect(pop3.ports.pop3);
    assert.equal(await third.line(), '-ERR [SYS/TEMP] Too many connections from your address, try again later');
    third.destroy();
  } finally {
    c.destroy();
    d.destroy();
  }
});

test('reloadTls re-reads the tls section', async () => {
  await pop3.reloadTls();
  const c = await Pop3Wire.connect(pop3.ports.pop3s, { tls: {} });
  try {
    assert.match(await c.line(), /^\+OK /);
  } finally {
    c.destroy();
  }
});
