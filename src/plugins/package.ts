/**
 * `.mairust-plugin` packages (SPEC §7 "Lifecycle": install from a tar.gz with manifest checksums
 * and an optional Ed25519 signature).
 *
 * Layout: a gzip'd tar holding `plugin.toml`, `MANIFEST.sha256` — one line `<sha256-hex>  <path>`
 * per other file, plugin.toml included — and optionally `MANIFEST.sig`, the base64 Ed25519
 * signature (RFC 8032) over the exact bytes of MANIFEST.sha256. Signing the checksum list rather
 * than the archive lets the signature survive re-compression while still covering every file.
 *
 * Reading never trusts the archive: every entry is inspected and buffered (bounded) before
 * anything touches the disk; only regular files and directories with plain relative paths are
 * accepted; every checksum must match and no file may be unlisted. Only then is the tree written
 * into a fresh temporary directory.
 */

import { Buffer } from 'node:buffer';
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tar from 'tar';
import { ManifestError, parseManifest, type PluginManifest } from './manifest.js';

export const MANIFEST_FILE = 'plugin.toml';
export const CHECKSUMS_FILE = 'MANIFEST.sha256';
export const SIGNATURE_FILE = 'MANIFEST.sig';

export interface PackageLimits {
  /** Size of the .mairust-plugin file itself. */
  maxArchiveBytes: number;
  /** Sum of all extracted file sizes (guards against gzip bombs). */
  maxTotalBytes: number;
  maxFileBytes: number;
  /** Files and directories together. */
  maxEntries: number;
}

export const DEFAULT_PACKAGE_LIMITS: Readonly<PackageLimits> = Object.freeze({
  maxArchiveBytes: 20 * 1024 * 1024,
  maxTotalBytes: 50 * 1024 * 1024,
  maxFileBytes: 20 * 1024 * 1024,
  maxEntries: 1000,
});

const MAX_PATH_LENGTH = 255;
const MAX_PATH_DEPTH = 16;

export type PackageErrorCode =
  | 'too_large'
  | 'bad_archive'
  | 'unsafe_entry'
  | 'bad_checksums'
  | 'checksum_mismatch'
  | 'missing_file'
  | 'unlisted_file'
  | 'signature_required'
  | 'bad_signature'
  | 'untrusted_signature'
  | 'invalid_manifest';

export class PluginPackageError extends Error {
  constructor(readonly code: PackageErrorCode, message: string, readonly details?: unknown) {
    super(message);
    this.name = 'PluginPackageError';
  }
}

/**
 * `valid`: verified by `trustedKeys[keyIndex]`. `unverified`: a well-formed signature that no
 * trusted key verifies, accepted only because the caller did not require signatures (anyone can
 * strip a signature, so without `requireSignature` it is information, not protection).
 */
export type SignatureStatus =
  | { status: 'valid'; keyIndex: number; fingerprint: string }
  | { status: 'unverified' }
  | { status: 'absent' };

export interface PluginPackage {
  manifest: PluginManifest;
  /** A fresh temporary directory holding the verified tree; the caller moves or removes it. */
  dir: string;
  /** Every file path (relative, `/`-separated), sorted, the MANIFEST.* files included. */
  files: string[];
  signature: SignatureStatus;
}

export interface ReadPackageOptions {
  /** Ed25519 public keys (SPKI PEM) configured by the administrator. */
  trustedKeys: string[];
  requireSignature: boolean;
  mairustVersion: string;
  /** Where the temporary directory is created (default: the OS temp dir). */
  tempRoot?: string;
  limits?: Partial<PackageLimits>;
}

interface BufferedFile {
  data: Buffer;
  executable: boolean;
}

export async function readPluginPackage(file: string, opts: ReadPackageOptions): Promise<PluginPackage> {
  const limits = { ...DEFAULT_PACKAGE_LIMITS, ...opts.limits };
  const info = await stat(file);
  if (!info.isFile()) throw new PluginPackageError('bad_archive', `${file} is not a file`);
  if (info.size > limits.maxArchiveBytes) {
    throw new PluginPackageError('too_large', `package is ${info.size} bytes; the limit is ${limits.maxArchiveBytes}`);
  }
  const { files, dirs } = await bufferArchive(file, limits);

  const checksumFile = files.get(CHECKSUMS_FILE);
  if (!checksumFile) throw new PluginPackageError('missing_file', `package has no ${CHECKSUMS_FILE}`);
  if (!files.has(MANIFEST_FILE)) throw new PluginPackageError('missing_file', `package has no ${MANIFEST_FILE}`);

  // The signature is checked before the checksums so a forged list is reported as such.
  const signature = checkSignature(checksumFile.data, files.get(SIGNATURE_FILE)?.data, opts);
  verifyChecksums(parseChecksums(checksumFile.data.toString('utf8')), files);

  const parsed = parseManifest(files.get(MANIFEST_FILE)!.data.toString('utf8'), { mairustVersion: opts.mairustVersion });
  if (!parsed.ok) {
    throw new PluginPackageError('invalid_manifest', new ManifestError(parsed.errors).message, parsed.errors);
  }

  const dir = await mkdtemp(join(opts.tempRoot ?? tmpdir(), 'mairust-plugin-'));
  try {
    for (const d of [...dirs].sort()) await mkdir(join(dir, d), { recursive: true, mode: 0o755 });
    for (const [path, f] of files) {
      await mkdir(dirname(join(dir, path)), { recursive: true, mode: 0o755 });
      // Modes from the archive are not trusted; only "executable or not" is kept (script plugins).
      await writeFile(join(dir, path), f.data, { mode: f.executable ? 0o755 : 0o644, flag: 'wx' });
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { manifest: parsed.manifest, dir, files: [...files.keys()].sort(), signature };
}

/**
 * Reads every entry into memory, refusing anything that is not a plain file or directory with a
 * safe relative path, and stopping as soon as a limit is crossed.
 */
async function bufferArchive(
  file: string, limits: PackageLimits,
): Promise<{ files: Map<string, BufferedFile>; dirs: Set<string> }> {
  const files = new Map<string, BufferedFile>();
  const dirs = new Set<string>();
  let total = 0;
  let entries = 0;
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const source = createReadStream(file);
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      source.destroy();
      parser.abort(err);
      reject(err);
    };
    const parser = new tar.Parser({
      strict: true,
      onReadEntry: (entry) => {
        if (failed) return entry.resume();
        entries += 1;
        if (entries > limits.maxEntries) {
          return fail(new PluginPackageError('too_large', `package has more than ${limits.maxEntries} entries`));
        }
        const path = safeEntryPath(entry.path);
        if (path === null) {
          return fail(new PluginPackageError('unsafe_entry', `unsafe path in package: ${JSON.stringify(entry.path)}`));
        }
        if (entry.type === 'Directory') {
          dirs.add(path.replace(/\/$/, ''));
          return entry.resume();
        }
        if (entry.type !== 'File' && entry.type !== 'OldFile') {
          return fail(new PluginPackageError(
            'unsafe_entry', `package entry ${JSON.stringify(entry.path)} is a ${entry.type}; only regular files are allowed`,
          ));
        }
        if (path.endsWith('/')) return fail(new PluginPackageError('unsafe_entry', `file entry ${JSON.stringify(path)} ends in "/"`));
        if (files.has(path)) return fail(new PluginPackageError('unsafe_entry', `${path} appears twice in the package`));
        if (entry.size > limits.maxFileBytes) {
          return fail(new PluginPackageError('too_large', `${path} is ${entry.size} bytes; the limit is ${limits.maxFileBytes}`));
        }
        const chunks: Buffer[] = [];
        entry.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > limits.maxTotalBytes) {
            fail(new PluginPackageError('too_large', `package contents exceed ${limits.maxTotalBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        entry.on('end', () => {
          if (!failed) files.set(path, { data: Buffer.concat(chunks), executable: (entry.mode ?? 0) & 0o111 ? true : false });
        });
      },
    });
    parser.on('error', (err: Error) => fail(
      err instanceof PluginPackageError ? err : new PluginPackageError('bad_archive', `not a valid tar.gz: ${err.message}`),
    ));
    parser.on('close', () => {
      if (!failed) resolve();
    });
    source.on('error', (err) => fail(err));
    source.pipe(parser as unknown as NodeJS.WritableStream);
  });
  for (const d of dirs) {
    if (files.has(d)) throw new PluginPackageError('unsafe_entry', `${d} is both a file and a directory`);
  }
  for (const path of files.keys()) {
    // A file may not sit where another file is a parent directory ("a" and "a/b").
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (files.has(parent)) throw new PluginPackageError('unsafe_entry', `${parent} is both a file and a directory`);
    }
  }
  return { files, dirs };
}

/**
 * The normalised relative path of an entry, or null when it could escape the target directory
 * or is otherwise odd: absolute, `..` or `.` segments (a single leading `./` is tolerated, as
 * `tar -C dir .` produces it), backslashes, drive letters, NUL or control characters.
 */
export function safeEntryPath(raw: string): string | null {
  let path = raw;
  while (path.startsWith('./')) path = path.slice(2);
  if (path === '' || path.length > MAX_PATH_LENGTH) return null;
  if (path.startsWith('/') || /[\\\u0000-\u001f\u007f]/.test(path) || /^[a-zA-Z]:/.test(path)) return null;
  const segments = path.replace(/\/$/, '').split('/');
  if (segments.length > MAX_PATH_DEPTH) return null;
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return null;
  return path;
}

/** Parses MANIFEST.sha256: `<64 hex>  <path>` per line (the `sha256sum` text format). */
export function parseChecksums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const [i, line] of lines.entries()) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (!m) throw new PluginPackageError('bad_checksums', `${CHECKSUMS_FILE} line ${i + 1} is not "<sha256>  <path>"`);
    const path = safeEntryPath(m[2]);
    if (path === null || path !== m[2]) {
      throw new PluginPackageError('bad_checksums', `${CHECKSUMS_FILE} line ${i + 1} names an unsafe path`);
    }
    if (path === CHECKSUMS_FILE || path === SIGNATURE_FILE) {
      throw new PluginPackageError('bad_checksums', `${CHECKSUMS_FILE} line ${i + 1} lists ${path}`);
    }
    if (sums.has(path)) throw new PluginPackageError('bad_checksums', `${CHECKSUMS_FILE} lists ${path} twice`);
    sums.set(path, m[1]);
  }
  return sums;
}

function verifyChecksums(sums: Map<string, string>, files: Map<string, BufferedFile>): void {
  for (const path of files.keys()) {
    if (path === CHECKSUMS_FILE || path === SIGNATURE_FILE) continue;
    if (!sums.has(path)) throw new PluginPackageError('unlisted_file', `${path} is not listed in ${CHECKSUMS_FILE}`);
  }
  for (const [path, expected] of sums) {
    const f = files.get(path);
    if (!f) throw new PluginPackageError('missing_file', `${path} is listed in ${CHECKSUMS_FILE} but missing`);
    if (sha256Hex(f.data) !== expected) {
      throw new PluginPackageError('checksum_mismatch', `checksum of ${path} does not match ${CHECKSUMS_FILE}`);
    }
  }
}

function checkSignature(checksums: Buffer, sigFile: Buffer | undefined, opts: ReadPackageOptions): SignatureStatus {
  if (!sigFile) {
    if (opts.requireSignature) throw new PluginPackageError('signature_required', `package is not signed (${SIGNATURE_FILE} missing)`);
    return { status: 'absent' };
  }
  const text = sigFile.toString('utf8').trim();
  const sig = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : null;
  // An Ed25519 signature is exactly 64 bytes (RFC 8032 §5.1.6); anything else is a corrupt package.
  if (!sig || sig.length !== 64) throw new PluginPackageError('bad_signature', `${SIGNATURE_FILE} is not a base64 Ed25519 signature`);
  for (const [keyIndex, pem] of opts.trustedKeys.entries()) {
    const key = publicKey(pem);
    if (key && verify(null, checksums, key, sig)) return { status: 'valid', keyIndex, fingerprint: keyFingerprint(key) };
  }
  if (opts.requireSignature) {
    throw new PluginPackageError(
      'untrusted_signature',
      `${SIGNATURE_FILE} does not verify against any of the ${opts.trustedKeys.length} trusted keys`,
    );
  }
  return { status: 'unverified' };
}

function publicKey(pem: string): KeyObject | null {
  try {
    const key = createPublicKey(pem);
    return key.asymmetricKeyType === 'ed25519' ? key : null;
  } catch {
    return null;
  }
}

/** sha256 of the SPKI DER, hex: a stable name for a trusted key in logs and the API. */
export function keyFingerprint(key: KeyObject | string): string {
  const k = typeof key === 'string' ? createPublicKey(key) : key;
  return sha256Hex(k.export({ type: 'spki', format: 'der' }));
}

function sha256Hex(data: Buffer | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Building packages (`mairust plugin package`)

export interface CreatePackageOptions {
  /** Ed25519 private key (PKCS#8 PEM or KeyObject); omitted → an unsigned package. */
  signingKey?: string | KeyObject;
  /** When given, plugin.toml is fully validated (compat range included) before packaging. */
  mairustVersion?: string;
  limits?: Partial<PackageLimits>;
}

/**
 * Packages a plugin directory into `out`. Regular files are taken recursively (`.git`
 * directories skipped, any existing MANIFEST.* regenerated); a symlink or special file is an
 * error rather than silently followed. Entries are sorted with a fixed mtime so the same tree
 * yields the same checksum list.
 */
export async function createPluginPackage(
  dir: string, out: string, opts: CreatePackageOptions = {},
): Promise<{ files: string[]; signed: boolean }> {
  const limits = { ...DEFAULT_PACKAGE_LIMITS, ...opts.limits };
  const paths = await listFiles(dir, '', limits);
  if (!paths.includes(MANIFEST_FILE)) throw new PluginPackageError('missing_file', `${dir} has no ${MANIFEST_FILE}`);
  const manifestText = await readFile(join(dir, MANIFEST_FILE), 'utf8');
  if (opts.mairustVersion !== undefined) {
    const parsed = parseManifest(manifestText, { mairustVersion: opts.mairustVersion });
    if (!parsed.ok) throw new PluginPackageError('invalid_manifest', new ManifestError(parsed.errors).message, parsed.errors);
  }
  const staging = await mkdtemp(join(tmpdir(), 'mairust-plugin-pack-'));
  try {
    const lines: string[] = [];
    for (const path of paths) {
      const data = await readFile(join(dir, path));
      lines.push(`${sha256Hex(data)}  ${path}`);
      await mkdir(dirname(join(staging, path)), { recursive: true });
      await cp(join(dir, path), join(staging, path), { preserveTimestamps: false });
    }
    const checksums = Buffer.from(lines.join('\n') + '\n', 'utf8');
    await writeFile(join(staging, CHECKSUMS_FILE), checksums);
    const entries = [CHECKSUMS_FILE, ...paths];
    if (opts.signingKey !== undefined) {
      const key = typeof opts.signingKey === 'string' ? createPrivateKey(opts.signingKey) : opts.signingKey;
      if (key.asymmetricKeyType !== 'ed25519') throw new Error('signing key must be an Ed25519 private key');
      await writeFile(join(staging, SIGNATURE_FILE), sign(null, checksums, key).toString('base64') + '\n');
      entries.splice(1, 0, SIGNATURE_FILE);
    }
    await tar.c({ gzip: true, file: out, cwd: staging, portable: true, mtime: new Date(0) }, entries);
    return { files: entries, signed: opts.signingKey !== undefined };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function listFiles(root: string, rel: string, limits: PackageLimits, acc: string[] = []): Promise<string[]> {
  const names = (await readdir(join(root, rel))).sort();
  for (const name of names) {
    const path = rel ? `${rel}/${name}` : name;
    if (!rel && (name === CHECKSUMS_FILE || name === SIGNATURE_FILE)) continue;
    if (name === '.git') continue;
    const info = await lstat(join(root, path));
    if (info.isDirectory()) await listFiles(root, path, limits, acc);
    else if (info.isFile()) {
      if (safeEntryPath(path) !== path) throw new PluginPackageError('unsafe_entry', `cannot package ${JSON.stringify(path)}`);
      acc.push(path);
    } else throw new PluginPackageError('unsafe_entry', `${path} is not a regular file (symlinks are not packaged)`);
    if (acc.length > limits.maxEntries) throw new PluginPackageError('too_large', `more than ${limits.maxEntries} files`);
  }
  return acc;
}
