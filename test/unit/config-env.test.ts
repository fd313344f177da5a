import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { applyEnvOverrides, coerceForPath, DOCUMENTED_ENV_VARIABLES } from '../../src/config/env-overrides.js';
import { schemaChain } from '../../src/config/schema.js';
import { validateConfigObject } from '../../src/config/validate.js';

describe('documented environment variables', () => {
  test('every documented variable names a real key', () => {
    for (const v of DOCUMENTED_ENV_VARIABLES) {
      assert.ok(schemaChain(v.path.split('.')), `${v.name} → ${v.path} is not in the schema`);
      assert.match(v.name, /^MAIRUST_[A-Z0-9_]+$/);
      assert.ok(v.description.length > 0);
    }
    assert.equal(DOCUMENTED_ENV_VARIABLES.length, 12);
  });

  test('each one sets its key', () => {
    const env = {
      MAIRUST_DATA_DIR: '/var/lib/mairust',
      MAIRUST_DATABASE_URL: 'postgres://u:p@db/mairust',
      MAIRUST_STORAGE_BACKEND: 's3',
      MAIRUST_S3_ENDPOINT: 'http://127.0.0.1:8090',
      MAIRUST_S3_BUCKET: 'blobs',
      MAIRUST_S3_REGION: 'eu-west-1',
      MAIRUST_S3_ACCESS_KEY_ID: 'test:tester',
      MAIRUST_S3_SECRET_ACCESS_KEY: 'testing',
      MAIRUST_MASTER_KEY: 'bWFzdGVy',
      MAIRUST_LOG_LEVEL: 'debug',
      MAIRUST_ADMIN_EMAIL: 'admin@example.com',
      MAIRUST_ADMIN_PASSWORD: 'pw',
    };
    const { value, issues, applied } = applyEnvOverrides({ server: { hostname: 'kept' } }, env);
    assert.deepEqual(issues, []);
    assert.equal(applied.length, 12);
    assert.deepEqual(value, {
      server: { hostname: 'kept', data_dir: '/var/lib/mairust' },
      database: { url: 'postgres://u:p@db/mairust' },
      storage: { backend: 's3', s3: { endpoint: 'http://127.0.0.1:8090', bucket: 'blobs', region: 'eu-west-1', access_key_id: 'test:tester', secret_access_key: 'testing' } },
      security: { master_key: 'bWFzdGVy', admin_email: 'admin@example.com', admin_password: 'pw' },
      log: { level: 'debug' },
    });
  });

  test('empty variables count as unset; the input is not modified', () => {
    const base = { log: { level: 'warn' } };
    const { value, applied } = applyEnvOverrides(base, { MAIRUST_LOG_LEVEL: '', MAIRUST__LOG__FORMAT: '' });
    assert.deepEqual(value, { log: { level: 'warn' } });
    assert.deepEqual(applied, []);
    const changed = applyEnvOverrides(base, { MAIRUST_LOG_LEVEL: 'error' });
    assert.equal((changed.value.log as { level: string }).level, 'error');
    assert.equal(base.log.level, 'warn');
  });
});

describe('generic MAIRUST__ overrides', () => {
  test('reach any leaf, case-insensitively, with type coercion', () => {
    const { value, issues } = applyEnvOverrides(
      {},
      {
        MAIRUST__LISTENERS__SMTP__PORT: '25',
        mairust__listeners__imap__enabled: 'false',
        MAIRUST__LISTENERS__POP3__ENABLED: '0',
        MAIRUST__QUEUE__DEFAULT_BACKOFF_SECONDS: '10, 20,40',
        MAIRUST__NATS__SERVERS: '["nats://a:4222","nats://b:4222"]',
        MAIRUST__PLANS__GOLD__MAX_USERS: '50',
        MAIRUST__DEFAULT_PLAN: 'gold',
        MAIRUST__SERVER__DATA_DIR: '/data',
      },
    );
    assert.deepEqual(issues, []);
    const { config, issues: validation } = validateConfigObject(value);
    assert.deepEqual(validation, []);
    assert.equal(config!.listeners.smtp.port, 25);
    assert.equal(config!.listeners.imap.enabled, false);
    assert.equal(config!.listeners.pop3.enabled, false);
    assert.deepEqual(config!.queue.default_backoff_seconds, [10, 20, 40]);
    assert.deepEqual(config!.nats.servers, ['nats://a:4222', 'nats://b:4222']);
    assert.equal(config!.plans.gold.max_users, 50);
    assert.equal(config!.plans.gold.max_domains, 100);
    assert.equal(config!.default_plan, 'gold');
    assert.equal(config!.server.data_dir, '/data');
  });

  test('the generic form wins over the short name for the same key', () => {
    const { value } = applyEnvOverrides({}, { MAIRUST_LOG_LEVEL: 'warn', MAIRUST__LOG__LEVEL: 'trace' });
    assert.deepEqual(value, { log: { level: 'trace' } });
  });

  test('unknown keys and bad values are issues naming the variable', () => {
    const { issues, value } = applyEnvOverrides(
      {},
      {
        MAIRUST__LISTENERS__SMTP__PROT: '25',
        MAIRUST__NOPE: 'x',
        MAIRUST__LISTENERS__SMTP__PORT: '25a',
        MAIRUST__LISTENERS__IMAP__ENABLED: 'yes',
        MAIRUST__QUEUE__DEFAULT_BACKOFF_SECONDS: '1,two',
        MAIRUST__PLANS: '{not json',
        MAIRUST__LISTENERS____SMTP: '1',
        MAIRUST__LOG__LEVEL__DEEP: 'x',
        MAIRUST__QUEUE__DEFAULT_BACKOFF_SECONDS__0: '5',
      },
    );
    assert.deepEqual(value, {}, 'nothing applied');
    const byPath = new Map(issues.map((i) => [i.path, i.message]));
    assert.equal(byPath.get('listeners.smtp.prot'), "unknown key 'prot' (did you mean 'port'?) (environment variable MAIRUST__LISTENERS__SMTP__PROT)");
    assert.match(byPath.get('nope')!, /unknown key 'nope'.*MAIRUST__NOPE/);
    assert.equal(byPath.get('listeners.smtp.port'), "'25a' is not an integer (environment variable MAIRUST__LISTENERS__SMTP__PORT)");
    assert.match(byPath.get('listeners.imap.enabled')!, /'yes' is not a boolean \(use true, false, 1 or 0\)/);
    const listIssues = issues.filter((i) => i.path === 'queue.default_backoff_seconds').map((i) => i.message);
    assert.equal(listIssues.length, 2);
    assert.ok(listIssues.some((m) => /list item 'two' is not an integer/.test(m)), listIssues.join('; '));
    assert.ok(listIssues.some((m) => /is a list; set it as a whole.*__0\)$/.test(m)), listIssues.join('; '));
    assert.match(byPath.get('plans')!, /not valid JSON/);
    assert.match(byPath.get('')!, /MAIRUST__LISTENERS____SMTP: empty key name/);
    assert.match(byPath.get('log.level.deep')!, /'log.level' has no sub-keys/);
    assert.equal(issues.length, 9);
  });

  test('coerceForPath follows the schema type', () => {
    assert.deepEqual(coerceForPath(['listeners', 'http', 'port'], ' 8081 '), { value: 8081 });
    assert.deepEqual(coerceForPath(['database', 'auto_migrate'], 'TRUE'), { value: true });
    assert.deepEqual(coerceForPath(['storage', 'backend'], 's3'), { value: 's3' });
    assert.deepEqual(coerceForPath(['queue', 'default_backoff_seconds'], '[1,2]'), { value: [1, 2] });
    assert.deepEqual(coerceForPath(['queue', 'default_backoff_seconds'], ''), { value: [] });
    assert.deepEqual(coerceForPath(['plans'], '{"x":{}}'), { value: { x: {} } });
    assert.ok('error' in coerceForPath(['plans'], '[1]'));
    assert.ok('error' in coerceForPath(['mail', 'max_message_bytes'], '99999999999999999999'));
    assert.ok('error' in coerceForPath(['no', 'such'], '1'));
  });
});
