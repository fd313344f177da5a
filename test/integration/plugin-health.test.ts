/**
 * Plugin health checks (SPEC §7 "Health checks every 30 s; failures feed the breaker"): a real
 * HTTP server on loopback and real health_cmd scripts, recorded through the registry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freshDatabase, tempDir, type TestDatabase } from '../support/shape.js';
import { DatabaseSecretStore } from '../../src/security/secrets/index.js';
import { masterKeyFromBytes } from '../../src/security/secrets/envelope.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { checkHttpHealth, startHealthChecks, type HealthCheckOptions } from '../../src/plugins/health.js';
import { cliActor } from '../../src/security/audit.js';
import type { PluginsConfig } from '../../src/config/sections/plugins.js';

const HTTP_ID = 'com.example.health-http';
const SCRIPT_ID = 'com.example.health-script';

/** No real DNS: names resolve only through this table. */
const resolver: HealthCheckOptions['resolver'] = {
  resolve4: async (name: string) => {
    if (name === 'plugin.test') return ['127.0.0.1'];
    throw Object.assign(new Error(`queryA ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  },
  resolve6: async (name: string) => {
    throw Object.assign(new Error(`queryAaaa ENODATA ${name}`), { code: 'ENODATA' });
  },
};

describe('plugin health checks', () => {
  let t: TestDatabase;
  let work: { path: string; remove(): void };
  let registry: PluginRegistry;
  let server: http.Server;
  let port: number;
  let status = 200;
  let hits = 0;
  const cfg: PluginsConfig = {
    dir: '', trusted_keys: [], require_signature: false, egress_allowlist: ['127.0.0.1', 'plugin.test'],
    health_interval_seconds: 30, log_retention_days: 14, secret_overlap_hours: 24, token_ttl_days: 365,
  };
  const results: [string, boolean, string | null][] = [];
  const onResult = (id: string, ok: boolean, error: string | null) => { results.push([id, ok, error]); };

  async function install(id: string, entry: string, files: Record<string, string> = {}) {
    const dir = join(work.path, `src-${id}`);
    await mkdir(dir);
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    await writeFile(join(dir, 'plugin.toml'), [
      `id = "${id}"`, 'name = "Health"', 'version = "1.0.0"', '[entry]', 'type = "hook"', entry,
      '[hooks]', 'on = ["post_receive"]', '',
    ].join('\n'));
    await registry.installFromDirectory(dir, cliActor);
  }

  before(async () => {
    t = await freshDatabase();
    work = tempDir('plugin-health-');
    registry = new PluginRegistry({
      db: t.db, secrets: new DatabaseSecretStore(t.db, masterKeyFromBytes(randomBytes(32))),
      config: () => cfg, pluginsDir: join(work.path, 'plugins'), mairustVersion: '0.5.0',
    });
    server = http.createServer((req, res) => {
      hits += 1;
      if (req.url === '/hang') return; // never answers
      if (req.url === '/redirect') {
        res.writeHead(302, { Location: '/health' });
        return res.end();
      }
      res.writeHead(req.method === 'GET' ? status : 405);
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;

    await install(HTTP_ID, `protocol = "http"\nendpoint = "http://127.0.0.1:${port}/hook"\nhealth_endpoint = "http://127.0.0.1:${port}/health"`);
    // Exit status from a file the test rewrites; stderr explains a failure.
    await install(SCRIPT_ID, 'protocol = "script"\ncommand = ["node", "main.mjs"]\nhealth_cmd = ["node", "health.mjs"]', {
      'main.mjs': 'process.stdout.write("{}");\n',
      'health.mjs': [
        "import { readFileSync } from 'node:fs';",
        "const code = Number(readFileSync('status.txt', 'utf8'));",
        "if (code !== 0) process.stderr.write('backend unreachable\\n');",
        "if (process.env.MAIRUST_MASTER_KEY !== undefined || process.env.HOME !== process.cwd()) process.exit(3);",
        'process.exit(code);', '',
      ].join('\n'),
      'status.txt': '0',
    });
    // A plugin without a health check and one that is not runnable: both skipped.
    await install('com.example.no-check', 'protocol = "script"\ncommand = ["node", "main.mjs"]', { 'main.mjs': '' });
    for (const id of [HTTP_ID, SCRIPT_ID, 'com.example.no-check']) {
      await registry.approve(id, cliActor, { allowPrivate: true });
      await registry.enable(id, cliActor);
    }
    await install('com.example.not-enabled', `protocol = "http"\nendpoint = "http://127.0.0.1:${port}/hook"\nhealth_endpoint = "http://127.0.0.1:${port}/hang"`);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await t.drop();
    work.remove();
  });

  test('HTTP 200 then 500, exit 0 then 1: recorded, logged and reported', async () => {
    const checker = startHealthChecks({ registry, resolver, intervalMs: () => 3_600_000, onResult });
    try {
      results.length = 0;
      await checker.runOnce();
      assert.deepEqual(results.sort(), [[HTTP_ID, true, null], [SCRIPT_ID, true, null]]);
      const h = await registry.get(HTTP_ID);
      assert.equal(h?.health.ok, true);
      assert.ok(h?.health.checkedAt);
      assert.equal((await registry.get(SCRIPT_ID))?.health.ok, true);
      assert.equal((await registry.get('com.example.no-check'))?.health.ok, null, 'no check: skipped');
      assert.equal((await registry.get('com.example.not-enabled'))?.health.ok, null, 'not runnable: skipped');

      status = 500;
      await writeFile(join((await registry.get(SCRIPT_ID))!.installDir, 'status.txt'), '1');
      results.length = 0;
      await checker.runOnce();
      const byId = Object.fromEntries(results.map(([id, ok, error]) => [id, { ok, error }]));
      assert.equal(byId[HTTP_ID].ok, false);
      assert.match(byId[HTTP_ID].error!, /HTTP 500/);
      assert.equal(byId[SCRIPT_ID].ok, false);
      assert.match(byId[SCRIPT_ID].error!, /exited with status 1: backend unreachable/);
      const failing = await registry.get(HTTP_ID);
      assert.equal(failing?.health.ok, false);
      assert.match(failing?.health.error ?? '', /HTTP 500/);
      assert.ok((await registry.logs(HTTP_ID)).some((l) => l.level === 'warn' && /health check failing/.test(l.message)));

      status = 200;
      await writeFile(join((await registry.get(SCRIPT_ID))!.installDir, 'status.txt'), '0');
      await checker.runOnce();
      assert.equal((await registry.get(SCRIPT_ID))?.health.ok, true);
      assert.ok((await registry.logs(SCRIPT_ID)).some((l) => l.level === 'info' && /passing again/.test(l.message)));
    } finally {
      await checker.stop();
    }
  });

  test('runs never overlap: a second runOnce joins the one in progress', async () => {
    const checker = startHealthChecks({ registry, resolver, intervalMs: () => 3_600_000, onResult });
    try {
      const before = hits;
      await Promise.all([checker.runOnce(), checker.runOnce()]);
      assert.equal(hits - before, 1, 'one GET for one http plugin');
    } finally {
      await checker.stop();
    }
  });

  test('the schedule runs by itself, and stop() ends it', async () => {
    const seen: string[] = [];
    const checker = startHealthChecks({ registry, resolver, intervalMs: () => 50, onResult: (id) => { seen.push(id); } });
    const deadline = Date.now() + 5000;
    while (seen.filter((id) => id === HTTP_ID).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await checker.stop();
    assert.ok(seen.filter((id) => id === HTTP_ID).length >= 2, 'at least two scheduled runs');
    const count = seen.length;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(seen.length, count, 'nothing after stop');
  });

  test('egress: private targets need allowPrivate, names are resolved, no redirects, bounded time', async () => {
    const base = { resolver, timeoutMs: 300 };
    const refused = await checkHttpHealth(`http://127.0.0.1:${port}/health`, { ...base, allowPrivate: false });
    assert.equal(refused.ok, false);
    assert.match(refused.error!, /loopback/);
    const byName = await checkHttpHealth(`http://plugin.test:${port}/health`, { ...base, allowPrivate: true });
    assert.deepEqual(byName, { ok: true, error: null });
    const unknown = await checkHttpHealth(`http://unknown.test:${port}/health`, { ...base, allowPrivate: true });
    assert.equal(unknown.ok, false);
    const redirect = await checkHttpHealth(`http://127.0.0.1:${port}/redirect`, { ...base, allowPrivate: true });
    assert.equal(redirect.ok, false);
    assert.match(redirect.error!, /HTTP 302/);
    const started = Date.now();
    const hang = await checkHttpHealth(`http://127.0.0.1:${port}/hang`, { ...base, allowPrivate: true });
    assert.equal(hang.ok, false);
    assert.match(hang.error!, /no answer within 300 ms/);
    assert.ok(Date.now() - started < 1500, 'answered well within bounds');
  });

  test('a health_cmd that hangs is killed at the timeout', async () => {
    const dir = (await registry.get(SCRIPT_ID))!.installDir;
    await writeFile(join(dir, 'hang.mjs'), 'setInterval(() => {}, 1000);\n');
    const { checkCommandHealth } = await import('../../src/plugins/health.js');
    const started = Date.now();
    const r = await checkCommandHealth(['node', 'hang.mjs'], dir, { timeoutMs: 300 });
    assert.equal(r.ok, false);
    assert.match(r.error!, /did not finish within 300 ms/);
    assert.ok(Date.now() - started < 1500);
    const missing = await checkCommandHealth(['/nonexistent/program'], dir, { timeoutMs: 300 });
    assert.equal(missing.ok, false);
    assert.match(missing.error!, /could not start/);
  });
});
