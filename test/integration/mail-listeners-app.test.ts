/**
 * Every mail listener as the composition root builds them (src/app/mail-listeners.ts with
 * listener-group.ts): SMTP, IMAP and POP3 bound from one config, one certificate for all, a login on
 * each protocol checked and audited the same way (SPEC §10: target names the protocol and listener),
 * a certificate reload, and one close for all of them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { openApp, type AppContext } from '../../src/app/context.js';
import { startMailListeners, type MailListeners } from '../../src/app/mail-listeners.js';
import { systemScope } from '../../src/core/scope.js';
import { ImapWire, quote } from '../support/imap.js';
import { Pop3Wire } from '../support/pop3.js';
import { SmtpWire, plainCredentials } from '../support/smtp-wire.js';
import { freshDatabase, s3TestSettings, shape, tempDir, type TestDatabase } from '../support/shape.js';

const PASSWORD = 'correct horse battery staple';
const NAMES = ['smtp', 'submission', 'smtps', 'imap', 'imaps', 'pop3', 'pop3s'];
let dir: ReturnType<typeof tempDir>;
let db: TestDatabase;
let app: AppContext;
let mail: MailListeners;

before(async () => {
  dir = tempDir('mairust-mail-app-');
  db = await freshDatabase({ migrate: false });
  await db.db.close();
  const config: Record<string, any> = {
    server: { data_dir: dir.path, hostname: 'mail.app.test' },
    database: { url: shape === 'embedded' ? `sqlite:${join(dir.path, 'mairust.db')}` : db.url },
    listeners: Object.fromEntries(NAMES.map((n) => [n, { port: 0 }])),
    emailauth: { enabled: false },
    log: { level: 'silent' },
  };
  if (shape === 'cluster') {
    const s3 = s3TestSettings();
    config.storage = {
      backend: 's3',
      s3: { endpoint: s3.endpoint, region: s3.region, access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey, bucket: `mairust-mail-${randomBytes(5).toString('hex')}`, create_bucket: true },
    };
    config.security = { master_key: randomBytes(32).toString('base64') };
  }
  const configPath = join(dir.path, 'config.yaml');
  writeFileSync(configPath, stringify(config));
  app = await openApp({ configPath, env: {} });
  mail = await startMailListeners(app);
  const tenant = await app.tenancy.tenants.create(systemScope, { name: 'app' });
  await app.tenancy.domains.add(systemScope, { tenantId: tenant.id, name: 'app.test' });
  const user = await app.tenancy.users.add(systemScope, { tenantId: tenant.id, email: 'ann@app.test', password: PASSWORD });
  await app.tenancy.mailboxes.add(systemScope, { address: 'ann@app.test', user: user.id, quotaBytes: 0 });
});

after(async () => {
  await mail?.close(0);
  await app?.close();
  if (shape === 'cluster') await db?.drop().catch(() => {});
  dir?.remove();
});

test('all seven listeners are bound and a login on SMTP, IMAP and POP3 is audited alike', async () => {
  assert.deepEqual(Object.keys(mail.ports).sort(), [...NAMES].sort());
  for (const n of NAMES) assert.ok(mail.ports[n] > 0, n);

  const smtp = await SmtpWire.connect(mail.ports.smtps, { tls: {} });
  await smtp.reply();
  await smtp.ehlo();
  assert.match((await smtp.command(`AUTH PLAIN ${plainCredentials('ann@app.test', PASSWORD)}`)).line, /^235 /);
  smtp.destroy();

  const imap = await ImapWire.connect(mail.ports.imaps, { tls: true });
  assert.match((await imap.command(`a1 LOGIN ${quote('ann@app.test')} ${quote(PASSWORD)}`)).tagged, /^a1 OK /);
  imap.destroy();

  const pop = await Pop3Wire.connect(mail.ports.pop3s, { tls: {} });
  await pop.line();
  assert.equal(await pop.command('USER ann@app.test'), '+OK Send your password');
  assert.match(await pop.command(`PASS ${PASSWORD}`), /^\+OK /);
  pop.destroy();

  const rows = await app.db.kysely.selectFrom('audit_log').selectAll().where('event_type', '=', 'auth.login').execute();
  const entries = rows.map((r) => ({ target: JSON.parse(r.target_json), metadata: JSON.parse(r.metadata_json) }));
  assert.deepEqual(
    entries.sort((a, b) => a.target.type.localeCompare(b.target.type)),
    [
      { target: { type: 'imap', id: 'imaps' }, metadata: { protocol: 'imap' } },
      { target: { type: 'pop3', id: 'pop3s' }, metadata: { protocol: 'pop3' } },
      // SMTP names the listener kind (mx or submission), for 465 as for 587.
      { target: { type: 'smtp', id: 'submission' }, metadata: { protocol: 'smtp' } },
    ],
  );
});

test('one certificate reload reaches every listener; new connections still work', async () => {
  await mail.reloadTls();
  const imap = await ImapWire.connect(mail.ports.imaps, { tls: true });
  assert.match(imap.greeting, /^\* OK /);
  imap.destroy();
  const smtp = await SmtpWire.connect(mail.ports.smtps, { tls: {} });
  assert.match((await smtp.reply()).line, /^220 /);
  smtp.destroy();
});
