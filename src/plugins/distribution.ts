/**
 * Plugin files in a cluster (SPEC §2 "many stateless nodes"): the node that installs a plugin
 * also stores its tree, as an unsigned `.mairust-plugin` archive with sha256 checksums, in the
 * shared blob store. A node that is asked to run a script plugin whose files it does not have
 * fetches the archive, checks it (package.ts verifies every checksum) and unpacks it into its own
 * `<plugins dir>/<id>/<version>/` before the first call. HTTP plugins need no files on any node.
 *
 * Keys are `plugin/<h(id)>/<h(id@version)>` (blob keys allow only [a-z0-9-] segments, ids and
 * versions contain dots), so uninstalling removes the prefix `plugin/<h(id)>/`. `mairust db check`
 * only looks for orphans under `msg/`, so these archives are never taken for orphans.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { BlobStore } from '../store/blob/blob-store.js';
import { exists, stagingRoot } from './install.js';
import { createPluginPackage, readPluginPackage } from './package.js';

const h = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);

export function pluginArchivePrefix(id: string): string {
  return `plugin/${h(id)}/`;
}

export function pluginArchiveKey(id: string, version: string): string {
  return `${pluginArchivePrefix(id)}${h(`${id}@${version}`)}`;
}

export class PluginFiles {
  /** Trees known to be present on this node (checked once per process). */
  private readonly present = new Set<string>();
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(
    private readonly deps: { blobs: BlobStore; pluginsDir: string; mairustVersion: string; logger?: Logger },
  ) {}

  /** Stores the installed tree; called before the plugin's row is written, so the row never names a missing archive. */
  async publish(id: string, version: string, installDir: string): Promise<void> {
    const root = stagingRoot(this.deps.pluginsDir);
    await mkdir(root, { recursive: true, mode: 0o750 });
    const tmp = await mkdtemp(join(root, 'publish-'));
    try {
      const file = join(tmp, 'plugin.mairust-plugin');
      await createPluginPackage(installDir, file);
      await this.deps.blobs.put(pluginArchiveKey(id, version), createReadStream(file));
      this.present.add(installDir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Makes sure `<pluginsDir>/<id>/<version>` exists on this node, unpacking the stored archive if needed. */
  async ensureLocal(id: string, version: string): Promise<string> {
    const dir = join(this.deps.pluginsDir, id, version);
    if (this.present.has(dir)) return dir;
    let p = this.inflight.get(dir);
    if (!p) {
      p = this.fetch(id, version, dir).finally(() => this.inflight.delete(dir));
      this.inflight.set(dir, p);
    }
    await p;
    return dir;
  }

  async remove(id: string): Promise<void> {
    for await (const stat of this.deps.blobs.list(pluginArchivePrefix(id))) await this.deps.blobs.delete(stat.key);
    for (const dir of [...this.present]) if (dir.startsWith(join(this.deps.pluginsDir, id) + '/')) this.present.delete(dir);
  }

  private async fetch(id: string, version: string, dir: string): Promise<void> {
    if (await exists(dir)) {
      this.present.add(dir);
      return;
    }
    const root = stagingRoot(this.deps.pluginsDir);
    await mkdir(root, { recursive: true, mode: 0o750 });
    const tmp = await mkdtemp(join(root, 'fetch-'));
    try {
      const file = join(tmp, 'plugin.mairust-plugin');
      await pipeline(await this.deps.blobs.get(pluginArchiveKey(id, version)), createWriteStream(file));
      // Our own archive: unsigned, but every file is checked against its sha256 line.
      const pkg = await readPluginPackage(file, { trustedKeys: [], requireSignature: false, mairustVersion: this.deps.mairustVersion, tempRoot: root });
      await mkdir(dirname(dir), { recursive: true, mode: 0o755 });
      try {
        await rename(pkg.dir, dir);
      } catch (err) {
        // Another process of this node unpacked it first: theirs is as good as ours.
        if (!(await exists(dir))) throw err;
        await rm(pkg.dir, { recursive: true, force: true });
      }
      this.present.add(dir);
      this.deps.logger?.info({ pluginId: id, version }, 'plugin files fetched from the blob store');
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
