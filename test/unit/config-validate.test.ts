import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { closest, configJsonSchema, formatPath, validateConfigObject } from '../../src/config/validate.js';

describe('validateConfigObject', () => {
  test('an empty object becomes the full default config', () => {
    const { config, issues } = validateConfigObject({});
    assert.deepEqual(issues, []);
    assert.ok(config);
    assert.equal(config.listeners.smtp.port, 2525);
    assert.equal(config.listeners.http.port, 8080);
    assert.equal(config.database.auto_migrate, true);
    assert.equal(config.database.url, 'sqlite:');
    assert.equal(config.storage.backend, 'fs');
    assert.equal(config.storage.s3.checksum, 'WHEN_REQUIRED');
    assert.deepEqual(config.queue.default_backoff_seconds, [30, 120, 600]);
    assert.equal(config.log.level, 'info');
    // Defaults under a record (patternProperties) are filled too.
    assert.equal(config.plans.default.max_users, 1000);
    assert.equal(config.plans.default.daily_outbound, 10000);
    assert.equal(config.server.node_id, undefined);
  });

  test('given values are kept and their siblings defaulted; the input is not modified', () => {
    const input = { listeners: { smtp: { port: 25 } }, plans: { gold: { max_users: 5 } }, default_plan: 'gold' };
    const snapshot = structuredClone(input);
    const { config, issues } = validateConfigObject(input);
    assert.deepEqual(issues, []);
    assert.equal(config!.listeners.smtp.port, 25);
    assert.equal(config!.listeners.smtp.host, '127.0.0.1');
    assert.equal(config!.listeners.imap.port, 2143);
    assert.equal(config!.plans.gold.max_users, 5);
    assert.equal(config!.plans.gold.max_domains, 100);
    assert.equal(config!.plans.default, undefined, 'a plans section replaces the default plans');
    assert.deepEqual(input, snapshot);
  });

  test('every mistake is reported at once with its dotted path', () => {
    const { config, issues } = validateConfigObject({
      servre: { hostname: 'x' },
      listeners: { smtp: { prot: 25, port: 70000 }, imap: { enabled: 'yes' } },
      storage: { backend: 'gcs' },
      log: { level: 5 },
      queue: { default_backoff_seconds: [30, 'soon'] },
      plans: { 'Gold!': {} },
    });
    assert.equal(config, undefined);
    const byPath = new Map(issues.map((i) => [i.path, i.message]));
    assert.match(byPath.get('servre')!, /unknown key 'servre' \(did you mean 'server'\?\)/);
    assert.match(byPath.get('listeners.smtp.prot')!, /unknown key 'prot' \(did you mean 'port'\?\)/);
    assert.equal(byPath.get('listeners.smtp.port'), 'must be <= 65535');
    assert.equal(byPath.get('listeners.imap.enabled'), 'must be boolean');
    assert.equal(byPath.get('storage.backend'), 'must be one of: fs, s3');
    assert.equal(byPath.get('log.level'), 'must be one of: fatal, error, warn, info, debug, trace, silent');
    assert.equal(byPath.get('queue.default_backoff_seconds[1]'), 'must be integer');
    assert.match(byPath.get('plans.Gold!')!, /must match/);
    assert.equal(issues.length, 8, JSON.stringify(issues, null, 1));
  });

  test('an unknown key far from every known one lists the allowed keys', () => {
    const { issues } = validateConfigObject({ listeners: { smtp: { colour: 'blue' } } });
    assert.deepEqual(issues, [{ path: 'listeners.smtp.colour', message: "unknown key 'colour' (allowed: enabled, host, port)" }]);
  });

  test('wrong section types and a non-mapping top level', () => {
    assert.deepEqual(validateConfigObject({ listeners: 5 }).issues, [{ path: 'listeners', message: 'must be a mapping' }]);
    assert.deepEqual(validateConfigObject({ nats: { servers: 'x' } }).issues, [{ path: 'nats.servers', message: 'must be a list' }]);
    assert.match(validateConfigObject([1, 2]).issues[0].message, /must be a mapping of sections \(got a list\)/);
    assert.match(validateConfigObject(null).issues[0].message, /got null/);
  });

  test('cross-field rules: default_plan must exist, database url scheme, postgres events need postgres', () => {
    const { issues } = validateConfigObject({
      plans: { gold: {} },
      database: { url: 'mysql://x' },
      events: { backend: 'postgres' },
    });
    const paths = issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['database.url', 'default_plan', 'events.backend']);
    assert.match(issues.find((i) => i.path === 'default_plan')!.message, /plan 'default'.*defined: gold/);
    assert.deepEqual(validateConfigObject({ database: { url: 'postgres://u:p@h/db' }, events: { backend: 'postgres' } }).issues, []);
  });

  test('range limits name the bound', () => {
    const { issues } = validateConfigObject({ mail: { preview_bytes: 100 }, database: { pool_max: 0 } });
    assert.deepEqual(
      issues.map((i) => `${i.path}: ${i.message}`).sort(),
      ['database.pool_max: must be >= 1', 'mail.preview_bytes: must be >= 1024'],
    );
  });
});

describe('configJsonSchema', () => {
  test('is plain JSON with $id, draft-07 $schema and the x-reloadable / x-secret marks', () => {
    const text = JSON.stringify(configJsonSchema());
    const schema = JSON.parse(text) as Record<string, any>;
    assert.equal(schema.$id, 'https://mairust.dev/schema/config.json');
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    assert.equal(schema.properties.log.properties.level['x-reloadable'], true);
    assert.equal(schema.properties.database.properties.url['x-secret'], true);
    assert.equal(schema.properties.listeners.properties.smtp.properties.port.default, 2525);
    assert.ok(text.includes('"x-reloadable":true'));
  });

  test('a plain Ajv (no TypeBox) can compile it and it rejects a bad port', () => {
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(configJsonSchema());
    assert.equal(validate({ listeners: { smtp: { port: 99999 } } }), false);
  });
});

describe('helpers', () => {
  test('formatPath uses dots and [n] for list indexes', () => {
    assert.equal(formatPath(['listeners', 'smtp', 'port']), 'listeners.smtp.port');
    assert.equal(formatPath(['queue', 'default_backoff_seconds', 2]), 'queue.default_backoff_seconds[2]');
    assert.equal(formatPath([]), '');
  });

  test('closest suggests near misspellings only', () => {
    assert.equal(closest('prot', ['enabled', 'host', 'port']), 'port');
    assert.equal(closest('lisetners', ['server', 'listeners']), 'listeners');
    assert.equal(closest('xyz', ['enabled', 'host', 'port']), undefined);
  });
});
