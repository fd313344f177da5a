/**
 * The file side of installing a plugin (SPEC §7 "Lifecycle: install from a directory or a
 * `.mairust-plugin` tar.gz"): reading and checking the manifest, staging the plugin's files, and
 * moving them into `<plugins dir>/<id>/<version>/`. The database side lives in registry.ts.
 *
 * Files are staged under `<plugins dir>/.staging/` (same filesystem, so the final step is a
 * rename, never a half-copied tree) and every check runs on the staged copy — the tree that will
 * actually run — not on the source, which could change in between.
 */
import { constants as fsConstants } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rename, rm, stat, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { PluginsConfig } from '../config/sections/plugins.js';
import { DEFAULT_PACKAGE_LIMITS, MANIFEST_FILE } from './package.js';
import { formatIssue, parseManifest, type PluginManifest } from './manifest.js';
import { validatePermissions } from './permissions.js';
import { endpointHostPort, isEndpointAllowed } from './egress-allowlist.js';
import { PluginInstallError } from './types.js';

/** The directories a bare program name is looked up in: the PATH of script plugins (src/hooks/executors/script.ts). */
export const SCRIPT_PATH_DIRS = ['/usr/bin', '/bin'] as const;

/** Directory installs are bounded like packages (package.ts DEFAULT_PACKAGE_LIMITS). */
export interface CopyLimits {
  maxTotalBytes: number;
  maxEntries: number;
}
export const DEFAULT_COPY_LIMITS: Readonly<CopyLimits> = Object.freeze({
  maxTotalBytes: DEFAULT_PACKAGE_LIMITS.maxTotalBytes,
  maxEntries: DEFAULT_PACKAGE_LIMITS.maxEntries,
});

export function stagingRoot(pluginsDir: string): string {
  return join(pluginsDir, '.staging');
}

export async function newStagingDir(pluginsDir: string): Promise<string> {
  const root = stagingRoot(pluginsDir);
  await mkdir(root, { recursive: true, mode: 0o750 });
  return mkdtemp(join(root, 'p-'));
}

/** Reads and parses `<dir>/plugin.toml`; every problem becomes a PluginInstallError with `details.errors`. */
export async function readDirectoryManifest(dir: string, mairustVersion: string): Promise<PluginManifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a regular file');
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PluginInstallError(`${dir} has no readable ${MANIFEST_FILE} (${(err as Error).message})`, {
      errors: [{ path: '', message: `missing ${MANIFEST_FILE}` }],
    });
  }
  const parsed = parseManifest(text, { mairustVersion });
  if (!parsed.ok) {
    throw new PluginInstallError(`invalid ${MANIFEST_FILE}: ${parsed.errors.map(formatIssue).join('; ')}`, { errors: parsed.errors });
  }
  return parsed.manifest;
}

/**
 * The install-time checks beyond the manifest's own syntax (SPEC §7): permission dependencies,
 * the egress allowlist for HTTP endpoints, and that a script plugin's programs exist. `dir` is
 * the staged copy of the plugin.
 */
export async function checkInstallable(manifest: PluginManifest, dir: string, config: PluginsConfig): Promise<void> {
  const problems = validatePermissions(manifest.permissions);
  if (problems.length) {
    throw new PluginInstallError(`permissions: ${problems.join('; ')}`, {
      errors: problems.map((message) => ({ path: 'permissions', message })),
    });
  }
  const entry = manifest.entry;
  if (entry.protocol === 'http') {
    for (const [field, url] of [['entry.endpoint', entry.endpoint], ['entry.health_endpoint', entry.health_endpoint]] as const) {
      if (url === null) continue;
      if (!isEndpointAllowed(url, config.egress_allowlist)) {
        const host = endpointHostPort(url)?.host ?? url;
        throw new PluginInstallError(`${field} host ${host} is not in plugins.egress_allowlist`, {
          host,
          field,
          errors: [{ path: field, message: `host ${host} is not in plugins.egress_allowlist` }],
        });
      }
    }
  } else {
    await checkProgram(entry.command[0], dir, 'entry.command[0]');
    if (entry.health_cmd) await checkProgram(entry.health_cmd[0], dir, 'entry.health_cmd[0]');
  }
}

/**
 * A script plugin's program must be something that will run (SPEC §7 "MaiRust starts the command"):
 *  - an absolute path to an existing file;
 *  - a relative path with a `/` (`./run.sh`, `bin/tagger`): a file inside the plugin directory
 *    (the working directory of the process), never escaping it, symlinks included;
 *  - a bare name (`node`, `python3`): found in the clean PATH of plugin processes (/usr/bin:/bin),
 *    because that is where the spawn looks for it — a bare name that is only a file of the plugin
 *    would not be found at run time, so it is refused with a hint.
 */
async function checkProgram(program: string, dir: string, field: string): Promise<void> {
  const fail = (message: string) => {
    throw new PluginInstallError(`${field}: ${message}`, { field, program, errors: [{ path: field, message }] });
  };
  if (isAbsolute(program)) {
    if (!(await isFile(program))) fail(`${program} does not exist or is not a file`);
    return;
  }
  if (!program.includes('/')) {
    for (const d of SCRIPT_PATH_DIRS) if (await isFile(join(d, program))) return;
    if (await isFile(join(dir, program))) fail(`"${program}" is a file of the plugin: write "./${program}"`);
    fail(`"${program}" is neither in ${SCRIPT_PATH_DIRS.join(':')} nor a path inside the plugin directory`);
  }
  const root = await realpath(dir);
  let real: string;
  try {
    real = await realpath(resolve(root, program));
  } catch {
    return fail(`${program} does not exist in the plugin directory`);
  }
  if (!inside(root, real)) fail(`${program} points outside the plugin directory`);
  if (!(await isFile(real))) fail(`${program} is not a file`);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * Copies the plugin directory `src` into the empty directory `dest`. Regular files keep only
 * "executable or not" (0755/0644); `.git` is skipped (as by `mairust plugin package`); a symlink
 * is kept (rewritten relative) when it points inside `src`, and refused when it points outside or
 * nowhere — following it would install files the admin never looked at. Anything else (device,
 * FIFO, socket) is refused. Bounded by `limits` (total bytes, entries).
 */
export async function copyPluginTree(src: string, dest: string, limits: CopyLimits = DEFAULT_COPY_LIMITS): Promise<void> {
  let root: string;
  try {
    root = await realpath(src);
    if (!(await stat(root)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new PluginInstallError(`${src} is not a readable directory (${(err as Error).message})`);
  }
  let total = 0;
  let entries = 0;
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      if (name === '.git') continue;
      const relPath = rel ? join(rel, name) : name;
      const from = join(root, relPath);
      const to = join(dest, relPath);
      if (++entries > limits.maxEntries) throw new PluginInstallError(`the plugin directory has more than ${limits.maxEntries} entries`);
      const info = await lstat(from);
      if (info.isDirectory()) {
        await mkdir(to, { mode: 0o755 });
        await walk(relPath);
      } else if (info.isFile()) {
        total += info.size;
        if (total > limits.maxTotalBytes) throw new PluginInstallError(`the plugin directory holds more than ${limits.maxTotalBytes} bytes`);
        await copyFile(from, to, fsConstants.COPYFILE_EXCL);
        await chmod(to, info.mode & 0o111 ? 0o755 : 0o644);
      } else if (info.isSymbolicLink()) {
        let target: string;
        try {
          target = await realpath(from);
        } catch {
          throw new PluginInstallError(`${relPath} is a symlink to nothing (${await readlink(from).catch(() => '?')})`, { path: relPath });
        }
        if (!inside(root, target)) {
          throw new PluginInstallError(`${relPath} is a symlink pointing outside the plugin directory`, { path: relPath });
        }
        // The link's parent is a real directory under root (links are never followed by the walk).
        await symlink(relative(join(root, rel), target) || '.', to);
      } else {
        throw new PluginInstallError(`${relPath} is not a regular file, directory or symlink`, { path: relPath });
      }
    }
  };
  await walk('');
}

/** A staged tree moved into its final place; `commit` or `rollback` once the database has decided. */
export interface PlacedTree {
  installDir: string;
  /** Removes what the new tree replaced (the old version's directory). */
  commit(oldInstallDir: string | null): Promise<void>;
  /** Puts the previous state back. */
  rollback(): Promise<void>;
}

/**
 * Moves `staged` to `<pluginsDir>/<id>/<version>`. A reinstall of the same version swaps the
 * existing directory aside first (restored by `rollback`). The id and version are safe path
 * segments: the manifest parser only accepts reverse-DNS ids and semantic versions.
 */
export async function placeTree(staged: string, pluginsDir: string, id: string, version: string): Promise<PlacedTree> {
  const idDir = join(pluginsDir, id);
  const installDir = join(idDir, version);
  await mkdir(idDir, { recursive: true, mode: 0o755 });
  let aside: string | null = null;
  if (await exists(installDir)) {
    aside = join(stagingRoot(pluginsDir), `old-${id}-${version}-${process.pid}-${Date.now()}`);
    await rename(installDir, aside);
  }
  try {
    await rename(staged, installDir);
  } catch (err) {
    if (aside) await rename(aside, installDir).catch(() => undefined);
    throw err;
  }
  return {
    installDir,
    async commit(oldInstallDir) {
      if (aside) await rm(aside, { recursive: true, force: true });
      if (oldInstallDir && oldInstallDir !== installDir && inside(resolve(pluginsDir), resolve(oldInstallDir))) {
        await rm(oldInstallDir, { recursive: true, force: true });
      }
    },
    async rollback() {
      await rm(installDir, { recursive: true, force: true });
      if (aside) await rename(aside, installDir).catch(() => undefined);
    },
  };
}

/** Removes every file of plugin `id` (`<pluginsDir>/<id>`); never anything outside pluginsDir. */
export async function removePluginFiles(pluginsDir: string, id: string): Promise<void> {
  const root = resolve(pluginsDir);
  const idDir = resolve(root, id);
  if (dirname(idDir) !== root) return;
  await rm(idDir, { recursive: true, force: true });
}

/** Whether anything (a file, a directory, a dangling link) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
