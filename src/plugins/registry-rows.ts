/**
 * `plugins` / `tenant_plugins` rows ↔ the registry's types (src/plugins/types.ts). Pure.
 *
 * Whether a plugin may run is derived here, in one place (SPEC §7 "Lifecycle"): it must be
 * `enabled`, an admin must have reviewed its permissions, and the manifest may not grant more
 * than what was approved — an upgrade that adds permissions leaves `pendingPermissions` non-empty
 * until the next approval.
 */
import type { PluginsTable, TenantPluginsTable } from '../store/db/types.js';
import type { PluginManifest } from './manifest.js';
import { addedNetwork, addedPermissions, highRiskReasons, NO_PERMISSIONS, type NetworkAccess, type PermissionChange, type Permissions } from './permissions.js';
import type { InstalledPlugin, TenantPlugin } from './types.js';

export function parseManifestJson(json: string): PluginManifest {
  return JSON.parse(json) as PluginManifest;
}

export function parseApproved(json: string | null): Permissions | null {
  if (json === null) return null;
  return { ...NO_PERMISSIONS, ...(JSON.parse(json) as Partial<Permissions>) };
}

/** The approved `[limits] network`, stored beside the permissions in the approval. */
export function parseApprovedNetwork(json: string | null): NetworkAccess {
  if (json === null) return 'none';
  const v = (JSON.parse(json) as { network?: NetworkAccess }).network;
  return v === 'allowlist' || v === 'unlimited' ? v : 'none';
}

/** The approval of a manifest as stored in `approved_permissions_json`: its permissions and its network level. */
export function approvalJson(manifest: PluginManifest): string {
  return JSON.stringify({ ...manifest.permissions, network: manifest.limits.network });
}

/**
 * What the manifest grants beyond the approval (everything it grants when never reviewed): added
 * permissions and a wider network level.
 */
export function pendingOf(manifest: PluginManifest, approvedJson: string | null): PermissionChange[] {
  const added = addedPermissions(parseApproved(approvedJson) ?? NO_PERMISSIONS, manifest.permissions);
  const network = addedNetwork(parseApprovedNetwork(approvedJson), manifest.limits.network);
  return network ? [...added, network] : added;
}

/** Runnable: enabled, reviewed, nothing pending. */
export function isRunnableRow(r: Pick<PluginsTable, 'status' | 'approved_permissions_json' | 'manifest_json'>): boolean {
  if (r.status !== 'enabled' || r.approved_permissions_json === null) return false;
  return pendingOf(parseManifestJson(r.manifest_json), r.approved_permissions_json).length === 0;
}

export function toInstalledPlugin(r: PluginsTable): InstalledPlugin {
  const manifest = parseManifestJson(r.manifest_json);
  const approved = parseApproved(r.approved_permissions_json);
  const pending = pendingOf(manifest, r.approved_permissions_json);
  const reasons = highRiskReasons(manifest.permissions, manifest.limits.network);
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    manifest,
    status: r.status,
    approvedPermissions: approved,
    pendingPermissions: pending,
    runnable: r.status === 'enabled' && approved !== null && pending.length === 0,
    highRisk: reasons.length > 0,
    highRiskReasons: reasons,
    allowPrivate: Number(r.allow_private) === 1,
    installDir: r.install_dir,
    source: r.source,
    signature: r.signature,
    health: {
      ok: r.health_ok === null ? null : Number(r.health_ok) === 1,
      checkedAt: r.health_checked_at === null ? null : Number(r.health_checked_at),
      error: r.health_error,
    },
    installedAt: Number(r.installed_at),
    updatedAt: Number(r.updated_at),
  };
}

export function parseConfigJson(json: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(json);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export function toTenantPlugin(r: TenantPluginsTable): TenantPlugin {
  return {
    tenantId: r.tenant_id,
    pluginId: r.plugin_id,
    enabled: Number(r.enabled) === 1,
    config: parseConfigJson(r.config_json),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
