import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { register, EXIT_INVALID_CONFIG } from '../../src/cli/config.js';
import type { CliContext, GlobalOptions } from '../../src/cli/cli-context.js';
import { renderConfigReference } from '../../src/config/docs.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', 'fixtures', 'config');
const repoRoot = join(here, '..', '..');

interface Run {
  out: string;
  err: string;
  exitCode: number;
}

/**
 * Runs `mairust [globals] config …` in-process with a CliContext that records failures, and the
 * loader pointed at an empty sandbox so the host's real config files and environment do not leak in.
 */
async function run(args: string[], sandbox: { cwd: string; home: string; systemPath: string }, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const result: Run = { out: '', err: '', exitCode: 0 };
  const program = new Command('mairust').option('-c, --config <file>').option('--json').exitOverride();
  const cli: CliContext = {
    globals: () => program.opts<GlobalOptions>(),
    open: () => {
      throw new Error('config commands must not open the application');
    },
    print: (value) => {
      result.out += JSON.stringify(value) + '\n';
    },
    fail: (message, exitCode = 1) => {
      result.err += `error: ${message}\n`;
      result.exitCode = exitCode;
    },
  };
  register(program, cli, {
    out: (t) => void (result.out += t),
    err: (t) => void (result.err += t),
    loadOptions: { ...sandbox, env },
  });
  await program.parseAsync(['node', 'mairust', ...args]);
  return result;
}

describe('mairust config', () => {
  let root: string;
  let sandbox: { cwd: string; home: string; systemPath: string };
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'mairust-cli-config-'));
    sandbox = { cwd: join(root, 'cwd'), home: join(root, 'home'), systemPath: join(root, 'etc', 'config.yaml') };
    mkdirSync(sandbox.cwd);
    mkdirSync(sandbox.home);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('validate FILE: a valid file → OK and exit 0', async () => {
    const file = join(fixtures, 'valid.yaml');
    const r = await run(['config', 'validate', file], sandbox);
    assert.equal(r.out, `OK: ${file} is valid\n`);
    assert.equal(r.err, '');
    assert.equal(r.exitCode, 0);
  });

  test('validate FILE: every issue on its own `path: message` line, exit 2', async () => {
    const r = await run(['config', 'validate', join(fixtures, 'mistakes.yaml')], sandbox);
    assert.equal(r.exitCode, EXIT_INVALID_CONFIG);
    assert.equal(r.out, '');
    const lines = r.err.trim().split('\n');
    assert.ok(lines.includes("servre: unknown key 'servre' (did you mean 'server'?) (line 2)"), r.err);
    assert.ok(lines.includes("listeners.smtp.prot: unknown key 'prot' (did you mean 'port'?) (line 6)"), r.err);
    assert.ok(lines.includes('listeners.smtp.port: must be <= 65535 (line 7)'), r.err);
    assert.ok(lines.includes('listeners.imap.enabled: must be boolean (line 9)'), r.err);
    assert.ok(lines.includes('storage.backend: must be one of: fs, s3 (line 11)'), r.err);
    assert.ok(lines.includes('queue.lease_seconds: must be integer (line 13)'), r.err);
    assert.match(lines[lines.length - 1], /^error: .*mistakes\.yaml: 6 issues$/);
  });

  test('validate without FILE uses the search path (here: none → defaults)', async () => {
    const r = await run(['config', 'validate'], sandbox);
    assert.equal(r.out, 'OK: no config file found; the built-in defaults are valid\n');
    const cwdFile = join(sandbox.cwd, 'config.yaml');
    writeFileSync(cwdFile, 'log: { level: chatty }\n');
    try {
      const bad = await run(['config', 'validate'], sandbox);
      assert.equal(bad.exitCode, 2);
      assert.match(bad.err, /^log\.level: must be one of: .* \(line 1\)$/m);
      const global = await run(['--config', join(fixtures, 'valid.yaml'), 'config', 'validate'], sandbox);
      assert.equal(global.exitCode, 0, 'the global --config wins over ./config.yaml');
    } finally {
      rmSync(cwdFile);
    }
  });

  test('validate: a missing FILE and a YAML syntax error exit 2', async () => {
    const missing = await run(['config', 'validate', join(root, 'missing.yaml')], sandbox);
    assert.equal(missing.exitCode, 2);
    assert.match(missing.err, /missing\.yaml \(from --config\) does not exist/);
    const syntax = await run(['config', 'validate', join(fixtures, 'syntax-error.yaml')], sandbox);
    assert.equal(syntax.exitCode, 2);
    assert.match(syntax.err, /YAML syntax error .* at line \d+, column \d+/);
  });

  test('validate --no-env skips environment overrides and secret references', async () => {
    const file = join(fixtures, 'cluster.yaml');
    const withEnv = await run(['config', 'validate', file], sandbox, {});
    assert.equal(withEnv.exitCode, 2);
    assert.match(withEnv.err, /^database\.url: environment variable MAIRUST_TEST_DB_URL is not set \(line 15\)$/m);
    const env = { MAIRUST_TEST_DB_URL: 'postgres://u:p@h/db', MAIRUST_TEST_S3_KEY: 'k', MAIRUST_TEST_S3_SECRET: 's', MAIRUST_TEST_MASTER_KEY: 'm' };
    assert.equal((await run(['config', 'validate', file], sandbox, env)).exitCode, 0);
    const broken = await run(['config', 'validate', '--no-env', file], sandbox, env);
    assert.equal(broken.exitCode, 2, 'without the environment the env: reference is not a database URL');
  });

  test('schema prints the JSON Schema', async () => {
    const r = await run(['config', 'schema'], sandbox);
    const schema = JSON.parse(r.out) as Record<string, any>;
    assert.equal(schema.$id, 'https://mairust.dev/schema/config.json');
    assert.equal(schema.properties.log.properties.level['x-reloadable'], true);
  });

  test('show prints the effective config with secrets masked', async () => {
    const file = join(root, 'show.yaml');
    writeFileSync(file, 'database: { url: "postgres://mairust:topsecret@db/mairust" }\nsecurity: { admin_password: env:PW }\n');
    const r = await run(['--config', file, 'config', 'show'], sandbox, { PW: 'letmein', MAIRUST__LISTENERS__SMTP__PORT: '25' });
    assert.equal(r.exitCode, 0, r.err);
    assert.ok(!r.out.includes('topsecret') && !r.out.includes('letmein'), r.out);
    const shown = JSON.parse(r.out) as Record<string, any>;
    assert.equal(shown.database.url, 'postgres://mairust:***@db/mairust');
    assert.equal(shown.security.admin_password, '***');
    assert.equal(shown.listeners.smtp.port, 25);
    assert.equal(shown.server.data_dir, join(sandbox.cwd, 'data'));
  });

  test('docs prints the reference, and docs/config.md is up to date', async () => {
    const r = await run(['config', 'docs'], sandbox);
    assert.equal(r.out, renderConfigReference());
    const committed = readFileSync(join(repoRoot, 'docs', 'config.md'), 'utf8');
    assert.equal(committed, r.out, 'docs/config.md is stale: run `mairust config docs > docs/config.md`');
  });
});

describe('renderConfigReference', () => {
  const md = renderConfigReference();

  test('has the generated-file header, one table per section and the env variables', () => {
    assert.match(md.split('\n')[0], /^<!-- Generated by `mairust config docs > docs\/config\.md`/);
    for (const section of ['server', 'listeners', 'database', 'storage', 'queue', 'log', 'security']) {
      assert.ok(md.includes(`## \`${section}\``), section);
    }
    assert.ok(md.includes('| key | type | default | reloadable | secret | description |'));
    assert.match(md, /\| `listeners\.smtp\.port` \| integer \(0–65535\) \| `2525` \| no \| no \|/);
    assert.match(md, /\| `log\.level` \| one of `fatal`.*\| `"info"` \| yes \| no \|/);
    assert.match(md, /\| `database\.url` \| string \| `"sqlite:"` \| no \| yes \|/);
    assert.match(md, /\| `plans\.<name>\.max_users` \| integer \(≥ 0\) \| `1000` \| yes \| no \|/);
    assert.match(md, /\| `MAIRUST_DATABASE_URL` \| `database\.url` \|/);
    assert.ok(md.includes('MAIRUST__LISTENERS__SMTP__PORT=25'));
  });
});
