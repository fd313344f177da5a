/**
 * The server as an operator runs it: `mairust serve` in a child process, in the current shape
 * (embedded: SQLite + files; cluster: PostgreSQL + S3).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shapeEnv, startServerProcess, waitForReady, runCli, type ShapeEnv } from '../support/server-process.js';
import { shape } from '../support/shape.js';

describe(`mairust serve (${shape})`, () => {
  let s: ShapeEnv;
  before(async () => {
    s = await shapeEnv();
  });
  after(async () => {
    await s.cleanup();
  });

  test('starts, answers /health/ready 200, prints the one-time admin password once, stops on SIGTERM', async () => {
    const env = { ...s.env, MAIRUST_ADMIN_EMAIL: 'root@example.test' };
    const server = startServerProcess(env);
    try {
      const ready = await waitForReady(s.httpPort);
      const body = (await ready.json()) as { status: string; checks: Record<string, { status: string; latency_ms: number }> };
      assert.equal(body.status, 'ok');
      for (const name of ['database', 'blob_store', 'queue']) {
        assert.equal(body.checks[name]?.status, 'ok', `${name} check`);
        assert.equal(typeof body.checks[name].latency_ms, 'number');
      }
      assert.equal((await fetch(`http://127.0.0.1:${s.httpPort}/health/live`)).status, 200);
      const metrics = await (await fetch(`http://127.0.0.1:${s.httpPort}/metrics`)).text();
      assert.match(metrics, /mairust_api_requests_total/);

      const m = await server.waitForOutput(/password:\s+(\S+)/);
      const password = m[1];
      assert.ok(password.length >= 20, 'generated password is long');
      assert.match(server.output(), /root@example\.test/);
      // The password is shown in the banner only: never inside a JSON log line.
      const logLines = server.output().split('\n').filter((l) => l.startsWith('{'));
      assert.ok(logLines.length > 0, 'JSON log lines were written');
      for (const line of logLines) {
        assert.ok(!line.includes(password), `password leaked into a log line: ${line}`);
        const parsed = JSON.parse(line);
        assert.equal(typeof parsed.timestamp, 'string');
        assert.equal(typeof parsed.level, 'string');
        assert.equal(typeof parsed.message, 'string');
      }
      assert.ok(existsSync(join(s.dataDir, 'mairust.pid')), 'pid file written');
    } finally {
      assert.equal(await server.stop('SIGTERM'), 0, 'graceful stop exits 0');
    }
    assert.ok(!existsSync(join(s.dataDir, 'mairust.pid')), 'pid file removed on graceful stop');
    assert.match(server.output(), /shutting down/);

    // A second start finds the super-admin and prints no new password.
    const again = startServerProcess(env);
    try {
      await waitForReady(s.httpPort);
      assert.doesNotMatch(again.output(), /password:/);
    } finally {
      assert.equal(await again.stop(), 0);
    }
  });

  test('`mairust user add` followed by a restart keeps the user', async () => {
    const t = await runCli(['tenant', 'add', 'acme'], s.env);
    assert.equal(t.code, 0, t.stderr);
    const u = await runCli(['user', 'add', 'alice@acme.test', '--tenant', 'acme', '--password-stdin'], s.env, 'correct horse battery staple\n');
    assert.equal(u.code, 0, u.stderr);
    const server = startServerProcess(s.env);
    try {
      await waitForReady(s.httpPort);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    const list = await runCli(['--json', 'user', 'list', '--tenant', 'acme'], s.env);
    assert.equal(list.code, 0, list.stderr);
    const users = JSON.parse(list.stdout) as { email: string }[];
    assert.deepEqual(users.map((x) => x.email), ['alice@acme.test']);
    assert.doesNotMatch(list.stdout, /argon2/, 'no password hash in CLI output');
  });

  test('SIGHUP re-applies reloadable keys and names the ones that need a restart', async () => {
    const cfg = s.env.MAIRUST_CONFIG;
    writeFileSync(cfg, 'log:\n  level: info\n');
    const server = startServerProcess(s.env);
    try {
      await waitForReady(s.httpPort);
      // (Listener ports come from the environment in these tests, which wins over the file: the
      // restart-only key changed here is an SMTP limit.)
      writeFileSync(cfg, 'log:\n  level: debug\nretention:\n  deleted_messages_days: 10\nsmtp:\n  max_recipients: 50\n');
      server.child.kill('SIGHUP');
      const m = await server.waitForOutput(/\{[^\n]*configuration reloaded[^\n]*\}/);
      const line = JSON.parse(m[0]);
      assert.deepEqual([...line.applied].sort(), ['log.level', 'retention.deleted_messages_days']);
      assert.deepEqual(line.restart_required, ['smtp.max_recipients']);
      // The server keeps serving after a reload.
      await waitForReady(s.httpPort);
    } finally {
      assert.equal(await server.stop(), 0);
      writeFileSync(cfg, '');
    }
  });

  test('an invalid config exits with code 2, lists every error and starts nothing', async () => {
    const cfg = join(s.dataDir, 'bad.yaml');
    writeFileSync(cfg, 'smtp:\n  max_recipients: 0\nlisteners:\n  smpt: {}\nlog:\n  format: xml\n');
    const server = startServerProcess({ ...s.env, MAIRUST_CONFIG: cfg });
    const code = await server.exited;
    assert.equal(code, 2);
    const out = server.output();
    assert.match(out, /smtp\.max_recipients: must be >= 1/);
    assert.match(out, /listeners\.smpt: unknown key 'smpt' \(did you mean 'smtp'\?\)/);
    assert.match(out, /log\.format: must be one of: json, text/);
    await assert.rejects(fetch(`http://127.0.0.1:${s.httpPort}/health/live`), 'nothing listens');
    const validate = await runCli(['config', 'validate', cfg], s.env);
    assert.equal(validate.code, 2);
    assert.match(validate.stderr, /smtp\.max_recipients: must be >= 1/);
  });

  test('an unreachable database at start gives a clear message and a non-zero exit', async () => {
    const server = startServerProcess({ ...s.env, MAIRUST_DATABASE_URL: 'postgres://mairust:secretpw@127.0.0.1:1/none' });
    const code = await server.exited;
    assert.notEqual(code, 0);
    assert.match(server.output(), /cannot reach PostgreSQL at postgres:\/\/mairust:\*\*\*@127\.0\.0\.1:1\/none/);
    assert.doesNotMatch(server.output(), /secretpw/, 'the password is not printed');
  });

  test('an unreachable blob store at start gives a clear message and a non-zero exit', async () => {
    const env =
      shape === 'cluster'
        ? { ...s.env, MAIRUST_S3_ENDPOINT: 'http://127.0.0.1:1' }
        : { ...s.env, MAIRUST__STORAGE__FS__PATH: join(s.dataDir, 'not-a-dir') };
    if (shape === 'embedded') writeFileSync(join(s.dataDir, 'not-a-dir'), 'a file where the blob directory should be');
    const server = startServerProcess(env);
    const code = await server.exited;
    assert.notEqual(code, 0);
    assert.match(server.output(), /blob store \((fs|s3)\) is unreachable/);
  });
});
