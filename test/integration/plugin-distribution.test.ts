/**
 * Plugin files between the nodes of a cluster (src/plugins/distribution.ts): a script plugin
 * installed through one node runs on another node that never saw its directory, because the
 * installing node stored the tree in the shared blob store. Two registries share the database
 * and the blob store of the current shape but have their own plugin directories, like two nodes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshDatabase, tempDir, type TestDatabase } from '../support/shape.js';
import { freshBlobStore } from '../support/blobs.js';
import { DatabaseSecretStore } from '../../src/security/secrets/index.js';
import { masterKeyFromBytes } from '../../src/security/secrets/envelope.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { PluginFiles, pluginArchivePrefix } from '../../src/plugins/distribution.js';
import { runScript } from '../../src/hooks/executors/script.js';
import { resolveCommand } from '../../src/hooks/manager.js';
import { cliActor } from '../../src/security/audit.js';
import type { BlobStore } from '../../src/store/blob/blob-store.js';
import type { PluginsConfig } from '../../src/config/sections/plugins.js';

const ECHO = fileURLToPath(new URL('../fixtures/plugins/echo/', import.meta.url));
const VERSION = '0.5.0';

const cfg: PluginsConfig = {
  dir: '', trusted_keys: [], require_signature: false, egress_allowlist: [],
  health_interval_seconds: 30, log_retention_days: 14, secret_overlap_hours: 24, token_ttl_days: 365,
};

async function count(blobs: BlobStore, prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of blobs.list(prefix)) n++;
  return n;
}

describe('plugin files shared through the blob store', () => {
  let t: TestDatabase;
  let store: { blobs: BlobStore; remove(): Promise<void> };
  let dirA: { path: string; remove(): void };
  let dirB: { path: string; remove(): void };
  let nodeA: PluginRegistry;
  let nodeB: PluginRegistry;

  before(async () => {
    t = await freshDatabase();
    store = await freshBlobStore();
    dirA = tempDir('mairust-plugins-a-');
    dirB = tempDir('mairust-plugins-b-');
    const secrets = new DatabaseSecretStore(t.db, masterKeyFromBytes(Buffer.alloc(32, 7)));
    const node = (dir: string) =>
      new PluginRegistry({
        db: t.db, secrets, config: () => cfg, pluginsDir: dir, mairustVersion: VERSION,
        files: new PluginFiles({ blobs: store.blobs, pluginsDir: dir, mairustVersion: VERSION }),
      });
    nodeA = node(dirA.path);
    nodeB = node(dirB.path);
  });
  after(async () => {
    await store.remove();
    await t.drop();
    dirA.remove();
    dirB.remove();
  });

  test('a script plugin installed on node A runs on node B, and uninstalling removes the archive', async () => {
    const { plugin } = await nodeA.installFromDirectory(ECHO, cliActor);
    assert.equal(await count(store.blobs, pluginArchivePrefix(plugin.id)), 1, 'the tree is stored once');
    await nodeA.approve(plugin.id, cliActor);
    await nodeA.enable(plugin.id, cliActor);

    const onB = await nodeB.runnable(plugin.id);
    assert.ok(onB, 'runnable on node B');
    assert.ok(onB.installDir.startsWith(dirB.path), `node B runs its own copy (${onB.installDir})`);
    assert.equal(await readFile(join(onB.installDir, 'echo.mjs'), 'utf8'), await readFile(join(ECHO, 'echo.mjs'), 'utf8'));

    const entry = onB.manifest.entry;
    assert.equal(entry.protocol, 'script');
    if (entry.protocol !== 'script') return;
    const result = await runScript({
      command: [resolveCommand(entry.command[0], onB.installDir), ...entry.command.slice(1)],
      cwd: onB.installDir,
      payload: { hook_type: 'post_receive', message_id: 'm1', envelope: { from: 'a@example.com', to: ['b@example.com'] } },
      wallTimeMs: 5000,
    });
    assert.equal(result.ok, true, result.ok ? '' : result.message);

    await nodeA.uninstall(plugin.id, cliActor);
    assert.equal(await count(store.blobs, pluginArchivePrefix(plugin.id)), 0, 'the archive is gone');
    assert.equal(existsSync(join(dirA.path, plugin.id)), false);
  });
});
