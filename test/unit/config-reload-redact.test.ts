import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { diffConfig, isReloadable } from '../../src/config/reload.js';
import { maskUrlPassword, redactConfig, resolveSecrets } from '../../src/config/secrets.js';
import { validateConfigObject } from '../../src/config/validate.js';
import type { Config } from '../../src/config/schema.js';

function config(obj: Record<string, unknown> = {}): Config {
  const { config, issues } = validateConfigObject(obj);
  assert.deepEqual(issues, []);
  return config!;
}

describe('diffConfig', () => {
  test('identical configs have no changes', () => {
    assert.deepEqual(diffConfig(config(), config()), { changed: [], reloadable: [], restartRequired: [] });
  });

  test('log.level is reloadable, listeners.smtp.port needs a restart', () => {
    const diff = diffConfig(config(), config({ log: { level: 'debug' }, listeners: { smtp: { port: 25 } } }));
    assert.deepEqual(diff.changed, ['listeners.smtp.port', 'log.level']);
    assert.deepEqual(diff.reloadable, ['log.level']);
    assert.deepEqual(diff.restartRequired, ['listeners.smtp.port']);
  });

  test('a reloadable ancestor covers its children; lists compare as one value', () => {
    const before = config({ plans: { default: {}, gold: { max_users: 5 } } });
    const after = config({
      plans: { default: {}, gold: { max_users: 6 }, silver: {} },
      queue: { default_backoff_seconds: [30, 120, 900] },
      database: { url: 'postgres://u:p@db/x' },
      nats: { servers: ['nats://a:4222', 'nats://b:4222'] },
    });
    const diff = diffConfig(before, after);
    assert.deepEqual(diff.reloadable, ['plans.gold.max_users', 'plans.silver', 'queue.default_backoff_seconds']);
    assert.deepEqual(diff.restartRequired, ['database.url', 'nats.servers']);
    assert.equal(diff.changed.length, 5);
  });

  test('an optional key appearing counts as a change', () => {
    const diff = diffConfig(config(), config({ server: { node_id: 'n1' } }));
    assert.deepEqual(diff.restartRequired, ['server.node_id']);
  });

  test('isReloadable', () => {
    assert.equal(isReloadable(['retention', 'deleted_messages_days']), true);
    assert.equal(isReloadable(['plans', 'x', 'daily_outbound']), true);
    assert.equal(isReloadable(['queue', 'lease_seconds']), false);
    assert.equal(isReloadable(['no', 'such']), false);
  });
});

describe('redactConfig', () => {
  test('hides every x-secret value and the password in a postgres URL', () => {
    const c = config({
      database: { url: 'postgres://mairust:hunter2@db.internal:5432/mairust' },
      storage: { s3: { access_key_id: 'AKIAEXAMPLE', secret_access_key: 'wJalrXUtnFEMI' } },
      security: { master_key: 'c2VjcmV0', admin_email: 'root@example.com', admin_password: 'pa55' },
      nats: { servers: ['nats://svc:natspw@nats:4222'] },
    });
    const shown = redactConfig(c) as any;
    const text = JSON.stringify(shown);
    for (const secret of ['hunter2', 'AKIAEXAMPLE', 'wJalrXUtnFEMI', 'c2VjcmV0', 'pa55', 'natspw']) {
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    }
    assert.equal(shown.database.url, 'postgres://mairust:***@db.internal:5432/mairust');
    assert.equal(shown.storage.s3.secret_access_key, '***');
    assert.equal(shown.security.master_key, '***');
    assert.equal(shown.security.admin_email, 'root@example.com', 'not a secret');
    assert.equal(shown.nats.servers[0], 'nats://svc:***@nats:4222');
    assert.equal(shown.listeners.smtp.port, 2525, 'non-secrets untouched');
    assert.equal(c.security.master_key, 'c2VjcmV0', 'the input is not modified');
  });

  test('empty secrets and sqlite URLs stay visible (nothing secret in them)', () => {
    const shown = redactConfig(config({ database: { url: 'sqlite:/var/lib/mairust/m.db' } })) as any;
    assert.equal(shown.database.url, 'sqlite:/var/lib/mairust/m.db');
    assert.equal(shown.security.master_key, '');
  });

  test('maskUrlPassword never leaks part of a password with reserved characters', () => {
    assert.equal(maskUrlPassword('postgres://u:p@ss/w#rd@h:5432/db'), 'postgres://u:***@h:5432/db');
    assert.equal(maskUrlPassword('postgres://u@h/db'), 'postgres://u@h/db');
    assert.equal(maskUrlPassword('not a url: x@y'), 'not a url: x@y');
  });
});

describe('resolveSecrets', () => {
  test('walks nested objects and lists, leaving other strings alone', () => {
    const { value, issues } = resolveSecrets(
      { a: { b: 'env:X', c: ['plain', 'env:Y'] }, n: 5, s: 'sqlite:' },
      { env: { X: 'x-value', Y: 'y-value' } },
    );
    assert.deepEqual(issues, []);
    assert.deepEqual(value, { a: { b: 'x-value', c: ['plain', 'y-value'] }, n: 5, s: 'sqlite:' });
  });

  test('missing references are reported with dotted paths', () => {
    const { issues } = resolveSecrets({ a: { list: ['ok', 'env:MISSING'] }, f: 'file:' }, { env: {} });
    assert.deepEqual(issues, [
      { path: 'a.list[1]', message: 'environment variable MISSING is not set' },
      { path: 'f', message: "'file:' needs a path (file:/path/to/secret)" },
    ]);
  });
});
