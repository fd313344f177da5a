/**
 * The plugin registry (SPEC §7): installed plugins, their lifecycle, signing secrets, `plt_`
 * tokens, per-tenant enablement and config, logs and health. Implements the contract of
 * ./types.ts (`PluginManagement`, whose read side `PluginDirectory` the hook manager uses).
 *
 * - Every change runs in one transaction with its audit row (SPEC §10); files are moved into
 *   place before the transaction and put back if it fails (./install.ts).
 * - Secrets live in the SecretStore (kind `plugin`); the `plugins` row holds only their ids.
 *   A signing secret is returned exactly once: by the first install and by `rotateSecret`.
 * - `runnable`, `enabledForTenant` and `tenantConfig` are on the hot path of every hook call, so
 *   their rows are cached per process for at most RUNNABLE_CACHE_MS (2 s). A change made through
 *   this instance drops its cache entries at once; other processes/nodes see it within 2 s.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import semver from 'semver';
import { mkdir, rm } from 'node:fs/promises';
import type { PluginsConfig } from '../config/sections/plugins.js';
import { NotFoundError, ValidationError } from '../core/tenancy/errors.js';
import { newId, type Database } from '../store/db/database.js';
import type { DB, PluginsTable, PluginTokensTable, TenantPluginsTable } from '../store/db/types.js';
import { writeAudit, type AuditActor } from '../security/audit.js';
import type { SecretStore } from '../security/secrets/types.js';
import type { PluginManifest } from './manifest.js';
import { highRiskReasons } from './permissions.js';
import { PluginPackageError, readPluginPackage } from './package.js';
import {
  checkInstallable, copyPluginTree, newStagingDir, placeTree, readDirectoryManifest, removePluginFiles, stagingRoot,
} from './install.js';
import { appendPluginLog, listPluginLogs, prunePluginLogs } from './log-store.js';
import { approvalJson, isRunnableRow, parseConfigJson, pendingOf, toInstalledPlugin, toTenantPlugin } from './registry-rows.js';
import {
  hashPluginToken, looksLikePluginToken, newPluginSecret, newPluginToken, parseScopes, toTokenInfo, tokenUsable,
  TOKEN_TOUCH_EVERY_MS, validateTokenScopes,
} from './tokens.js';
import { trustedKeyPems } from './trusted-keys.js';
import type { PluginFiles } from './distribution.js';
import {
  PluginInstallError, PluginNotFoundError, PluginStateError,
  type InstalledPlugin, type InstallResult, type PluginLogEntry, type PluginLogRecord, type PluginManagement,
  type PluginTokenInfo, type PluginTokenScope, type RunnablePlugin, type TenantPlugin, type VerifiedPluginToken,
} from './types.js';

/** How long a process may act on a cached plugin / tenant_plugins row (SPEC §7; see the header). */
export const RUNNABLE_CACHE_MS = 2000;
/** `tenant_plugins.config_json` bound: the config travels in every payload (`metadata.config`). */
export const MAX_TENANT_CONFIG_BYTES = 16 * 1024;
const MAX_CACHE_ENTRIES = 10_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export interface PluginRegistryDeps {
  db: Database;
  secrets: SecretStore;
  /** Read on every call: the `plugins.*` keys are reloadable. */
  config: () => PluginsConfig;
  /** `<plugins dir>`: installs go to `<pluginsDir>/<id>/<version>/`. */
  pluginsDir: string;
  mairustVersion: string;
  now?: () => number;
  logger?: Logger;
  /** Shares plugin files between the nodes of a cluster through the blob store (distribution.ts). */
  files?: PluginFiles;
}

interface RowEntry {
  at: number;
  row: PluginsTable | null;
  /** Plaintexts of this row's secrets, fetched once per cache entry. */
  plain: Map<string, Promise<string>>;
}

export class PluginRegistry implements PluginManagement {
  private readonly now: () => number;
  private readonly rows = new Map<string, RowEntry>();
  private readonly tenantRows = new Map<string, { at: number; row: TenantPluginsTable | null }>();

  constructor(private readonly deps: PluginRegistryDeps) {
    this.now = deps.now ?? Date.now;
  }

  private get db(): Kysely<DB> {
    return this.deps.db.kysely;
  }

  // ------------------------------------------------------------------------------------------
  // Install / upgrade

  async installFromDirectory(dir: string, actor: AuditActor): Promise<InstallResult> {
    if (this.deps.config().require_signature) {
      throw new PluginInstallError('plugins.require_signature is on: directory installs are refused, install a signed package', {
        code: 'signature_required',
      });
    }
    // Parse the source first: precise manifest errors without copying anything.
    await readDirectoryManifest(dir, this.deps.mairustVersion);
    const staged = await newStagingDir(this.deps.pluginsDir);
    try {
      await copyPluginTree(dir, staged);
      // The staged copy is what will run: its manifest is the one that counts.
      const manifest = await readDirectoryManifest(staged, this.deps.mairustVersion);
      return await this.installStaged(staged, manifest, 'directory', 'unsigned', actor);
    } finally {
      await rm(staged, { recursive: true, force: true });
    }
  }

  async installFromPackage(file: string, actor: AuditActor): Promise<InstallResult> {
    const cfg = this.deps.config();
    await mkdir(stagingRoot(this.deps.pluginsDir), { recursive: true, mode: 0o750 });
    let pkg;
    try {
      pkg = await readPluginPackage(file, {
        trustedKeys: trustedKeyPems(cfg.trusted_keys),
        requireSignature: cfg.require_signature,
        mairustVersion: this.deps.mairustVersion,
        tempRoot: stagingRoot(this.deps.pluginsDir),
      });
    } catch (err) {
      if (err instanceof PluginPackageError) {
        throw new PluginInstallError(err.message, {
          code: err.code,
          ...(err.code === 'invalid_manifest' ? { errors: err.details } : {}),
        });
      }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PluginInstallError(`package ${file} does not exist`, { code: 'bad_archive' });
      throw err;
    }
    try {
      if (pkg.signature.status === 'unverified') {
        // A signature no trusted key verifies is either a forgery or a missing key in the
        // config: both need the admin's attention, so it is refused rather than ignored.
        throw new PluginInstallError('the package is signed by a key that is not in plugins.trusted_keys', { code: 'untrusted_signature' });
      }
      const signature = pkg.signature.status === 'valid' ? `ed25519:${pkg.signature.fingerprint}` : 'unsigned';
      return await this.installStaged(pkg.dir, pkg.manifest, 'package', signature, actor);
    } finally {
      await rm(pkg.dir, { recursive: true, force: true });
    }
  }

  /** Checks the staged tree, moves it into place and writes the row (install or upgrade). */
  private async installStaged(
    staged: string, manifest: PluginManifest, source: 'directory' | 'package', signature: string, actor: AuditActor,
  ): Promise<InstallResult> {
    await checkInstallable(manifest, staged, this.deps.config());
    const placed = await placeTree(staged, this.deps.pluginsDir, manifest.id, manifest.version);
    if (this.deps.files) {
      // Before the row: a row never names files the other nodes cannot fetch.
      await this.deps.files.publish(manifest.id, manifest.version, placed.installDir).catch(async (err) => {
        await placed.rollback();
        throw err;
      });
    }
    let oldDir: string | null = null;
    let outcome: { row: PluginsTable; upgraded: boolean; secret?: string; downgradeFrom?: string };
    try {
      outcome = await this.db.transaction().execute(async (trx) => {
        const existing = await this.lockRow(trx, manifest.id, false);
        const at = this.now();
        const reasons = highRiskReasons(manifest.permissions, manifest.limits.network);
        const common = {
          name: manifest.name,
          version: manifest.version,
          manifest_json: JSON.stringify(manifest),
          install_dir: placed.installDir,
          source,
          signature,
          updated_at: at,
        };
        if (!existing) {
          const secret = newPluginSecret();
          const secretId = await this.deps.secrets.put({ tenantId: null, kind: 'plugin', plaintext: secret }, trx);
          const row: PluginsTable = {
            id: manifest.id,
            ...common,
            status: 'installed',
            approved_permissions_json: null,
            allow_private: 0,
            secret_id: secretId,
            previous_secret_id: null,
            previous_secret_expires_at: null,
            health_ok: null,
            health_checked_at: null,
            health_error: null,
            installed_at: at,
          };
          await trx.insertInto('plugins').values(row).execute();
          await writeAudit(trx, {
            tenantId: null,
            eventType: 'plugin.installed',
            actor,
            target: { type: 'plugin', id: manifest.id },
            metadata: {
              version: manifest.version, source, signature, permissions: manifest.permissions,
              high_risk: reasons.length > 0, high_risk_reasons: reasons,
            },
          });
          return { row, upgraded: false, secret };
        }
        oldDir = existing.install_dir;
        // A new version starts with an unknown health; status, secrets, tokens and approval stay.
        const update = { ...common, health_ok: null, health_checked_at: null, health_error: null };
        await trx.updateTable('plugins').set(update).where('id', '=', manifest.id).execute();
        const row: PluginsTable = { ...existing, ...update };
        const added = existing.approved_permissions_json === null ? [] : pendingOf(manifest, existing.approved_permissions_json);
        const downgrade = semver.valid(existing.version) && semver.lt(manifest.version, existing.version);
        await writeAudit(trx, {
          tenantId: null,
          eventType: 'plugin.upgraded',
          actor,
          target: { type: 'plugin', id: manifest.id },
          metadata: {
            version: manifest.version, previous_version: existing.version, downgrade: Boolean(downgrade), source, signature,
            permissions_added: added, needs_approval: added.length > 0, high_risk: reasons.length > 0, high_risk_reasons: reasons,
          },
        });
        return { row, upgraded: true, downgradeFrom: downgrade ? existing.version : undefined };
      });
    } catch (err) {
      await placed.rollback();
      throw err;
    }
    this.forget(manifest.id);
    await placed.commit(oldDir).catch((err: Error) => {
      this.deps.logger?.warn({ pluginId: manifest.id, err: err.message }, 'could not remove the previous plugin files');
    });
    if (outcome.downgradeFrom) {
      this.deps.logger?.warn({ pluginId: manifest.id, from: outcome.downgradeFrom, to: manifest.version }, 'plugin downgraded');
      await this.log({ pluginId: manifest.id, level: 'warn', message: `downgraded from ${outcome.downgradeFrom} to ${manifest.version}` });
    }
    const plugin = toInstalledPlugin(outcome.row);
    return { plugin, upgraded: outcome.upgraded, ...(outcome.secret ? { secret: outcome.secret } : {}) };
  }

  // ------------------------------------------------------------------------------------------
  // Queries

  async list(): Promise<InstalledPlugin[]> {
    const rows = await this.db.selectFrom('plugins').selectAll().orderBy('id').execute();
    return rows.map(toInstalledPlugin);
  }

  async get(id: string): Promise<InstalledPlugin | null> {
    const row = await this.db.selectFrom('plugins').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toInstalledPlugin(row) : null;
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  async approve(id: string, actor: AuditActor, opts: { allowPrivate?: boolean } = {}): Promise<InstalledPlugin> {
    const row = await this.change(id, async (trx, r) => {
      const manifest = JSON.parse(r.manifest_json) as PluginManifest;
      const pending = pendingOf(manifest, r.approved_permissions_json);
      // Without an explicit decision the earlier private-address decision stands (re-approvals after upgrades).
      const allowPrivate = opts.allowPrivate === undefined ? Number(r.allow_private) : opts.allowPrivate ? 1 : 0;
      const set = { approved_permissions_json: approvalJson(manifest), allow_private: allowPrivate, updated_at: this.now() };
      await trx.updateTable('plugins').set(set).where('id', '=', id).execute();
      const reasons = highRiskReasons(manifest.permissions, manifest.limits.network);
      await this.audit(trx, 'plugin.approved', actor, id, {
        version: r.version, permissions: manifest.permissions, permissions_added: pending,
        // (`allow_private` as a key would be redacted by writeAudit's secret filter: /private/.)
        internal_addresses_allowed: allowPrivate === 1, high_risk: reasons.length > 0, high_risk_reasons: reasons,
      });
      return { ...r, ...set };
    });
    return toInstalledPlugin(row);
  }

  async enable(id: string, actor: AuditActor): Promise<InstalledPlugin> {
    const row = await this.change(id, async (trx, r) => {
      const p = toInstalledPlugin(r);
      if (p.approvedPermissions === null) throw new PluginStateError(`plugin ${id} must be approved before it can be enabled`);
      if (p.pendingPermissions.length) {
        throw new PluginStateError(
          `plugin ${id} has permissions waiting for approval: ${p.pendingPermissions.map((c) => `${c.permission} ${c.from} → ${c.to}`).join(', ')}`,
        );
      }
      if (r.status === 'enabled') return r;
      const set = { status: 'enabled' as const, updated_at: this.now() };
      await trx.updateTable('plugins').set(set).where('id', '=', id).execute();
      await this.audit(trx, 'plugin.enabled', actor, id, { version: r.version });
      return { ...r, ...set };
    });
    return toInstalledPlugin(row);
  }

  async disable(id: string, actor: AuditActor): Promise<InstalledPlugin> {
    const row = await this.change(id, async (trx, r) => {
      if (r.status !== 'enabled') return r;
      const set = { status: 'disabled' as const, updated_at: this.now() };
      await trx.updateTable('plugins').set(set).where('id', '=', id).execute();
      await this.audit(trx, 'plugin.disabled', actor, id, { version: r.version });
      return { ...r, ...set };
    });
    return toInstalledPlugin(row);
  }

  /**
   * Removes the plugin and everything that only makes sense with it: tokens, tenant rows, API
   * hooks and their breakers, logs, secrets, files. Metadata it wrote about messages stays: it is
   * part of those messages (SPEC §7 `plugin:<id>:` namespace) and goes with them.
   */
  async uninstall(id: string, actor: AuditActor): Promise<void> {
    await this.change(id, async (trx, r) => {
      await trx.deleteFrom('plugin_tokens').where('plugin_id', '=', id).execute();
      await trx.deleteFrom('tenant_plugins').where('plugin_id', '=', id).execute();
      await trx.deleteFrom('hooks').where('plugin_id', '=', id).execute();
      await trx.deleteFrom('hook_breakers').where('plugin_id', '=', id).execute();
      await trx.deleteFrom('plugin_logs').where('plugin_id', '=', id).execute();
      await trx.deleteFrom('plugins').where('id', '=', id).execute();
      await this.deps.secrets.delete(r.secret_id, trx);
      if (r.previous_secret_id) await this.deps.secrets.delete(r.previous_secret_id, trx);
      await this.audit(trx, 'plugin.uninstalled', actor, id, { version: r.version });
      return r;
    });
    await removePluginFiles(this.deps.pluginsDir, id).catch((err: Error) => {
      this.deps.logger?.warn({ pluginId: id, err: err.message }, 'could not remove the files of an uninstalled plugin');
    });
    await this.deps.files?.remove(id).catch((err: Error) => {
      this.deps.logger?.warn({ pluginId: id, err: err.message }, 'could not remove the stored archive of an uninstalled plugin');
    });
  }

  // ------------------------------------------------------------------------------------------
  // Signing secrets

  async rotateSecret(id: string, actor: AuditActor): Promise<string> {
    const secret = newPluginSecret();
    await this.change(id, async (trx, r) => {
      const at = this.now();
      const overlapMs = this.deps.config().secret_overlap_hours * HOUR_MS;
      const newId_ = await this.deps.secrets.put({ tenantId: null, kind: 'plugin', plaintext: secret }, trx);
      // Only two secrets are ever active: an even older one is dropped now.
      if (r.previous_secret_id) await this.deps.secrets.delete(r.previous_secret_id, trx);
      let previous: string | null = r.secret_id;
      let expires: number | null = at + overlapMs;
      if (overlapMs === 0) {
        await this.deps.secrets.delete(r.secret_id, trx);
        previous = null;
        expires = null;
      }
      const set = { secret_id: newId_, previous_secret_id: previous, previous_secret_expires_at: expires, updated_at: at };
      await trx.updateTable('plugins').set(set).where('id', '=', id).execute();
      await this.audit(trx, 'plugin.secret_rotated', actor, id, { previous_valid_until: expires });
      return { ...r, ...set };
    });
    return secret;
  }

  // ------------------------------------------------------------------------------------------
  // Tokens

  async rotateToken(id: string, scopes: PluginTokenScope[], actor: AuditActor): Promise<{ token: string; info: PluginTokenInfo }> {
    const wanted = validateTokenScopes(scopes);
    const token = newPluginToken();
    let info!: PluginTokenInfo;
    await this.change(id, async (trx, r) => {
      const at = this.now();
      const live = await trx
        .selectFrom('plugin_tokens')
        .selectAll()
        .where('plugin_id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
      const replaced = live.filter((t) => parseScopes(t.scopes_json).some((s) => wanted.includes(s))).map((t) => t.id);
      if (replaced.length) await trx.updateTable('plugin_tokens').set({ revoked_at: at }).where('id', 'in', replaced).execute();
      const ttlDays = this.deps.config().token_ttl_days;
      const row: PluginTokensTable = {
        id: newId(),
        plugin_id: id,
        token_hash: hashPluginToken(token),
        scopes_json: JSON.stringify(wanted),
        created_at: at,
        expires_at: ttlDays > 0 ? at + ttlDays * DAY_MS : null,
        revoked_at: null,
        last_used_at: null,
      };
      await trx.insertInto('plugin_tokens').values(row).execute();
      await this.audit(trx, 'plugin.token_rotated', actor, id, { issued_id: row.id, scopes: wanted, revoked_ids: replaced, expires_at: row.expires_at });
      info = toTokenInfo(row);
      return r;
    });
    return { token, info };
  }

  async listTokens(id: string): Promise<PluginTokenInfo[]> {
    await this.requireRow(id);
    const rows = await this.db
      .selectFrom('plugin_tokens')
      .selectAll()
      .where('plugin_id', '=', id)
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .execute();
    return rows.map(toTokenInfo);
  }

  async revokeToken(pluginId: string, tokenId: string, actor: AuditActor): Promise<boolean> {
    let revoked = false;
    await this.change(pluginId, async (trx, r) => {
      const res = await trx
        .updateTable('plugin_tokens')
        .set({ revoked_at: this.now() })
        .where('id', '=', tokenId)
        .where('plugin_id', '=', pluginId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      revoked = Number(res.numUpdatedRows) > 0;
      if (revoked) await this.audit(trx, 'plugin.token_revoked', actor, pluginId, { revoked_id: tokenId });
      return r;
    });
    return revoked;
  }

  /** Looked up by the token's SHA-256 (unique index); null when unknown, revoked, expired or its plugin is gone. */
  async verifyToken(token: string): Promise<VerifiedPluginToken | null> {
    if (typeof token !== 'string' || !looksLikePluginToken(token)) return null;
    const row = await this.db.selectFrom('plugin_tokens').selectAll().where('token_hash', '=', hashPluginToken(token)).executeTakeFirst();
    const at = this.now();
    if (!row || !tokenUsable(row, at)) return null;
    const plugin = await this.db.selectFrom('plugins').select('id').where('id', '=', row.plugin_id).executeTakeFirst();
    if (!plugin) return null;
    if (row.last_used_at === null || at - Number(row.last_used_at) >= TOKEN_TOUCH_EVERY_MS) {
      await this.db.updateTable('plugin_tokens').set({ last_used_at: at }).where('id', '=', row.id).execute();
    }
    return { tokenId: row.id, pluginId: row.plugin_id, scopes: parseScopes(row.scopes_json) };
  }

  // ------------------------------------------------------------------------------------------
  // Tenants

  async setTenantPlugin(
    tenantId: string, pluginId: string, change: { enabled?: boolean; config?: Record<string, unknown> }, actor: AuditActor,
  ): Promise<TenantPlugin> {
    if (change.enabled !== undefined && typeof change.enabled !== 'boolean') {
      throw new ValidationError('enabled must be true or false', { field: 'enabled' });
    }
    let configJson: string | undefined;
    if (change.config !== undefined) {
      const c = change.config as unknown;
      if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new ValidationError('config must be a JSON object', { field: 'config' });
      configJson = JSON.stringify(c);
      if (Buffer.byteLength(configJson, 'utf8') > MAX_TENANT_CONFIG_BYTES) {
        throw new ValidationError(`config is larger than ${MAX_TENANT_CONFIG_BYTES} bytes as JSON`, { field: 'config', max: MAX_TENANT_CONFIG_BYTES });
      }
    }
    let result!: TenantPluginsTable;
    await this.change(pluginId, async (trx, r) => {
      const tenant = await trx.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
      if (!tenant) throw new NotFoundError('tenant not found');
      const existing = await trx
        .selectFrom('tenant_plugins')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('plugin_id', '=', pluginId)
        .executeTakeFirst();
      const at = this.now();
      const row: TenantPluginsTable = {
        tenant_id: tenantId,
        plugin_id: pluginId,
        enabled: change.enabled === undefined ? Number(existing?.enabled ?? 0) : change.enabled ? 1 : 0,
        config_json: configJson ?? existing?.config_json ?? '{}',
        created_at: existing ? Number(existing.created_at) : at,
        updated_at: at,
      };
      await trx
        .insertInto('tenant_plugins')
        .values(row)
        .onConflict((oc) => oc.columns(['tenant_id', 'plugin_id']).doUpdateSet({
          enabled: row.enabled, config_json: row.config_json, updated_at: row.updated_at,
        }))
        .execute();
      // Config values may hold a tenant's credentials for the plugin: only the key names are audited.
      await writeAudit(trx, {
        tenantId,
        eventType: 'plugin.tenant_changed',
        actor,
        target: { type: 'plugin', id: pluginId },
        metadata: {
          enabled: row.enabled === 1,
          created: !existing,
          config_changed: configJson !== undefined && configJson !== existing?.config_json,
          config_keys: Object.keys(parseConfigJson(row.config_json)),
        },
      });
      result = row;
      return r;
    });
    return toTenantPlugin(result);
  }

  async listTenantPlugins(tenantId: string): Promise<TenantPlugin[]> {
    const rows = await this.db.selectFrom('tenant_plugins').selectAll().where('tenant_id', '=', tenantId).orderBy('plugin_id').execute();
    return rows.map(toTenantPlugin);
  }

  // ------------------------------------------------------------------------------------------
  // PluginDirectory (hot path, cached)

  async runnable(pluginId: string): Promise<RunnablePlugin | null> {
    const entry = await this.cachedRow(pluginId);
    const row = entry.row;
    if (!row || !isRunnableRow(row)) return null;
    const p = toInstalledPlugin(row);
    // Script plugins run from this node's copy of their files, fetched from the blob store when
    // another node installed them (distribution.ts).
    const installDir = this.deps.files && p.manifest.entry.protocol === 'script' ? await this.deps.files.ensureLocal(p.id, p.version) : p.installDir;
    return {
      id: p.id,
      manifest: p.manifest,
      permissions: p.approvedPermissions!,
      allowPrivate: p.allowPrivate,
      installDir,
      secrets: async () => {
        const out = [await this.secretText(entry, row.secret_id)];
        const prevExpiry = row.previous_secret_expires_at === null ? null : Number(row.previous_secret_expires_at);
        if (row.previous_secret_id && prevExpiry !== null && prevExpiry > this.now()) {
          // A previous secret that cannot be read (deleted by a concurrent rotation) is simply not sent.
          const prev = await this.secretText(entry, row.previous_secret_id).catch(() => null);
          if (prev !== null) out.push(prev);
        }
        return out;
      },
    };
  }

  async enabledForTenant(pluginId: string, tenantId: string): Promise<boolean> {
    if (!(await this.runnable(pluginId))) return false;
    const row = await this.cachedTenantRow(pluginId, tenantId);
    return row !== null && Number(row.enabled) === 1;
  }

  async tenantConfig(pluginId: string, tenantId: string): Promise<Record<string, unknown>> {
    const row = await this.cachedTenantRow(pluginId, tenantId);
    return row ? parseConfigJson(row.config_json) : {};
  }

  // ------------------------------------------------------------------------------------------
  // Logs and health

  async log(entry: PluginLogEntry): Promise<void> {
    try {
      await appendPluginLog(this.db, entry, this.now());
    } catch (err) {
      this.deps.logger?.warn({ pluginId: entry.pluginId, err: (err as Error).message }, 'could not write a plugin log line');
    }
  }

  async logs(pluginId: string, opts: { limit?: number; before?: number; tenantId?: string } = {}): Promise<PluginLogRecord[]> {
    return listPluginLogs(this.db, pluginId, opts);
  }

  /**
   * For the maintenance job: deletes log lines written before `olderThanMs` (a timestamp, ms since
   * the epoch; default: now − `plugins.log_retention_days`). Returns how many were deleted.
   */
  async pruneLogs(olderThanMs?: number): Promise<number> {
    const cutoff = olderThanMs ?? this.now() - this.deps.config().log_retention_days * DAY_MS;
    return prunePluginLogs(this.db, cutoff);
  }

  async recordHealth(pluginId: string, ok: boolean, error: string | null): Promise<void> {
    const before = await this.db.selectFrom('plugins').select(['health_ok']).where('id', '=', pluginId).executeTakeFirst();
    // Uninstalled while its check ran: nothing to record.
    if (!before) return;
    const message = ok ? null : (error ?? 'health check failed').slice(0, 1000);
    await this.db
      .updateTable('plugins')
      .set({ health_ok: ok ? 1 : 0, health_checked_at: this.now(), health_error: message })
      .where('id', '=', pluginId)
      .execute();
    const was = before.health_ok === null ? null : Number(before.health_ok) === 1;
    if (!ok && was !== false) await this.log({ pluginId, level: 'warn', message: `health check failing: ${message}` });
    else if (ok && was === false) await this.log({ pluginId, level: 'info', message: 'health check passing again' });
  }

  // ------------------------------------------------------------------------------------------
  // Internals

  /**
   * Runs `fn` on the locked row in a transaction (PluginNotFoundError when absent) and drops the
   * cache entries of the plugin afterwards.
   */
  private async change(id: string, fn: (trx: Kysely<DB>, row: PluginsTable) => Promise<PluginsTable>): Promise<PluginsTable> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        const row = await this.lockRow(trx, id, true);
        return fn(trx, row);
      });
    } finally {
      this.forget(id);
    }
  }

  private async lockRow(trx: Kysely<DB>, id: string, required: true): Promise<PluginsTable>;
  private async lockRow(trx: Kysely<DB>, id: string, required: false): Promise<PluginsTable | undefined>;
  private async lockRow(trx: Kysely<DB>, id: string, required: boolean): Promise<PluginsTable | undefined> {
    const row = await trx
      .selectFrom('plugins')
      .selectAll()
      .where('id', '=', id)
      .$if(this.deps.db.dialect === 'postgres', (q) => q.forUpdate())
      .executeTakeFirst();
    if (!row && required) throw new PluginNotFoundError(id);
    return row;
  }

  private async requireRow(id: string): Promise<PluginsTable> {
    const row = await this.db.selectFrom('plugins').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new PluginNotFoundError(id);
    return row;
  }

  private async audit(trx: Kysely<DB>, eventType: string, actor: AuditActor, id: string, metadata: Record<string, unknown>): Promise<void> {
    await writeAudit(trx, { tenantId: null, eventType, actor, target: { type: 'plugin', id }, metadata });
  }

  private forget(pluginId: string): void {
    this.rows.delete(pluginId);
    const prefix = `${pluginId}\n`;
    for (const key of this.tenantRows.keys()) if (key.startsWith(prefix)) this.tenantRows.delete(key);
  }

  private async cachedRow(pluginId: string): Promise<RowEntry> {
    const at = this.now();
    const hit = this.rows.get(pluginId);
    if (hit && at - hit.at < RUNNABLE_CACHE_MS && hit.at <= at) return hit;
    const row = (await this.db.selectFrom('plugins').selectAll().where('id', '=', pluginId).executeTakeFirst()) ?? null;
    const entry: RowEntry = { at, row, plain: new Map() };
    if (this.rows.size >= MAX_CACHE_ENTRIES) this.rows.clear();
    this.rows.set(pluginId, entry);
    return entry;
  }

  private async cachedTenantRow(pluginId: string, tenantId: string): Promise<TenantPluginsTable | null> {
    const key = `${pluginId}\n${tenantId}`;
    const at = this.now();
    const hit = this.tenantRows.get(key);
    if (hit && at - hit.at < RUNNABLE_CACHE_MS && hit.at <= at) return hit.row;
    const row = (await this.db
      .selectFrom('tenant_plugins')
      .selectAll()
      .where('plugin_id', '=', pluginId)
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst()) ?? null;
    if (this.tenantRows.size >= MAX_CACHE_ENTRIES) this.tenantRows.clear();
    this.tenantRows.set(key, { at, row });
    return row;
  }

  private secretText(entry: RowEntry, secretId: string): Promise<string> {
    let p = entry.plain.get(secretId);
    if (!p) {
      p = this.deps.secrets.get(secretId).then((b) => b.toString('utf8'));
      // A failed read is not cached: the next call tries again.
      p.catch(() => entry.plain.delete(secretId));
      entry.plain.set(secretId, p);
    }
    return p;
  }
}
