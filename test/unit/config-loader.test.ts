import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, findConfigFile, loadConfig, type LoadConfigOptions } from '../../src/config/loader.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'config');

/** A sandbox: its own cwd, home and "/etc" file, and an empty environment. */
function sandbox() {
  const root = mkdtempSync(join(tmpdir(), 'mairust-config-'));
  const cwd = join(root, 'work');
  const home = join(root, 'home');
  const systemPath = join(root, 'etc', 'mairust', 'config.yaml');
  mkdirSync(cwd, { recursive: true });
  mkdirSync(home, { recursive: true });
  const write = (path: string, text: string) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return path;
  };
  const opts = (extra: Partial<LoadConfigOptions> = {}): LoadConfigOptions => ({ cwd, home, systemPath, env: {}, ...extra });
  return { root, cwd, home, systemPath, write, opts, remove: () => rmSync(root, { recursive: true, force: true }) };
}

async function issuesOf(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the load to fail');
}

describe('loadConfig: files and search order', () => {
  let box: ReturnType<typeof sandbox>;
  before(() => {
    box = sandbox();
  });
  after(() => box.remove());

  test('no file anywhere → pure defaults, data_dir absolute under cwd', async () => {
    const { config, source } = await loadConfig(box.opts());
    assert.equal(source, null);
    assert.equal(config.listeners.smtp.port, 2525);
    assert.equal(config.database.auto_migrate, true);
    assert.equal(config.server.data_dir, join(box.cwd, 'data'));
  });

  test('a valid fixture fills every default around the given keys', async () => {
    const { config, source } = await loadConfig(box.opts({ configPath: join(fixtures, 'valid.yaml') }));
    assert.equal(source, join(fixtures, 'valid.yaml'));
    assert.equal(config.server.hostname, 'mx.example.com');
    assert.equal(config.listeners.smtp.host, '0.0.0.0');
    assert.equal(config.listeners.smtp.port, 2525);
    assert.equal(config.database.auto_migrate, true);
    assert.equal(config.log.level, 'debug');
    assert.equal(config.plans.gold.max_users, 50);
    assert.equal(config.plans.gold.max_domains, 100);
  });

  test('search order: ./config.yaml < ~/.config < /etc < MAIRUST_CONFIG < --config', async () => {
    const local = box.write(join(box.cwd, 'config.yaml'), 'server: { hostname: local }\n');
    assert.equal((await loadConfig(box.opts())).config.server.hostname, 'local');

    const user = box.write(join(box.home, '.config', 'mairust', 'config.yaml'), 'server: { hostname: user }\n');
    const loaded = await loadConfig(box.opts());
    assert.equal(loaded.config.server.hostname, 'user');
    assert.equal(loaded.source, user);

    box.write(box.systemPath, 'server: { hostname: system }\n');
    assert.equal((await loadConfig(box.opts())).config.server.hostname, 'system');

    const fromEnv = box.write(join(box.root, 'env.yaml'), 'server: { hostname: from-env }\n');
    assert.equal((await loadConfig(box.opts({ env: { MAIRUST_CONFIG: fromEnv } }))).config.server.hostname, 'from-env');

    // --config wins over everything; a relative path is taken from cwd.
    box.write(join(box.cwd, 'explicit.yaml'), 'server: { hostname: explicit }\n');
    const explicit = await loadConfig(box.opts({ configPath: 'explicit.yaml', env: { MAIRUST_CONFIG: fromEnv } }));
    assert.equal(explicit.config.server.hostname, 'explicit');
    assert.equal(explicit.source, join(box.cwd, 'explicit.yaml'));
    assert.equal(findConfigFile(box.opts()).path, box.systemPath);
    void local;
  });

  test('a file named explicitly must exist', async () => {
    const e1 = await issuesOf(loadConfig(box.opts({ configPath: 'nope.yaml' })));
    assert.match(e1.issues[0].message, /nope\.yaml \(from --config\) does not exist/);
    const e2 = await issuesOf(loadConfig(box.opts({ env: { MAIRUST_CONFIG: '/nonexistent/mairust.yaml' } })));
    assert.match(e2.issues[0].message, /\/nonexistent\/mairust\.yaml \(from MAIRUST_CONFIG\) does not exist/);
  });

  test('an empty file is the defaults', async () => {
    const empty = box.write(join(box.root, 'empty.yaml'), '# nothing yet\n');
    assert.equal((await loadConfig(box.opts({ configPath: empty }))).config.listeners.imap.port, 2143);
  });

  test('YAML syntax errors carry the line', async () => {
    const err = await issuesOf(loadConfig(box.opts({ configPath: join(fixtures, 'syntax-error.yaml') })));
    assert.ok(err.issues.length >= 1);
    assert.match(err.issues[0].message, /YAML syntax error in .*syntax-error\.yaml at line \d+, column \d+/);
    assert.ok(err.issues[0].line! >= 5, `line ${err.issues[0].line}`);
    const dup = box.write(join(box.root, 'dup.yaml'), 'log:\n  level: info\n  level: debug\n');
    const dupErr = await issuesOf(loadConfig(box.opts({ configPath: dup })));
    assert.equal(dupErr.issues[0].line, 3);
    assert.match(dupErr.issues[0].message, /unique/i);
  });

  test('a top level that is not a mapping is one clear issue', async () => {
    const list = box.write(join(box.root, 'list.yaml'), '- a\n- b\n');
    const err = await issuesOf(loadConfig(box.opts({ configPath: list })));
    assert.match(err.issues[0].message, /top level must be a mapping/);
  });

  test('a file with several mistakes lists each with its exact path and file line', async () => {
    const err = await issuesOf(loadConfig(box.opts({ configPath: join(fixtures, 'mistakes.yaml') })));
    const got = err.issues.map((i) => `${i.path} @${i.line}: ${i.message}`).sort();
    assert.deepEqual(got, [
      "listeners.imap.enabled @9: must be boolean",
      "listeners.smtp.port @7: must be <= 65535",
      "listeners.smtp.prot @6: unknown key 'prot' (did you mean 'port'?)",
      "queue.lease_seconds @13: must be integer",
      "servre @2: unknown key 'servre' (did you mean 'server'?)",
      'storage.backend @11: must be one of: fs, s3',
    ]);
    assert.match(err.message, /6 issues/);
    assert.match(err.message, /listeners\.smtp\.port: must be <= 65535 \(line 7\)/);
  });
});

describe('loadConfig: secrets', () => {
  let box: ReturnType<typeof sandbox>;
  before(() => {
    box = sandbox();
  });
  after(() => box.remove());

  test('env: and file: references are resolved before validation', async () => {
    const secretFile = box.write(join(box.root, 'db-url'), 'postgres://mairust:s3cret@db:5432/mairust\n');
    const file = box.write(
      join(box.root, 'secrets.yaml'),
      [
        `database: { url: "file:${secretFile}" }`,
        'security: { master_key: "env:TEST_MASTER_KEY", admin_email: "env:TEST_ADMIN" }',
        'listeners: { smtp: { port: "env:TEST_SMTP_PORT" }, imap: { enabled: "env:TEST_IMAP_ON" } }',
        '',
      ].join('\n'),
    );
    const { config } = await loadConfig(
      box.opts({ configPath: file, env: { TEST_MASTER_KEY: 'a2V5', TEST_ADMIN: 'root@example.com', TEST_SMTP_PORT: '25', TEST_IMAP_ON: 'false' } }),
    );
    assert.equal(config.database.url, 'postgres://mairust:s3cret@db:5432/mairust', 'one trailing newline trimmed');
    assert.equal(config.security.master_key, 'a2V5');
    assert.equal(config.security.admin_email, 'root@example.com');
    assert.equal(config.listeners.smtp.port, 25, 'coerced to the schema type');
    assert.equal(config.listeners.imap.enabled, false);
  });

  test('only one trailing newline is trimmed from a secret file; relative paths are from cwd', async () => {
    box.write(join(box.cwd, 'pw'), 'two newlines\n\n');
    const file = box.write(join(box.root, 'pw.yaml'), 'security: { admin_password: "file:pw" }\n');
    const { config } = await loadConfig(box.opts({ configPath: file }));
    assert.equal(config.security.admin_password, 'two newlines\n');
  });

  test('missing variables and files are issues at their paths, all listed', async () => {
    const file = box.write(
      join(box.root, 'missing.yaml'),
      [
        'database: { url: "env:NO_SUCH_VAR" }',
        `storage: { s3: { secret_access_key: "file:${join(box.root, 'absent')}" } }`,
        'security: { master_key: "env:bad name" }',
        'listeners: { smtp: { port: "env:PORT_TEXT" } }',
        '',
      ].join('\n'),
    );
    const err = await issuesOf(loadConfig(box.opts({ configPath: file, env: { PORT_TEXT: 'twenty-five' } })));
    const byPath = new Map(err.issues.map((i) => [i.path, i]));
    assert.equal(byPath.get('database.url')!.message, 'environment variable NO_SUCH_VAR is not set');
    assert.equal(byPath.get('database.url')!.line, 1);
    assert.match(byPath.get('storage.s3.secret_access_key')!.message, /secret file .*absent does not exist/);
    assert.match(byPath.get('security.master_key')!.message, /not a valid environment variable reference/);
    assert.match(byPath.get('listeners.smtp.port')!.message, /'twenty-five' is not an integer \(from env:PORT_TEXT\)/);
    assert.equal(err.issues.length, 4);
  });

  test('useEnvironment: false leaves references alone (syntax-only check)', async () => {
    const file = box.write(join(box.root, 'ref.yaml'), 'database: { url: "env:NOT_SET_HERE" }\n');
    const err = await issuesOf(loadConfig(box.opts({ configPath: file, useEnvironment: false })));
    // Unresolved, the reference itself is validated, and it is not a database URL.
    assert.deepEqual(err.issues.map((i) => i.path), ['database.url']);
    assert.match(err.issues[0].message, /must start with 'sqlite:'/);
  });
});

describe('loadConfig: environment overrides', () => {
  let box: ReturnType<typeof sandbox>;
  before(() => {
    box = sandbox();
  });
  after(() => box.remove());

  test('precedence: defaults < file < environment', async () => {
    const file = box.write(join(box.root, 'p.yaml'), 'log: { level: debug }\nlisteners: { smtp: { port: 2600 } }\nserver: { data_dir: /srv/file }\n');
    const { config } = await loadConfig(
      box.opts({ configPath: file, env: { MAIRUST_LOG_LEVEL: 'warn', MAIRUST_DATA_DIR: 'rel/data', MAIRUST__LISTENERS__IMAP__PORT: '1143' } }),
    );
    assert.equal(config.log.level, 'warn');
    assert.equal(config.listeners.smtp.port, 2600, 'file value kept where no override');
    assert.equal(config.listeners.imap.port, 1143);
    assert.equal(config.server.data_dir, join(box.cwd, 'rel', 'data'), 'resolved against cwd');
  });

  test('an invalid override is reported without a file line', async () => {
    const file = box.write(join(box.root, 'q.yaml'), 'log:\n  level: debug\n');
    const err = await issuesOf(loadConfig(box.opts({ configPath: file, env: { MAIRUST_LOG_LEVEL: 'loud' } })));
    assert.deepEqual(err.issues, [{ path: 'log.level', message: 'must be one of: fatal, error, warn, info, debug, trace, silent' }]);
  });

  test('an override may itself be a secret reference', async () => {
    const { config } = await loadConfig(box.opts({ env: { MAIRUST_DATABASE_URL: 'env:DB', DB: 'postgres://u:p@h/d' } }));
    assert.equal(config.database.url, 'postgres://u:p@h/d');
  });
});
