/**
 * The contract between the plugin registry (registry.ts: lifecycle, secrets, tokens, tenant
 * enablement, logs) and its users: the hook manager (src/hooks/manager.ts) asks a PluginDirectory
 * whether a plugin may run and with what; the REST API and the CLI drive the PluginRegistry.
 *
 * Lifecycle (SPEC §7): install → `installed` (disabled, permissions not reviewed) → approve
 * (the admin accepts the manifest's permissions) → `enabled` ⇄ `disabled` → uninstall (row gone).
 * An upgrade whose manifest adds permissions keeps the plugin's status but makes it non-runnable
 * until the new permissions are approved (`pendingPermissions` non-empty).
 */
import type { AuditActor } from '../security/audit.js';
import type { PluginStatus } from '../store/db/types.js';
import type { PluginManifest } from './manifest.js';
import type { PermissionChange, Permissions } from './permissions.js';

export type { PluginStatus };

/** Token scopes (SPEC §7): `callback` → POST /internal/plugins/callback/:id, `read` → GET /internal/plugins/messages/:id. */
export const PLUGIN_TOKEN_SCOPES = ['callback', 'read'] as const;
export type PluginTokenScope = (typeof PLUGIN_TOKEN_SCOPES)[number];
export const PLUGIN_TOKEN_PREFIX = 'plt_';
/** Signing secrets handed to plugin authors start with this (like `whsec_` for webhooks). */
export const PLUGIN_SECRET_PREFIX = 'psec_';

export interface InstalledPlugin {
  id: string;
  name: string;
  version: string;
  manifest: PluginManifest;
  status: PluginStatus;
  /** What the admin approved; null: never reviewed. */
  approvedPermissions: Permissions | null;
  /** Manifest permissions not (yet) approved; empty when the plugin may run. */
  pendingPermissions: PermissionChange[];
  /** status = enabled and nothing pending: hooks call it. */
  runnable: boolean;
  highRisk: boolean;
  highRiskReasons: string[];
  allowPrivate: boolean;
  installDir: string;
  source: 'directory' | 'package';
  /** `unsigned` or `ed25519:<fingerprint>`. */
  signature: string;
  health: { ok: boolean | null; checkedAt: number | null; error: string | null };
  installedAt: number;
  updatedAt: number;
}

/** What the hook manager needs to call one plugin. */
export interface RunnablePlugin {
  id: string;
  manifest: PluginManifest;
  /** The approved permissions (equal to the manifest's when runnable). */
  permissions: Permissions;
  allowPrivate: boolean;
  /** Working directory of script plugins (their unpacked files). */
  installDir: string;
  /** Active signing secrets, newest first (two during a rotation overlap). */
  secrets(): Promise<string[]>;
}

export interface PluginLogEntry {
  pluginId: string;
  tenantId?: string | null;
  level: 'debug' | 'info' | 'warn' | 'error';
  hookId?: string | null;
  messageId?: string | null;
  /** One line; bounded (cut at 2 000 characters) by the registry. */
  message: string;
}

export interface PluginLogRecord extends Required<PluginLogEntry> {
  id: string;
  at: number;
}

/** The read side the hook manager, the health checker and the internal plugin API use. */
export interface PluginDirectory {
  /** The plugin if it may run (installed, enabled, all manifest permissions approved); else null. */
  runnable(pluginId: string): Promise<RunnablePlugin | null>;
  /** A tenant's own hooks may use a plugin only when the tenant enabled it (tenant_plugins). */
  enabledForTenant(pluginId: string, tenantId: string): Promise<boolean>;
  /** The tenant's config for the plugin ({} when none), sent to the plugin in `metadata.config`. */
  tenantConfig(pluginId: string, tenantId: string): Promise<Record<string, unknown>>;
  /** Appends to the plugin's log (never throws). */
  log(entry: PluginLogEntry): Promise<void>;
}

export interface VerifiedPluginToken {
  tokenId: string;
  pluginId: string;
  scopes: PluginTokenScope[];
}

export interface PluginTokenInfo {
  id: string;
  pluginId: string;
  scopes: PluginTokenScope[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

export interface InstallResult {
  plugin: InstalledPlugin;
  /** True when a plugin with this id was installed before (an upgrade or reinstall). */
  upgraded: boolean;
  /** The signing secret: only on the first install (shown once). */
  secret?: string;
}

export interface TenantPlugin {
  tenantId: string;
  pluginId: string;
  enabled: boolean;
  config: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

/** Management operations (REST API, CLI). Every change is audited with `actor`. */
export interface PluginManagement extends PluginDirectory {
  installFromDirectory(dir: string, actor: AuditActor): Promise<InstallResult>;
  installFromPackage(file: string, actor: AuditActor): Promise<InstallResult>;
  list(): Promise<InstalledPlugin[]>;
  /** null when not installed. */
  get(id: string): Promise<InstalledPlugin | null>;
  /** Approves exactly the manifest's current permissions (and the private-address decision). */
  approve(id: string, actor: AuditActor, opts?: { allowPrivate?: boolean }): Promise<InstalledPlugin>;
  /** Refuses (PluginStateError) while permissions are pending. */
  enable(id: string, actor: AuditActor): Promise<InstalledPlugin>;
  disable(id: string, actor: AuditActor): Promise<InstalledPlugin>;
  /** Removes the plugin, its files, tokens, tenant rows, hooks and breaker rows, and its secrets. */
  uninstall(id: string, actor: AuditActor): Promise<void>;
  /** New signing secret (returned once); the previous one stays active for `plugins.secret_overlap_hours`. */
  rotateSecret(id: string, actor: AuditActor): Promise<string>;
  /** Revokes the plugin's tokens with these scopes and issues a new one (returned once). */
  rotateToken(id: string, scopes: PluginTokenScope[], actor: AuditActor): Promise<{ token: string; info: PluginTokenInfo }>;
  listTokens(id: string): Promise<PluginTokenInfo[]>;
  revokeToken(pluginId: string, tokenId: string, actor: AuditActor): Promise<boolean>;
  verifyToken(token: string): Promise<VerifiedPluginToken | null>;
  setTenantPlugin(tenantId: string, pluginId: string, change: { enabled?: boolean; config?: Record<string, unknown> }, actor: AuditActor): Promise<TenantPlugin>;
  listTenantPlugins(tenantId: string): Promise<TenantPlugin[]>;
  logs(pluginId: string, opts?: { limit?: number; before?: number; tenantId?: string }): Promise<PluginLogRecord[]>;
  recordHealth(pluginId: string, ok: boolean, error: string | null): Promise<void>;
}

/** Not installed (→ 404). */
export class PluginNotFoundError extends Error {
  constructor(readonly pluginId: string) {
    super(`plugin ${pluginId} is not installed`);
    this.name = 'PluginNotFoundError';
  }
}

/** The operation does not fit the plugin's state, e.g. enable before approval (→ 409). */
export class PluginStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginStateError';
  }
}

/** The plugin itself is unacceptable: bad manifest, checksum, signature, compat, egress (→ 422). */
export class PluginInstallError extends Error {
  constructor(message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'PluginInstallError';
  }
}
