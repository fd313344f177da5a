import { strict as assert } from 'node:assert';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile, symlink, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createPluginPackage, keyFingerprint, parseChecksums, PluginPackageError, readPluginPackage, safeEntryPath,
  type ReadPackageOptions,
} from '../../src/plugins/package.js';
import { paxRecord, rawTarGz, type RawEntry } from '../fixtures/plugins/raw-tar.js';

const ECHO_DIR = new URL('../fixtures/plugins/echo/', import.meta.url).pathname;
const VERSION = '0.1.0';

function keyPair(): { privateKey: KeyObject; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

const TOML = await readFile(join(ECHO_DIR, 'plugin.toml'), 'utf8');
const SCRIPT = await readFile(join(ECHO_DIR, 'echo.mjs'), 'utf8');

/** Entries of a well-formed package, optionally signed; tests then break one thing. */
function entries(opts: { key?: KeyObject; files?: Record<string, string>; listed?: Record<string, string> } = {}) {
  const files = opts.files ?? { 'plugin.toml': TOML, 'echo.mjs': SCRIPT };
  const listed = opts.listed ?? files;
  const sums = Object.entries(listed).map(([p, c]) => `${sha(c)}  ${p}`).join('\n') + '\n';
  const out: RawEntry[] = [{ path: 'MANIFEST.sha256', data: sums }];
  if (opts.key) out.push({ path: 'MANIFEST.sig', data: sign(null, Buffer.from(sums), opts.key).toString('base64') });
  for (const [p, c] of Object.entries(files)) out.push({ path: p, data: c });
  return out;
}

let work: string;
let n = 0;
const trusted = keyPair();
const stranger = keyPair();

async function write(buf: Buffer): Promise<string> {
  const file = join(work, `p${n++}.mairust-plugin`);
  await writeFile(file, buf);
  return file;
}

function opts(over: Partial<ReadPackageOptions> = {}): ReadPackageOptions {
  return { trustedKeys: [trusted.publicPem], requireSignature: false, mairustVersion: VERSION, tempRoot: work, ...over };
}

async function refused(file: string, o: ReadPackageOptions, code: string, message: RegExp) {
  await assert.rejects(readPluginPackage(file, o), (err: unknown) => {
    assert.ok(err instanceof PluginPackageError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

describe('plugin packages', () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'plugin-package-test-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('round-trips a signed package built by createPluginPackage', async () => {
    const out = join(work, 'echo.mairust-plugin');
    const built = await createPluginPackage(ECHO_DIR, out, { signingKey: trusted.privateKey, mairustVersion: VERSION });
    assert.deepEqual(built.files, ['MANIFEST.sha256', 'MANIFEST.sig', 'echo.mjs', 'plugin.toml']);
    const pkg = await readPluginPackage(out, opts({ requireSignature: true }));
    assert.equal(pkg.manifest.id, 'com.example.echo');
    assert.deepEqual(pkg.signature, { status: 'valid', keyIndex: 0, fingerprint: keyFingerprint(trusted.publicPem) });
    assert.deepEqual(pkg.files, ['MANIFEST.sha256', 'MANIFEST.sig', 'echo.mjs', 'plugin.toml']);
    assert.equal(await readFile(join(pkg.dir, 'echo.mjs'), 'utf8'), SCRIPT);
    const sums = parseChecksums(await readFile(join(pkg.dir, 'MANIFEST.sha256'), 'utf8'));
    assert.equal(sums.get('plugin.toml'), sha(TOML));
    assert.ok(pkg.dir.startsWith(work));
  });

  it('accepts an unsigned package unless a signature is required', async () => {
    const out = join(work, 'unsigned.mairust-plugin');
    await createPluginPackage(ECHO_DIR, out);
    const pkg = await readPluginPackage(out, opts());
    assert.deepEqual(pkg.signature, { status: 'absent' });
    await refused(out, opts({ requireSignature: true }), 'signature_required', /not signed/);
  });

  it('keeps the executable bit and nothing else of archive modes', async () => {
    const e = entries();
    e[e.length - 1].mode = 0o4777; // setuid + world-writable in the archive
    const pkg = await readPluginPackage(await write(rawTarGz(e)), opts());
    assert.equal((await stat(join(pkg.dir, 'echo.mjs'))).mode & 0o7777, 0o755);
    assert.equal((await stat(join(pkg.dir, 'plugin.toml'))).mode & 0o7777, 0o644);
  });

  it('refuses a tampered file', async () => {
    const e = entries({ key: trusted.privateKey });
    e.find((x) => x.path === 'echo.mjs')!.data = SCRIPT + '\nprocess.exit(1);\n';
    await refused(await write(rawTarGz(e)), opts(), 'checksum_mismatch', /checksum of echo\.mjs does not match/);
  });

  it('refuses a file that MANIFEST.sha256 does not list', async () => {
    const e = entries({ listed: { 'plugin.toml': TOML, 'echo.mjs': SCRIPT } });
    e.push({ path: 'extra.sh', data: 'rm -rf /' });
    await refused(await write(rawTarGz(e)), opts(), 'unlisted_file', /extra\.sh is not listed/);
  });

  it('refuses a listed file that is missing', async () => {
    const e = entries({ files: { 'plugin.toml': TOML }, listed: { 'plugin.toml': TOML, 'echo.mjs': SCRIPT } });
    await refused(await write(rawTarGz(e)), opts(), 'missing_file', /echo\.mjs is listed .* but missing/);
  });

  it('refuses path traversal and absolute paths without writing anything', async () => {
    for (const path of ['../evil.mjs', 'lib/../../evil.mjs', '/tmp/evil.mjs', 'C:/evil', 'a\\..\\evil']) {
      const before = (await readdir(work)).length;
      const e = entries();
      e.push({ path, data: 'x' });
      const file = await write(rawTarGz(e));
      await refused(file, opts(), 'unsafe_entry', /unsafe path/);
      assert.equal((await readdir(work)).length, before + 1, `only the archive itself was written for ${path}`);
    }
  });

  it('checks the path a PAX header substitutes, not the ustar name', async () => {
    const e = entries();
    e.push({ path: 'PaxHeader/innocent', type: 'x', data: paxRecord('path', '../../evil.mjs') }, { path: 'innocent', data: 'x' });
    await refused(await write(rawTarGz(e)), opts(), 'unsafe_entry', /unsafe path in package: "\.\.\/\.\.\/evil\.mjs"/);
  });

  it('refuses symlinks, hard links, devices and FIFOs', async () => {
    const cases: RawEntry[] = [
      { path: 'link', type: '2', linkname: '/etc/passwd' },
      { path: 'hard', type: '1', linkname: 'plugin.toml' },
      { path: 'dev', type: '3' },
      { path: 'fifo', type: '6' },
    ];
    for (const bad of cases) {
      const e = entries();
      e.push(bad);
      await refused(await write(rawTarGz(e)), opts(), 'unsafe_entry', /only regular files are allowed/);
    }
  });

  it('refuses a tampered checksum list under a signature, with or without requireSignature', async () => {
    const e = entries({ key: trusted.privateKey });
    const sums = e[0].data!.toString();
    e[0].data = sums.replace(/^[0-9a-f]/, (c) => (c === '0' ? '1' : '0'));
    await refused(await write(rawTarGz(e)), opts({ requireSignature: true }), 'untrusted_signature', /does not verify/);
    // Without the requirement the signature is informational, but the checksums still fail.
    await refused(await write(rawTarGz(e)), opts(), 'checksum_mismatch', /plugin\.toml|echo\.mjs/);
  });

  it('refuses a malformed signature file either way', async () => {
    const e = entries();
    e.splice(1, 0, { path: 'MANIFEST.sig', data: 'not a signature!' });
    const file = await write(rawTarGz(e));
    await refused(file, opts(), 'bad_signature', /not a base64 Ed25519 signature/);
    await refused(file, opts({ requireSignature: true }), 'bad_signature', /not a base64 Ed25519 signature/);
  });

  it('treats a signature by an untrusted key as unverified, or refuses it when required', async () => {
    const file = await write(rawTarGz(entries({ key: stranger.privateKey })));
    await refused(file, opts({ requireSignature: true }), 'untrusted_signature', /any of the 1 trusted keys/);
    const pkg = await readPluginPackage(file, opts());
    assert.deepEqual(pkg.signature, { status: 'unverified' });
    // Trusting the stranger's key (second in the list) makes it valid.
    const ok = await readPluginPackage(file, opts({ requireSignature: true, trustedKeys: [trusted.publicPem, stranger.publicPem] }));
    assert.equal(ok.signature.status === 'valid' && ok.signature.keyIndex, 1);
  });

  it('enforces entry-count and size limits', async () => {
    const many = entries();
    for (let i = 0; i < 5; i++) many.push({ path: `f${i}`, data: 'x' });
    await refused(await write(rawTarGz(many)), opts({ limits: { maxEntries: 4 } }), 'too_large', /more than 4 entries/);
    const big = entries({ files: { 'plugin.toml': TOML, 'big.bin': 'x'.repeat(200_000) } });
    const file = await write(rawTarGz(big));
    await refused(file, opts({ limits: { maxFileBytes: 100_000 } }), 'too_large', /big\.bin is 200000 bytes; the limit is 100000/);
    await refused(file, opts({ limits: { maxTotalBytes: 150_000 } }), 'too_large', /exceed 150000 bytes/);
    await refused(file, opts({ limits: { maxArchiveBytes: 100 } }), 'too_large', /the limit is 100$/);
  });

  it('refuses garbage, a package without MANIFEST.sha256 and an invalid plugin.toml', async () => {
    await refused(await write(Buffer.from('this is not a tarball at all'.repeat(40))), opts(), 'bad_archive', /not a valid tar\.gz/);
    await refused(await write(rawTarGz([{ path: 'plugin.toml', data: TOML }])), opts(), 'missing_file', /no MANIFEST\.sha256/);
    const bad = TOML.replace('version = "1.0.0"', 'version = "one"');
    await refused(await write(rawTarGz(entries({ files: { 'plugin.toml': bad } }))), opts(), 'invalid_manifest', /version: "one" is not a semantic version/);
    const future = TOML.replace('mairust_min = "0.1.0"', 'mairust_min = "9.0.0"');
    await refused(await write(rawTarGz(entries({ files: { 'plugin.toml': future } }))), opts(), 'invalid_manifest', /needs MaiRust >= 9\.0\.0/);
  });

  it('createPluginPackage refuses symlinks in the source tree', async () => {
    const src = join(work, 'src-with-link');
    await cp(ECHO_DIR, src, { recursive: true });
    await symlink('/etc/passwd', join(src, 'passwd'));
    await assert.rejects(createPluginPackage(src, join(work, 'x.mairust-plugin')), /passwd is not a regular file/);
  });

  it('safeEntryPath normalises a leading ./ and rejects odd paths', () => {
    assert.equal(safeEntryPath('./lib/a.mjs'), 'lib/a.mjs');
    assert.equal(safeEntryPath('lib/'), 'lib/');
    for (const p of ['', '.', './', 'a//b', 'a/./b', '..', 'a/..', 'x\u0000y', 'a\nb']) assert.equal(safeEntryPath(p), null, JSON.stringify(p));
  });
});
