/**
 * `mairust plugin …` and `mairust hook …` run the way an operator runs them (bin/mairust.mjs in a
 * child process) against a database of the current shape: install → approve → enable → per-tenant
 * enablement → a hook from a JSON file → `hook test` against a REAL script plugin → breaker reset →
 * token and secret rotation → uninstall; every change audited with actor `cli`; secrets printed
 * once and never logged; usage mistakes and unknown ids fail with one line and a non-zero exit.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runCli, type CliResult } from '../support/server-process.js';
import { freshDatabase, shape, tempDir, type TestDatabase } from '../support/shape.js';
import { openDatabase } from '../../src/store/db/database.js';

const ID = 'com.example.cli-tagger';

const dir = tempDir('mairust-plugin-cli-');
let env: Record<string, string>;
let dbUrl: string;
let tdb: TestDatabase | undefined;
const outputs: CliResult[] = [];

async function cli(...args: string[]): Promise<CliResult> {
  const r = await runCli(['--json', ...args], env);
  outputs.push(r);
  return r;
}

function json(r: CliResult): any {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function auditRows(eventType: string): Promise<{ actor: any; target: any }[]> {
  const db = await openDatabase(dbUrl, { dataDir: dir.path });
  try {
    const rows = await db.kysely.selectFrom('audit_log').select(['actor_json', 'target_json']).where('event_type', '=', eventType).execute();
    return rows.map((r) => ({ actor: JSON.parse(r.actor_json), target: JSON.parse(r.target_json) }));
  } finally {
    await db.close();
  }
}

before(async () => {
  const data = join(dir.path, 'data');
  mkdirSync(data, { recursive: true });
  const config: Record<string, unknown> = {
    server: { data_dir: data },
    storage: { backend: 'fs' },
    log: { level: 'info' },
    plugins: { egress_allowlist: ['127.0.0.1'] },
  };
  if (shape === 'cluster') {
    tdb = await freshDatabase({ migrate: false });
    await tdb.db.close();
    dbUrl = tdb.url;
    config.database = { url: dbUrl };
    config.security = { master_key: randomBytes(32).toString('base64') };
  } else {
    dbUrl = `sqlite:${join(data, 'mairust.db')}`;
    config.database = { url: dbUrl };
  }
  writeFileSync(join(dir.path, 'config.yaml'), stringify(config));
  env = { MAIRUST_CONFIG: join(dir.path, 'config.yaml') };

  // A real script plugin: reads the payload on stdin, answers a tag on stdout (SPEC §7 "script").
  const plugin = join(dir.path, 'plugin');
  mkdirSync(plugin);
  writeFileSync(
    join(plugin, 'hook.mjs'),
    [
      "let input = '';",
      "process.stdin.on('data', (c) => (input += c));",
      "process.stdin.on('end', () => {",
      '  const p = JSON.parse(input);',
      `  process.stdout.write(JSON.stringify({ plugin_id: ${JSON.stringify(ID)}, action: 'tag', tags: ['cli-' + p.hook_type] }));`,
      '});',
    ].join('\n'),
  );
  writeFileSync(
    join(plugin, 'plugin.toml'),
    [`id = "${ID}"`, 'name = "CLI tagger"', 'version = "1.0.0"', '[entry]', 'type = "hook"', 'protocol = "script"', `command = [${JSON.stringify(process.execPath)}, "hook.mjs"]`, '[hooks]', 'on = ["post_receive"]', '[permissions]', 'read_headers = true', 'write_tags = true',
      // V8 reserves far more address space than the 128 MiB default RLIMIT_AS allows a node script.
      '[limits]', 'memory_mb = 4096', 'cpu_ms = 10000', 'wall_time_ms = 10000'].join('\n'),
  );
  writeFileSync(join(dir.path, 'hook.json'), JSON.stringify({ id: 'cli-post', type: 'post_receive', plugin_id: ID, tenant_id: 'acme', priority: 20 }));
  writeFileSync(join(dir.path, 'hook-update.json'), JSON.stringify({ type: 'post_receive', plugin_id: ID, priority: 30, timeout_ms: 400000 }));
});

after(async () => {
  dir.remove();
  if (tdb) await tdb.drop().catch(() => {});
});

describe(`mairust plugin / hook (${shape})`, () => {
  let secret = '';

  test('install prints the signing secret once; approve, enable and list', async () => {
    const installed = json(await cli('plugin', 'install', join(dir.path, 'plugin')));
    assert.equal(installed.id, ID);
    assert.equal(installed.status, 'installed');
    assert.match(installed.secret, /^psec_/);
    secret = installed.secret;

    const approved = json(await cli('plugin', 'approve', ID, '--allow-private'));
    assert.equal(approved.approved_permissions.write_tags, true);
    assert.equal(approved.allow_private, true);
    assert.equal(json(await cli('plugin', 'enable', ID)).status, 'enabled');
    const list = json(await cli('plugin', 'list'));
    assert.deepEqual(list.map((p: { id: string; runnable: boolean }) => [p.id, p.runnable]), [[ID, true]]);
    assert.ok(!JSON.stringify(list).includes('psec_'), 'list never prints the secret');
  });

  test('tenant enablement, a hook from a file, and `hook test` against the real script', async () => {
    json(await cli('tenant', 'add', 'acme'));
    const enabled = json(await cli('plugin', 'tenant-enable', ID, '--tenant', 'acme', '--tenant-config', '{"level":2}'));
    assert.equal(enabled.enabled, true);
    assert.deepEqual(enabled.config, { level: 2 });

    const created = json(await cli('hook', 'create', '--file', join(dir.path, 'hook.json')));
    assert.equal(created.id, 'cli-post');
    assert.equal(created.tenant_id, enabled.tenant_id, 'the tenant name was resolved to its id');
    assert.equal(created.timeout_ms, 30000);
    assert.equal(created.circuit_breaker_state.state, 'closed');

    const tested = json(await cli('hook', 'test', 'cli-post'));
    assert.equal(tested.outcome, 'ok', JSON.stringify(tested));
    assert.deepEqual(tested.response.tags, ['cli-post_receive']);
    assert.equal(tested.request.payload.hook_type, 'post_receive');

    const bad = await cli('hook', 'update', 'cli-post', '--file', join(dir.path, 'hook-update.json'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /timeout_ms/, 'over the 300 s hard maximum');

    const reset = json(await cli('hook', 'reset-breaker', 'cli-post'));
    assert.equal(reset.state, 'closed');
  });

  test('token and secret rotation print the new value once; bad input fails cleanly', async () => {
    const t = json(await cli('plugin', 'token-rotate', ID, '--scope', 'read'));
    assert.match(t.token, /^plt_/);
    assert.deepEqual(t.scopes, ['read']);
    const s = json(await cli('plugin', 'secret-rotate', ID));
    assert.match(s.secret, /^psec_/);
    assert.notEqual(s.secret, secret);

    const scope = await cli('plugin', 'token-rotate', ID, '--scope', 'admin');
    assert.equal(scope.code, 2);
    assert.match(scope.stderr, /--scope/);
    const missing = await cli('plugin', 'show', 'com.example.nothing');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not installed/);
    assert.ok(!/at .*\.ts:\d+/.test(missing.stderr), 'no stack trace');

    // Each secret or token was printed by exactly one command, and never to stderr (the log).
    for (const value of [secret, t.token, s.secret]) {
      assert.equal(outputs.filter((o) => o.stdout.includes(value)).length, 1);
      assert.ok(!outputs.some((o) => o.stderr.includes(value)));
    }
  });

  test('delete and uninstall; every change was audited as cli', async () => {
    assert.equal(json(await cli('hook', 'delete', 'cli-post')).deleted, true);
    assert.equal(json(await cli('plugin', 'uninstall', ID)).uninstalled, true);
    assert.deepEqual(json(await cli('plugin', 'list')), []);
    for (const ev of ['plugin.installed', 'plugin.approved', 'plugin.enabled', 'plugin.tenant_changed', 'plugin.token_rotated', 'plugin.secret_rotated', 'plugin.uninstalled', 'hook.created', 'hook.breaker_reset', 'hook.deleted']) {
      const rows = await auditRows(ev);
      assert.equal(rows.length, 1, ev);
      assert.deepEqual(rows[0].actor, { type: 'cli' }, ev);
    }
  });
});
