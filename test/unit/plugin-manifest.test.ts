import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { formatIssue, ManifestError, parseManifest, type ManifestIssue } from '../../src/plugins/manifest.js';

const FIXTURES = new URL('../fixtures/plugins/', import.meta.url).pathname;
const V = { mairustVersion: '0.1.0' };

const MINIMAL = `
id = "com.example.minimal"
name = "Minimal"
version = "0.0.1"
[entry]
type = "service"
protocol = "http"
endpoint = "http://127.0.0.1:9000/"
`;

function errorsOf(text: string, opts = V): ManifestIssue[] {
  const r = parseManifest(text, opts);
  assert.equal(r.ok, false, 'expected the manifest to be refused');
  return r.ok ? [] : r.errors;
}

function hasError(text: string, path: string, message: RegExp, opts = V): void {
  const errors = errorsOf(text, opts);
  const hit = errors.find((e) => e.path === path && message.test(e.message));
  assert.ok(hit, `no error at ${path} matching ${message}; got ${JSON.stringify(errors)}`);
}

/** The minimal manifest with extra TOML appended to the [entry] table or the document. */
const withTop = (top: string) => `${top}\n${MINIMAL}`;

describe('plugin.toml parsing', () => {
  it('parses a full manifest with defaults applied', async () => {
    const r = parseManifest(await readFile(FIXTURES + 'tagger/plugin.toml', 'utf8'), V);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    const m = r.manifest;
    assert.equal(m.id, 'com.example.spam-tagger');
    assert.equal(m.version, '2.1.0-beta.1');
    assert.deepEqual(m.compat, { mairust_min: '0.1.0', mairust_max: '1.0.0' });
    assert.deepEqual(m.entry, {
      type: 'hook', protocol: 'http', endpoint: 'https://tagger.example.com/hook',
      health_endpoint: 'https://tagger.example.com/health', callback_api: true,
    });
    assert.deepEqual(m.hooks, {
      on: ['pre_receive', 'post_receive'],
      filter: { recipient_matches: '@example\\.com$', has_attachments: false, size_lt: 1048576 },
    });
    assert.equal(m.permissions.read_body, 'preview');
    assert.equal(m.permissions.write_tags, true);
    assert.equal(m.permissions.delete_message, false);
    assert.deepEqual(m.limits, { cpu_ms: 1000, memory_mb: 2048, wall_time_ms: 5000, network: 'allowlist' });
    assert.deepEqual(m.logging, { level: 'debug' });
    assert.equal(m.author, null);
  });

  it('parses a script plugin', async () => {
    const r = parseManifest(await readFile(FIXTURES + 'echo/plugin.toml', 'utf8'), V);
    assert.ok(r.ok);
    assert.deepEqual(r.manifest.entry, {
      type: 'hook', protocol: 'script', command: ['node', 'echo.mjs'], health_cmd: null, callback_api: false,
    });
    assert.equal(r.manifest.limits.wall_time_ms, 2000);
    assert.equal(r.manifest.homepage, 'https://example.com/echo');
  });

  it('reports a TOML syntax error with line and column', () => {
    const [e] = errorsOf('id = "com.example.x"\nname = "X"\nversion = = "1.0.0"\n');
    assert.equal(e.line, 3);
    assert.equal(typeof e.column, 'number');
    assert.match(e.message, /^TOML syntax error: /);
    assert.match(formatIssue(e), /^line 3, column \d+: TOML syntax error/);
  });

  it('names unknown keys at every level', () => {
    hasError(withTop('colour = "blue"'), 'colour', /unknown key 'colour'/);
    hasError(MINIMAL + 'retries = 3\n', 'entry.retries', /unknown key 'entry\.retries'/);
    hasError(MINIMAL + '[limits]\ndisk_mb = 5\n', 'limits.disk_mb', /unknown key/);
    hasError(MINIMAL + '[permissions]\nread_everything = true\n', 'permissions.read_everything', /unknown permission/);
    hasError(MINIMAL + '[scripts]\na = 1\n', 'scripts', /unknown key 'scripts'/);
  });

  it('validates the id as lower-case reverse-DNS of 3-100 characters', () => {
    for (const bad of ['spam', 'Com.Example.X', 'com..x', 'com.example.', '-com.x', 'com.-x', 'com.x-', 'c.' + 'a'.repeat(99), 'com.ex ample']) {
      hasError(MINIMAL.replace('com.example.minimal', bad), 'id', /reverse-DNS|at most 100/);
    }
    for (const good of ['a.b', 'com.example.spam-tagger', 'io.mairust.x1']) {
      assert.ok(parseManifest(MINIMAL.replace('com.example.minimal', good), V).ok, good);
    }
  });

  it('requires id, name, version and [entry]', () => {
    const errors = errorsOf('description = "nothing"\n');
    assert.deepEqual(errors.map((e) => e.path).sort(), ['entry', 'id', 'name', 'version']);
    hasError('id = "a.b"\nname = "n"\nversion = "1.0.0"\n', 'entry', /missing \[entry\] table/);
  });

  it('validates version, name, homepage and text fields', () => {
    hasError(MINIMAL.replace('"0.0.1"', '"1.0"'), 'version', /"1\.0" is not a semantic version/);
    hasError(MINIMAL.replace('"0.0.1"', '"v1.0.0"'), 'version', /not a semantic version/);
    hasError(MINIMAL.replace('"0.0.1"', '100'), 'version', /must be a string/);
    hasError(MINIMAL.replace('"Minimal"', '"   "'), 'name', /must not be empty/);
    hasError(MINIMAL.replace('"Minimal"', '"a\\u0007b"'), 'name', /control characters/);
    hasError(withTop(`name2 = 1`), 'name2', /unknown key/);
    hasError(withTop('homepage = "http://example.com"'), 'homepage', /https:\/\/ URL/);
    hasError(withTop('homepage = "https://user:pw@example.com"'), 'homepage', /https:\/\/ URL/);
    hasError(withTop(`author = "${'x'.repeat(201)}"`), 'author', /at most 200 characters/);
    assert.ok(parseManifest(withTop('description = """\nline one\nline two\n"""'), V).ok);
  });

  it('checks the compat range against the running MaiRust', () => {
    const compat = (min: string | null, max: string | null, version: string) =>
      MINIMAL + '[compat]\n' + (min ? `mairust_min = "${min}"\n` : '') + (max ? `mairust_max = "${max}"\n` : '');
    hasError(compat('0.2.0', null, '0.1.0'), 'compat.mairust_min', /^needs MaiRust >= 0\.2\.0 \(this is 0\.1\.0\)$/);
    hasError(compat(null, '0.9.9', '1.0.0'), 'compat.mairust_max', /^needs MaiRust <= 0\.9\.9 \(this is 1\.0\.0\)$/, { mairustVersion: '1.0.0' });
    hasError(compat('2.0.0', '1.0.0', '0.1.0'), 'compat', /mairust_min 2\.0\.0 is greater than mairust_max 1\.0\.0/);
    hasError(compat('0.x', null, '0.1.0'), 'compat.mairust_min', /not a semantic version/);
    assert.ok(parseManifest(compat('0.1.0', '0.1.0', '0.1.0'), V).ok, 'bounds are inclusive');
  });

  it('validates [entry] per protocol', () => {
    const entry = (body: string) => `id = "a.b"\nname = "n"\nversion = "1.0.0"\n[entry]\n${body}\n`;
    hasError(entry('type = "hook"\nprotocol = "http"'), 'entry.endpoint', /required for protocol = "http"/);
    hasError(entry('type = "service"\nprotocol = "http"\nendpoint = "ftp://x"'), 'entry.endpoint', /http:\/\/ or https:\/\/ URL/);
    hasError(entry('type = "service"\nprotocol = "script"'), 'entry.command', /required for protocol = "script"/);
    hasError(entry('type = "service"\nprotocol = "script"\ncommand = []'), 'entry.command', /non-empty array/);
    hasError(entry('type = "service"\nprotocol = "script"\ncommand = "run.sh"'), 'entry.command', /non-empty array/);
    hasError(entry('type = "service"\nprotocol = "script"\ncommand = ["run.sh", 3]'), 'entry.command[1]', /must be a string/);
    hasError(entry('type = "service"\nprotocol = "script"\ncommand = ["x"]\nendpoint = "https://a.b/"'), 'entry.endpoint', /only for protocol = "http"/);
    hasError(entry('type = "service"\nprotocol = "http"\nendpoint = "https://a.b/"\nhealth_cmd = ["x"]'), 'entry.health_cmd', /only for protocol = "script"/);
    hasError(entry('type = "daemon"\nprotocol = "http"\nendpoint = "https://a.b/"'), 'entry.type', /"hook", "service"/);
    hasError(entry('type = "service"\nprotocol = "grpc"'), 'entry.protocol', /"http", "script"/);
    hasError(entry('protocol = "http"\nendpoint = "https://a.b/"'), 'entry.type', /is required/);
    hasError(entry('type = "service"\nprotocol = "http"\nendpoint = "https://a.b/"\ncallback_api = "yes"'), 'entry.callback_api', /true or false/);
  });

  it('validates [hooks]: hook types and filters', () => {
    const hook = (hooks: string) =>
      `id = "a.b"\nname = "n"\nversion = "1.0.0"\n[entry]\ntype = "hook"\nprotocol = "http"\nendpoint = "https://a.b/"\n${hooks}`;
    hasError(hook(''), 'hooks.on', /must list its hooks/);
    hasError(hook('[hooks]\non = []'), 'hooks.on', /at least one hook/);
    hasError(hook('[hooks]\non = ["on_receive"]'), 'hooks.on[0]', /unknown hook "on_receive"/);
    hasError(hook('[hooks]\non = ["pre_send", "pre_send"]'), 'hooks.on[1]', /listed twice/);
    hasError(hook('[hooks]\non = ["pre_send"]\nsubject_matches = "(unclosed"'), 'hooks.subject_matches', /invalid regular expression/);
    hasError(hook(`[hooks]\non = ["pre_send"]\nsender_matches = "${'a'.repeat(257)}"`), 'hooks.sender_matches', /at most 256/);
    // The same ReDoS check as hook filters set through the API (src/hooks/filter.ts).
    hasError(hook('[hooks]\non = ["pre_send"]\nsubject_matches = "(a+)+$"'), 'hooks.subject_matches', /.+/);
    assert.equal(parseManifest(hook('[hooks]\non = ["pre_send"]\nsubject_matches = "(a+)+$"'), { mairustVersion: '0.1.0' }).ok, false);
    hasError(hook('[hooks]\non = ["pre_send"]\nsize_gt = -1'), 'hooks.size_gt', /between 0 and/);
    hasError(hook('[hooks]\non = ["pre_send"]\nsize_gt = 1.5'), 'hooks.size_gt', /integer/);
    hasError(hook('[hooks]\non = ["pre_send"]\nsize_gt = 10\nsize_lt = 10'), 'hooks', /size_gt \(10\) must be less than size_lt \(10\)/);
    hasError(hook('[hooks]\non = ["pre_send"]\nbody_matches = "x"'), 'hooks.body_matches', /unknown key/);
    const r = parseManifest(hook('[hooks]\non = ["pre_delivery"]\nsender_not_matches = "@spam\\\\.example$"\nsize_gt = 0'), V);
    assert.ok(r.ok);
    assert.deepEqual(r.manifest.hooks.filter, { sender_not_matches: '@spam\\.example$', size_gt: 0 });
  });

  it('validates [permissions] dependency rules', () => {
    hasError(MINIMAL + '[permissions]\nwrite_tags = true\n', 'permissions', /write_tags needs read_headers = true/);
    hasError(MINIMAL + '[permissions]\nread_headers = true\nmove_message = true\n', 'permissions', /move_message needs read_body/);
    hasError(MINIMAL + '[permissions]\nread_body = "all"\n', 'permissions.read_body', /none, preview, full/);
    hasError(MINIMAL + '[permissions]\nread_headers = "yes"\n', 'permissions.read_headers', /true or false/);
  });

  it('applies [limits] bounds and defaults, and [logging]', () => {
    hasError(MINIMAL + '[limits]\ncpu_ms = 5\n', 'limits.cpu_ms', /between 10 and 300000/);
    hasError(MINIMAL + '[limits]\nmemory_mb = 8193\n', 'limits.memory_mb', /between 16 and 8192/);
    hasError(MINIMAL + '[limits]\nwall_time_ms = 300001\n', 'limits.wall_time_ms', /between 100 and 300000/);
    hasError(MINIMAL + '[limits]\nnetwork = "some"\n', 'limits.network', /"none", "allowlist", "unlimited"/);
    hasError(MINIMAL + '[logging]\nlevel = "trace"\n', 'logging.level', /"debug", "info", "warn", "error"/);
    const r = parseManifest(MINIMAL + '[limits]\nmemory_mb = 256\nnetwork = "unlimited"\n', V);
    assert.ok(r.ok);
    assert.deepEqual(r.manifest.limits, { cpu_ms: 1000, memory_mb: 256, wall_time_ms: 5000, network: 'unlimited' });
    assert.equal(r.manifest.logging.level, 'info');
  });

  it('reports all problems at once and refuses oversized input', () => {
    const errors = errorsOf('id = "X"\nname = 5\nversion = "1"\n[entry]\ntype = "hook"\nprotocol = "http"\n');
    assert.deepEqual(errors.map((e) => e.path).sort(), ['entry.endpoint', 'hooks.on', 'id', 'name', 'version']);
    const huge = MINIMAL + `description = "${'x'.repeat(70 * 1024)}"\n`;
    assert.match(errorsOf(huge)[0].message, /larger than 65536 bytes/);
    assert.match(new ManifestError(errors).message, /^invalid plugin\.toml: .*id: must be a lower-case reverse-DNS name/);
  });
});
