/**
 * `mairust plugin init` and `mairust plugin package` (SPEC §7), as an author runs them: a real CLI
 * process, then the package read back the way the server installs it (readPluginPackage with a
 * trusted key) and the packaged script plugin run through the script executor. The commands need
 * no database, so the test is the same in both shapes.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { MAIRUST_VERSION } from '../../src/core/version.js';
import { buildProgram } from '../../src/cli/main.js';
import { initPlugin, packagePlugin, PluginDevError } from '../../src/cli/plugin-dev.js';
import { validateHookResponse } from '../../src/hooks/config.js';
import { runScript } from '../../src/hooks/executors/script.js';
import { keyFingerprint, PluginPackageError, readPluginPackage } from '../../src/plugins/package.js';
import { repoRoot, runCli, type CliResult } from '../support/server-process.js';
import { tempDir } from '../support/shape.js';

const work = tempDir('mairust-plugin-dev-');
const extracted: string[] = [];
after(async () => {
  work.remove();
  for (const d of extracted) await rm(d, { recursive: true, force: true });
});

/** Whether `mairust` itself has `plugin init` yet (src/cli/plugin.ts calls registerPluginDev). */
function wired(): boolean {
  const plugin = buildProgram().program.commands.find((c) => c.name() === 'plugin');
  return plugin?.commands.some((c) => c.name() === 'init') ?? false;
}

/**
 * Until the `plugin` command group is wired into main.ts, the same program with registerPluginDev
 * added, in its own process like bin/mairust.mjs.
 */
const RUNNER = `
const { buildProgram } = await import(${JSON.stringify(`${repoRoot}src/cli/main.ts`)});
const { registerPluginDev } = await import(${JSON.stringify(`${repoRoot}src/cli/plugin-dev.ts`)});
const { program, cli } = buildProgram();
const plugin = program.commands.find((c) => c.name() === 'plugin') ?? program.command('plugin');
if (!plugin.commands.some((c) => c.name() === 'init')) registerPluginDev(plugin, cli);
try {
  await program.parseAsync(JSON.parse(process.env.PLUGIN_DEV_ARGS), { from: 'user' });
} catch (err) {
  if (String(err.code).startsWith('commander.')) process.exitCode = err.exitCode;
  else { process.stderr.write('error: ' + err.message + '\\n'); process.exitCode = 1; }
}`;

const useBin = wired();

function mairust(args: string[]): Promise<CliResult> {
  if (useBin) return runCli(args, {});
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', RUNNER], {
      cwd: repoRoot,
      env: { ...process.env, PLUGIN_DEV_ARGS: JSON.stringify(args) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function json(r: CliResult): Record<string, unknown> {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const keys = generateKeyPairSync('ed25519');
const keyFile = path.join(work.path, 'signing.pem');
writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
const publicPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();

describe('mairust plugin init', () => {
  test('copies a template under a new id and name, into a new directory', async () => {
    const dir = path.join(work.path, 'notify');
    const out = json(await mairust(['--json', 'plugin', 'init', dir, '--template', 'webhook-notifier', '--id', 'com.acme.notify', '--name', 'Acme "notify"']));
    assert.equal(out.id, 'com.acme.notify');
    assert.equal(out.template, 'webhook-notifier');
    assert.deepEqual(out.files, ['README.md', 'plugin.toml', 'server.mjs', 'signature.mjs']);
    const toml = readFileSync(path.join(dir, 'plugin.toml'), 'utf8');
    assert.match(toml, /^id = "com\.acme\.notify"$/m);
    assert.match(toml, /^name = "Acme \\"notify\\""$/m);
    assert.match(toml, /^endpoint = "http:\/\/127\.0\.0\.1:8787\/hook"$/m);
    // The example's own default id follows the new one.
    assert.match(readFileSync(path.join(dir, 'server.mjs'), 'utf8'), /'com\.acme\.notify'/);
    assert.doesNotMatch(readFileSync(path.join(dir, 'server.mjs'), 'utf8'), /com\.example\.webhook-notifier/);
  });

  test('derives the id from the directory name; the SDK import of a TypeScript example still resolves', async () => {
    const dir = path.join(work.path, 'My_Tagger');
    const out = json(await mairust(['--json', 'plugin', 'init', dir, '--template', 'tagging']));
    assert.equal(out.id, 'com.example.my-tagger');
    assert.equal(out.name, 'My tagger');
    const server = readFileSync(path.join(dir, 'server.ts'), 'utf8');
    const spec = /from '([^']*sdk\/src\/index\.js)'/.exec(server)?.[1];
    assert.ok(spec && spec !== '../../../sdk/src/index.js', `import rewritten: ${spec}`);
    assert.ok(existsSync(path.resolve(dir, spec.replace(/\.js$/, '.ts'))), `${spec} resolves from ${dir}`);
  });

  test('refuses a non-empty directory, an invalid id and an unknown template, writing nothing', async () => {
    const dir = path.join(work.path, 'notify');
    const before = readFileSync(path.join(dir, 'plugin.toml'), 'utf8');
    const busy = await mairust(['plugin', 'init', dir, '--template', 'echo']);
    assert.equal(busy.code, 2);
    assert.match(busy.stderr, /is not empty/);
    assert.equal(readFileSync(path.join(dir, 'plugin.toml'), 'utf8'), before);

    const badId = await mairust(['plugin', 'init', path.join(work.path, 'bad-id'), '--id', 'Not An Id']);
    assert.equal(badId.code, 2);
    assert.match(badId.stderr, /id: must be a lower-case reverse-DNS name/);
    assert.equal(existsSync(path.join(work.path, 'bad-id')), false);

    // The same checks without a process per case (each CLI start costs seconds on a busy machine).
    await assert.rejects(initPlugin({ dir: path.join(work.path, 'bad-template'), template: 'spamassassin' }), (err: unknown) =>
      err instanceof PluginDevError && /unknown template "spamassassin"/.test(err.message));
    assert.equal(existsSync(path.join(work.path, 'bad-template')), false);
    await assert.rejects(initPlugin({ dir: path.join(work.path, 'bad-name'), name: 'two\nlines' }), /name: must not contain control characters/);
    assert.equal(existsSync(path.join(work.path, 'bad-name')), false);
  });
});

describe('mairust plugin package', () => {
  test('init echo → signed package → read back with the trusted key → the script runs under its new id', async () => {
    const dir = path.join(work.path, 'echo-plugin');
    json(await mairust(['--json', 'plugin', 'init', dir, '--template', 'echo', '--id', 'com.acme.echo']));
    const file = path.join(work.path, 'echo.mairust-plugin');
    const out = json(await mairust(['--json', 'plugin', 'package', dir, '--out', file, '--key', keyFile]));
    assert.equal(out.file, file);
    assert.equal(out.id, 'com.acme.echo');
    assert.equal(out.version, '1.0.0');
    assert.equal(out.signed, true);
    assert.equal(out.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'));
    assert.equal(out.key_fingerprint, keyFingerprint(keys.publicKey));

    const pkg = await readPluginPackage(file, { trustedKeys: [publicPem], requireSignature: true, mairustVersion: MAIRUST_VERSION });
    extracted.push(pkg.dir);
    assert.equal(pkg.signature.status, 'valid');
    assert.equal(pkg.manifest.id, 'com.acme.echo');
    assert.deepEqual(pkg.files, ['MANIFEST.sha256', 'MANIFEST.sig', 'README.md', 'echo.mjs', 'plugin.toml']);
    assert.ok(statSync(path.join(pkg.dir, 'echo.mjs')).mode & 0o100, 'the entry script stays executable');

    const m = pkg.manifest;
    assert.equal(m.entry.protocol, 'script');
    if (m.entry.protocol !== 'script') return;
    const result = await runScript({
      command: [path.resolve(pkg.dir, m.entry.command[0])],
      cwd: pkg.dir,
      payload: { hook_type: 'pre_delivery', message_id: 'm-9', envelope: { from: 'a@example.net', to: ['b@example.com'] } },
      wallTimeMs: m.limits.wall_time_ms,
      memoryBytes: m.limits.memory_mb * 1024 * 1024,
    });
    assert.ok(result.ok, !result.ok ? result.message : '');
    const valid = validateHookResponse(result.response);
    assert.ok(valid.ok);
    assert.equal(valid.response.plugin_id, 'com.acme.echo');
  });

  test('unsigned by default; a server that requires signatures refuses it', async () => {
    const file = path.join(work.path, 'unsigned.mairust-plugin');
    const out = json(await mairust(['--json', 'plugin', 'package', path.join(work.path, 'notify'), '--out', file]));
    assert.equal(out.signed, false);
    assert.equal(out.key_fingerprint, null);
    const unsigned = await readPluginPackage(file, { trustedKeys: [], requireSignature: false, mairustVersion: MAIRUST_VERSION });
    extracted.push(unsigned.dir);
    assert.equal(unsigned.manifest.id, 'com.acme.notify');
    await assert.rejects(
      readPluginPackage(file, { trustedKeys: [publicPem], requireSignature: true, mairustVersion: MAIRUST_VERSION }),
      (err: unknown) => err instanceof PluginPackageError && err.code === 'signature_required',
    );
  });

  test('refuses a key that is not Ed25519 (exit 2), a broken manifest and an output inside the plugin directory', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaFile = path.join(work.path, 'rsa.pem');
    writeFileSync(rsaFile, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const wrongKey = await mairust(['plugin', 'package', path.join(work.path, 'notify'), '--out', path.join(work.path, 'x.mairust-plugin'), '--key', rsaFile]);
    assert.equal(wrongKey.code, 2);
    assert.match(wrongKey.stderr, /rsa key; packages are signed with Ed25519/);
    assert.equal(existsSync(path.join(work.path, 'x.mairust-plugin')), false);

    await assert.rejects(packagePlugin({ dir: path.join(work.path, 'notify'), out: path.join(work.path, 'notify', 'self.mairust-plugin') }), (err: unknown) =>
      err instanceof PluginDevError && /outside the plugin directory/.test(err.message));

    const broken = path.join(work.path, 'broken');
    await initPlugin({ dir: broken, template: 'echo' });
    const toml = readFileSync(path.join(broken, 'plugin.toml'), 'utf8');
    writeFileSync(path.join(broken, 'plugin.toml'), toml.replace('version = "1.0.0"', 'version = "one"'));
    await assert.rejects(packagePlugin({ dir: broken, out: path.join(work.path, 'broken.mairust-plugin') }), (err: unknown) =>
      err instanceof PluginDevError && /version: "one" is not a semantic version/.test(err.message));
    assert.equal(existsSync(path.join(work.path, 'broken.mairust-plugin')), false);
  });
});
