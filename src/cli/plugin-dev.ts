/**
 * `mairust plugin init|package` — tools for plugin authors (SPEC §7 "Shipped examples … and
 * `mairust plugin init|package`"). Neither needs a configuration or a database: they work on a
 * plugin directory only.
 *
 *   plugin init <dir> [--template echo|webhook-notifier|rspamd-bridge|tagging] [--id …] [--name …]
 *     copies one of examples/plugins/ into an empty (or new) directory and gives it its own id and
 *     name: in plugin.toml and wherever the example's files mention its id (log lines, defaults).
 *   plugin package <dir> [--out file] [--key ed25519.pem]
 *     builds a `.mairust-plugin` (tar.gz with MANIFEST.sha256, optionally MANIFEST.sig, see
 *     src/plugins/package.ts) and prints its SHA-256 and the signing key's fingerprint, which is
 *     what an admin compares with the key they trust.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { MAIRUST_VERSION } from '../core/version.js';
import { formatIssue, parseManifest } from '../plugins/manifest.js';
import { createPluginPackage, keyFingerprint, PluginPackageError } from '../plugins/package.js';
import type { CliContext } from './cli-context.js';

export const TEMPLATES = ['echo', 'webhook-notifier', 'rspamd-bridge', 'tagging'] as const;
export type TemplateName = (typeof TEMPLATES)[number];

/** The shipped examples, next to src/ in the MaiRust checkout (there is no build step). */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/plugins/', import.meta.url));
/** The SDK entry point the TypeScript examples import (tsx maps the .js specifier to index.ts). */
const SDK_INDEX = fileURLToPath(new URL('../../sdk/src/index.js', import.meta.url));
/** How the examples import the SDK: a relative path into this checkout, rewritten on copy. */
const SDK_IMPORT = /(['"])(?:\.\.\/)+sdk\/src\/index\.js\1/g;
/** Files whose text is adapted to the new id; anything else is copied byte for byte. */
const TEXT_FILES = /\.(?:toml|mjs|js|ts|json|md|txt)$/;
const SKIPPED = new Set(['node_modules', '.git']);

/** A mistake of the caller (bad option, non-empty directory): reported without a stack, exit 2. */
export class PluginDevError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginDevError';
  }
}

export interface InitOptions {
  dir: string;
  template?: string;
  id?: string;
  name?: string;
}

export interface InitResult {
  dir: string;
  template: TemplateName;
  id: string;
  name: string;
  protocol: 'http' | 'script';
  files: string[];
}

/** Lists a template's files (relative, `/`-separated, sorted). */
async function templateFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(path.join(root, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (SKIPPED.has(entry.name)) continue;
    const p = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await templateFiles(root, p)));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

/** `my_plugin` → `com.example.my-plugin`; null when nothing usable is left. */
function idFromDirName(dir: string): string | null {
  const slug = path.basename(path.resolve(dir)).toLowerCase().replace(/[^a-z0-9-]+/g, '-').slice(0, 60).replace(/^[^a-z]+|-+$/g, '');
  return slug ? `com.example.${slug}` : null;
}

/** `com.example.spam-tagger` → `Spam tagger`. */
function nameFromId(id: string): string {
  const last = id.slice(id.lastIndexOf('.') + 1).replace(/-+/g, ' ');
  return last.charAt(0).toUpperCase() + last.slice(1);
}

function tomlString(value: string): string {
  // A TOML basic string accepts JSON's escapes; the manifest rules refuse control characters anyway.
  return JSON.stringify(value);
}

/** plugin.toml with the new id and name: only the two top-level keys, comments and layout kept. */
function rewriteManifest(text: string, id: string, name: string): string {
  return text
    .replace(/^id\s*=\s*"[^"\n]*"[ \t]*$/m, `id = ${tomlString(id)}`)
    .replace(/^name\s*=\s*"[^"\n]*"[ \t]*$/m, `name = ${tomlString(name)}`);
}

async function isEmptyDir(dir: string): Promise<boolean | null> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new PluginDevError(`${dir} exists and is not a directory`);
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** `plugin init`: copies a template into `dir` (new or empty) under a new id. */
export async function initPlugin(opts: InitOptions): Promise<InitResult> {
  const template = (opts.template ?? 'echo') as TemplateName;
  if (!TEMPLATES.includes(template)) {
    throw new PluginDevError(`unknown template "${opts.template}" (one of ${TEMPLATES.join(', ')})`);
  }
  const source = path.join(EXAMPLES_DIR, template);
  const dir = path.resolve(opts.dir);
  const empty = await isEmptyDir(dir);
  if (empty === false) throw new PluginDevError(`${dir} is not empty; plugin init only writes into a new or empty directory`);

  const templateManifest = await readFile(path.join(source, 'plugin.toml'), 'utf8');
  const parsedTemplate = parseManifest(templateManifest, { mairustVersion: MAIRUST_VERSION });
  if (!parsedTemplate.ok) throw new Error(`template ${template} has an invalid plugin.toml: ${parsedTemplate.errors.map(formatIssue).join('; ')}`);
  const templateId = parsedTemplate.manifest.id;
  const id = opts.id ?? idFromDirName(dir) ?? templateId;
  const name = opts.name ?? (id === templateId ? parsedTemplate.manifest.name : nameFromId(id));

  // Checked before anything is written: a bad --id or --name leaves no half-made directory.
  const manifest = rewriteManifest(templateManifest, id, name);
  const parsed = parseManifest(manifest, { mairustVersion: MAIRUST_VERSION });
  if (!parsed.ok) throw new PluginDevError(parsed.errors.map(formatIssue).join('; '));

  const files = await templateFiles(source);
  if (empty === null) await mkdir(dir, { recursive: true });
  try {
    for (const rel of files) {
      const from = path.join(source, rel);
      const to = path.join(dir, rel);
      await mkdir(path.dirname(to), { recursive: true });
      let data: Buffer | string = await readFile(from);
      if (rel === 'plugin.toml') data = manifest;
      else if (TEXT_FILES.test(rel)) {
        let relSdk = path.relative(path.dirname(to), SDK_INDEX).split(path.sep).join('/');
        if (!relSdk.startsWith('.')) relSdk = `./${relSdk}`;
        data = data
          .toString('utf8')
          .split(templateId).join(id)
          .replace(SDK_IMPORT, (_m, q: string) => `${q}${relSdk}${q}`);
      }
      // The mode is kept: a script plugin's entry must stay executable.
      await writeFile(to, data, { flag: 'wx', mode: (await stat(from)).mode & 0o777 });
    }
  } catch (err) {
    if (empty === null) await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { dir, template, id, name, protocol: parsed.manifest.entry.protocol, files };
}

export interface PackageOptions {
  dir: string;
  out?: string;
  /** Path of an Ed25519 private key (PKCS#8 PEM), e.g. from `openssl genpkey -algorithm ed25519`. */
  keyFile?: string;
  /** Where a default `--out` goes; default the current directory. */
  cwd?: string;
}

export interface PackageResult {
  file: string;
  id: string;
  version: string;
  sha256: string;
  files: number;
  signed: boolean;
  /** sha256 of the public key (SPKI DER), as the server reports a trusted key's fingerprint. */
  key_fingerprint: string | null;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function loadSigningKey(file: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new PluginDevError(`cannot read the key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new PluginDevError(`${file} is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new PluginDevError(`${file} is a ${key.asymmetricKeyType} key; packages are signed with Ed25519 (openssl genpkey -algorithm ed25519)`);
  }
  return key;
}

/** `plugin package`: validates plugin.toml, builds the package, and describes it. */
export async function packagePlugin(opts: PackageOptions): Promise<PackageResult> {
  const dir = path.resolve(opts.dir);
  let text: string;
  try {
    text = await readFile(path.join(dir, 'plugin.toml'), 'utf8');
  } catch {
    throw new PluginDevError(`${dir} has no plugin.toml`);
  }
  const parsed = parseManifest(text, { mairustVersion: MAIRUST_VERSION });
  if (!parsed.ok) throw new PluginDevError(`invalid plugin.toml: ${parsed.errors.map(formatIssue).join('; ')}`);
  const { id, version } = parsed.manifest;
  const out = path.resolve(opts.cwd ?? process.cwd(), opts.out ?? `${id}-${version}.mairust-plugin`);
  // A package written into the directory it packs would end up in the next package of it.
  if (out.startsWith(`${dir}${path.sep}`)) throw new PluginDevError(`write the package outside the plugin directory (--out)`);
  const key = opts.keyFile === undefined ? undefined : await loadSigningKey(opts.keyFile);

  const result = await createPluginPackage(dir, out, { signingKey: key, mairustVersion: MAIRUST_VERSION });
  return {
    file: out,
    id,
    version,
    sha256: await sha256File(out),
    files: result.files.length,
    signed: result.signed,
    key_fingerprint: key ? keyFingerprint(createPublicKey(key)) : null,
  };
}

function nextSteps(r: InitResult): string[] {
  const relative = path.relative(process.cwd(), r.dir) || '.';
  const rel = relative.startsWith('..') ? r.dir : relative;
  const steps = [`Edit ${rel}/plugin.toml and the code; see ${rel}/README.md and docs/plugins.md.`];
  if (r.protocol === 'http') {
    steps.push('Start the service (see its README), put its host on plugins.egress_allowlist, then install the plugin.');
  }
  steps.push(`Package it: mairust plugin package ${rel} --key <ed25519.pem>`, 'Install it: mairust plugin install <dir or .mairust-plugin>, then approve and enable it.');
  return steps;
}

async function run(cli: CliContext, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (err instanceof PluginDevError) cli.fail(err.message, 2);
    else if (err instanceof PluginPackageError) cli.fail(err.message, 1);
    else throw err;
  }
}

export function registerPluginDev(plugin: Command, cli: CliContext): void {
  plugin
    .command('init <dir>')
    .description('create a plugin from one of the shipped examples, in a new or empty directory')
    .option('--template <name>', `${TEMPLATES.join(' | ')}`, 'echo')
    .option('--id <id>', 'reverse-DNS plugin id (default: com.example.<directory name>)')
    .option('--name <name>', 'display name (default: from the id)')
    .action((dir: string, opts: { template: string; id?: string; name?: string }) =>
      run(cli, async () => {
        const result = await initPlugin({ dir, template: opts.template, id: opts.id, name: opts.name });
        if (cli.globals().json) cli.print({ ...result, next_steps: nextSteps(result) });
        else {
          cli.print({ ...result, files: result.files.join(', ') });
          cli.print(['', 'Next steps:', ...nextSteps(result).map((s, i) => `${i + 1}. ${s}`)].join('\n'));
        }
      }),
    );

  plugin
    .command('package <dir>')
    .description('build a .mairust-plugin package (checksums, optional Ed25519 signature) from a plugin directory')
    .option('--out <file>', 'package file (default: <id>-<version>.mairust-plugin in the current directory)')
    .option('--key <file>', 'Ed25519 private key (PEM) to sign the package with')
    .action((dir: string, opts: { out?: string; key?: string }) =>
      run(cli, async () => {
        cli.print(await packagePlugin({ dir, out: opts.out, keyFile: opts.key }));
      }),
    );
}
