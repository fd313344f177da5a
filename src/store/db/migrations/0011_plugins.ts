/**
 * 0011 — plugins and hooks (SPEC §6, §7):
 *
 * - `plugins`: one row per installed plugin (its current version). `manifest_json` is the parsed
 *   plugin.toml; `approved_permissions_json` is what an admin approved (null: not reviewed yet). A
 *   plugin runs only when `status = 'enabled'` and its manifest's permissions are all approved — an
 *   upgrade that adds permissions leaves it waiting for re-approval. Signing secrets live in
 *   `secrets`: `secret_id` is the current one, `previous_secret_id` stays valid until
 *   `previous_secret_expires_at` (rotation overlap). Uninstalling deletes the row (the audit log
 *   keeps the history).
 * - `tenant_plugins`: per-tenant enablement and config of a plugin (a tenant's own hooks may use a
 *   plugin only when it is enabled here).
 * - `plugin_tokens`: `plt_…` tokens, SHA-256 at rest, scoped (`callback`, `read`).
 * - `hooks`: hooks created through the API (hooks from the config file are not stored); the whole
 *   validated config in `config_json`, the columns used for lookups beside it.
 * - `plugin_logs`: per-plugin log lines (calls that failed, refused writes, health changes, stderr),
 *   bounded by the maintenance job.
 * - `message_plugin_metadata`: metadata a plugin wrote about a message, one JSON object per
 *   (message, plugin) — the `plugin:<id>:` namespace of SPEC §7.
 *
 * Purely additive (docs/adr/0002-additive-migrations.md).
 */
import type { Kysely } from 'kysely';
import type { Migration } from '../migrator.js';

export const migration0011: Migration = {
  version: 11,
  name: 'plugins',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('plugins')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('manifest_json', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('approved_permissions_json', 'text')
      .addColumn('allow_private', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('install_dir', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('signature', 'text', (c) => c.notNull())
      .addColumn('secret_id', 'text', (c) => c.notNull())
      .addColumn('previous_secret_id', 'text')
      .addColumn('previous_secret_expires_at', 'bigint')
      .addColumn('health_ok', 'integer')
      .addColumn('health_checked_at', 'bigint')
      .addColumn('health_error', 'text')
      .addColumn('installed_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('tenant_plugins')
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('plugin_id', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('config_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('tenant_plugins_pk', ['tenant_id', 'plugin_id'])
      .execute();
    await db.schema.createIndex('tenant_plugins_plugin').on('tenant_plugins').column('plugin_id').execute();

    await db.schema
      .createTable('plugin_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('plugin_id', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('scopes_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .addColumn('last_used_at', 'bigint')
      .execute();
    await db.schema.createIndex('plugin_tokens_plugin').on('plugin_tokens').column('plugin_id').execute();

    await db.schema
      .createTable('hooks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text')
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('plugin_id', 'text', (c) => c.notNull())
      .addColumn('config_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('hooks_type').on('hooks').columns(['type', 'tenant_id']).execute();
    await db.schema.createIndex('hooks_plugin').on('hooks').column('plugin_id').execute();

    await db.schema
      .createTable('plugin_logs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('plugin_id', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text')
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('hook_id', 'text')
      .addColumn('message_id', 'text')
      .addColumn('message', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('plugin_logs_plugin_at').on('plugin_logs').columns(['plugin_id', 'at']).execute();

    await db.schema
      .createTable('message_plugin_metadata')
      .addColumn('message_id', 'text', (c) => c.notNull())
      .addColumn('plugin_id', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('data_json', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('message_plugin_metadata_pk', ['message_id', 'plugin_id'])
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['message_plugin_metadata', 'plugin_logs', 'hooks', 'plugin_tokens', 'tenant_plugins', 'plugins']) {
      await db.schema.dropTable(t).execute();
    }
  },
};
