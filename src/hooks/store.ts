/**
 * Where hooks come from (SPEC §6 "Management"): hooks created through the REST API, stored in the
 * `hooks` table (migration 0011; the whole validated config in `config_json`), and hooks written in
 * the config file (`hooks.definitions`, reloadable, SPEC §12), which the API shows but cannot
 * change. Ids are unique across both, so an id always names one hook in logs, metrics and breakers.
 *
 * Reads are cached for at most READ_CACHE_MS per process (every message runs `active()` for up to
 * four hook types; a change made on another node is seen within that time), and the cache is
 * dropped at once on a change made here. The config file's array is validated once per array
 * identity: a reload replaces the array, which re-validates it.
 */
import type { Kysely } from 'kysely';
import { now as dbNow, type Database } from '../store/db/database.js';
import type { DB, HooksTable } from '../store/db/types.js';
import { writeAudit, type AuditActor } from '../security/audit.js';
import { orderHooks, validateHookConfig } from './config.js';
import {
  HookConflictError,
  HookReadOnlyError,
  HookValidationError,
  type HookManagement,
  type StoredHook,
} from './runtime-types.js';
import type { HookConfig, HookType } from './types.js';

/** How stale a read may be on this node (changes made here clear the cache at once). */
export const READ_CACHE_MS = 2_000;

export interface HookStoreLogger {
  warn(obj: object, msg: string): void;
}

export interface HookStoreDeps {
  db: Database;
  /** The live config (its `hooks.definitions` array is replaced on reload). */
  config: () => { hooks: { definitions: readonly unknown[] } };
  /** Whether a plugin with this id is installed (the registry); a hook must name one. */
  pluginExists(pluginId: string): Promise<boolean>;
  logger: HookStoreLogger;
  now?: () => number;
}

interface ListFilter {
  tenantId?: string | null;
  type?: HookType;
  pluginId?: string;
}

function sortForListing(hooks: StoredHook[]): StoredHook[] {
  return hooks.sort((a, b) => a.priority - b.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The stored config as a plain HookConfig (no source/timestamps), for `config_json`. */
function configOnly(hook: HookConfig): HookConfig {
  const out: HookConfig = {
    id: hook.id,
    type: hook.type,
    plugin_id: hook.plugin_id,
    enabled: hook.enabled,
    priority: hook.priority,
    timeout_ms: hook.timeout_ms,
    on_timeout: hook.on_timeout,
    on_error: hook.on_error,
    required: hook.required,
    requires_before_policy: hook.requires_before_policy,
    circuit_breaker: { on_open: hook.circuit_breaker.on_open },
    tenant_id: hook.tenant_id,
  };
  if (hook.filter) out.filter = hook.filter;
  if (hook.retry) out.retry = hook.retry;
  return out;
}

/**
 * What a hook config as accepted by the API looks like when read back: the validated form, with
 * `requires_before_policy` only on pre_send (validateHookConfig refuses it elsewhere, so a stored
 * config re-validated must not carry the filled-in `false`).
 */
function asInput(hook: HookConfig): Record<string, unknown> {
  const c = configOnly(hook) as unknown as Record<string, unknown>;
  if (hook.type !== 'pre_send') delete c.requires_before_policy;
  return c;
}

export class HookStore implements HookManagement {
  private readonly now: () => number;
  private apiCache: { at: number; hooks: StoredHook[] } | null = null;
  private configCache: { source: readonly unknown[]; hooks: StoredHook[] } | null = null;

  constructor(private readonly deps: HookStoreDeps) {
    this.now = deps.now ?? dbNow;
  }

  private get kysely(): Kysely<DB> {
    return this.deps.db.kysely;
  }

  /** Drops this node's read cache (after a change here; tests). */
  invalidate(): void {
    this.apiCache = null;
  }

  // ── Reading ──────────────────────────────────────────────────────────────────────────────────

  private configHooks(): StoredHook[] {
    const defs = this.deps.config().hooks.definitions;
    if (this.configCache && this.configCache.source === defs) return this.configCache.hooks;
    const hooks: StoredHook[] = [];
    const seen = new Set<string>();
    defs.forEach((def, index) => {
      const result = validateHookConfig(def);
      if (!result.ok) {
        this.deps.logger.warn({ index, errors: result.errors }, 'hooks.definitions: invalid hook skipped');
        return;
      }
      if (seen.has(result.config.id)) {
        this.deps.logger.warn({ index, hookId: result.config.id }, 'hooks.definitions: duplicate hook id skipped');
        return;
      }
      seen.add(result.config.id);
      hooks.push({ ...result.config, source: 'config', createdAt: null, updatedAt: null });
    });
    this.configCache = { source: defs, hooks };
    return hooks;
  }

  private rowToHook(row: HooksTable): StoredHook | null {
    let parsed: unknown;
    try {
      parsed = JSON.parse(row.config_json);
    } catch {
      parsed = null;
    }
    // Re-validated on read: a row written by an older version gets today's defaults, and a damaged
    // row is skipped (logged) rather than breaking every message's hook chain.
    const input = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? { ...(parsed as Record<string, unknown>) } : parsed;
    if (input && typeof input === 'object' && (input as Record<string, unknown>).type !== 'pre_send') {
      delete (input as Record<string, unknown>).requires_before_policy;
    }
    const result = validateHookConfig(input);
    if (!result.ok || result.config.id !== row.id) {
      this.deps.logger.warn({ hookId: row.id, errors: result.ok ? [{ path: 'id', message: 'does not match the row' }] : result.errors }, 'stored hook is invalid; skipped');
      return null;
    }
    return { ...result.config, source: 'api', createdAt: Number(row.created_at), updatedAt: Number(row.updated_at) };
  }

  private async apiHooks(): Promise<StoredHook[]> {
    const t = this.now();
    if (this.apiCache && t - this.apiCache.at < READ_CACHE_MS && t >= this.apiCache.at) return this.apiCache.hooks;
    const rows = await this.kysely.selectFrom('hooks').selectAll().execute();
    const hooks: StoredHook[] = [];
    for (const row of rows) {
      const hook = this.rowToHook(row);
      if (hook) hooks.push(hook);
    }
    this.apiCache = { at: t, hooks };
    return hooks;
  }

  /** API and config hooks; a config hook whose id an API hook already has is left out (logged once per config array). */
  private async all(): Promise<StoredHook[]> {
    const api = await this.apiHooks();
    const ids = new Set(api.map((h) => h.id));
    const merged = [...api];
    for (const h of this.configHooks()) {
      if (ids.has(h.id)) {
        this.warnShadowed(h.id);
        continue;
      }
      merged.push(h);
    }
    return merged;
  }

  private shadowWarned = new WeakMap<readonly unknown[], Set<string>>();
  private warnShadowed(id: string): void {
    const defs = this.deps.config().hooks.definitions;
    let set = this.shadowWarned.get(defs);
    if (!set) this.shadowWarned.set(defs, (set = new Set()));
    if (set.has(id)) return;
    set.add(id);
    this.deps.logger.warn({ hookId: id }, 'hooks.definitions: an API hook already has this id; the config hook is ignored');
  }

  async active(type: HookType, tenantIds: readonly string[]): Promise<StoredHook[]> {
    const tenants = new Set(tenantIds);
    const hooks = (await this.all()).filter((h) => h.type === type && (h.tenant_id === null || tenants.has(h.tenant_id)));
    return orderHooks(hooks);
  }

  async get(id: string): Promise<StoredHook | null> {
    return (await this.all()).find((h) => h.id === id) ?? null;
  }

  async list(filter: ListFilter = {}): Promise<StoredHook[]> {
    const hooks = (await this.all()).filter(
      (h) =>
        (filter.tenantId === undefined || h.tenant_id === filter.tenantId) &&
        (filter.type === undefined || h.type === filter.type) &&
        (filter.pluginId === undefined || h.plugin_id === filter.pluginId),
    );
    return sortForListing(hooks);
  }

  // ── Changing API hooks ──────────────────────────────────────────────────────────────────────

  private async validate(input: unknown): Promise<HookConfig> {
    const result = validateHookConfig(input);
    if (!result.ok) throw new HookValidationError(result.errors);
    if (!(await this.deps.pluginExists(result.config.plugin_id))) {
      throw new HookValidationError([{ path: 'plugin_id', message: `plugin ${result.config.plugin_id} is not installed` }]);
    }
    return result.config;
  }

  private isConfigHook(id: string): boolean {
    return this.configHooks().some((h) => h.id === id);
  }

  async create(input: unknown, actor: AuditActor): Promise<StoredHook> {
    const config = await this.validate(input);
    if (this.isConfigHook(config.id)) throw new HookConflictError(`hook id ${config.id} is taken by a hook of the config file`);
    const t = this.now();
    try {
      await this.kysely.transaction().execute(async (trx) => {
        const existing = await trx.selectFrom('hooks').select('id').where('id', '=', config.id).executeTakeFirst();
        if (existing) throw new HookConflictError(`hook id ${config.id} is taken`);
        await trx
          .insertInto('hooks')
          .values({
            id: config.id,
            tenant_id: config.tenant_id,
            type: config.type,
            plugin_id: config.plugin_id,
            config_json: JSON.stringify(asInput(config)),
            created_at: t,
            updated_at: t,
          })
          .execute();
        await writeAudit(trx, {
          tenantId: config.tenant_id,
          eventType: 'hook.created',
          actor,
          target: { type: 'hook', id: config.id },
          metadata: { type: config.type, plugin_id: config.plugin_id, enabled: config.enabled, priority: config.priority },
        });
      });
    } catch (err) {
      if (err instanceof HookConflictError) throw err;
      // Two nodes creating the same id at once: the primary key decides, the loser gets a conflict.
      if (await this.kysely.selectFrom('hooks').select('id').where('id', '=', config.id).executeTakeFirst()) {
        throw new HookConflictError(`hook id ${config.id} is taken`);
      }
      throw err;
    } finally {
      this.invalidate();
    }
    return { ...config, source: 'api', createdAt: t, updatedAt: t };
  }

  async update(id: string, input: unknown, actor: AuditActor): Promise<StoredHook> {
    if (!(await this.apiRow(id))) throw this.isConfigHook(id) ? new HookReadOnlyError(id) : new HookNotFoundError(id);
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      throw new HookValidationError([{ path: '', message: 'a hook config must be an object' }]);
    }
    // PUT replaces the whole config; the id comes from the path and cannot change.
    const body = { ...(input as Record<string, unknown>) };
    if (body.id !== undefined && body.id !== id) throw new HookValidationError([{ path: 'id', message: `cannot change a hook's id (${id})` }]);
    body.id = id;
    const config = await this.validate(body);
    const t = this.now();
    let created: number | null = null;
    try {
      await this.kysely.transaction().execute(async (trx) => {
        const row = await trx.selectFrom('hooks').selectAll().where('id', '=', id).executeTakeFirst();
        if (!row) throw new HookNotFoundError(id);
        created = Number(row.created_at);
        await trx
          .updateTable('hooks')
          .set({ tenant_id: config.tenant_id, type: config.type, plugin_id: config.plugin_id, config_json: JSON.stringify(asInput(config)), updated_at: t })
          .where('id', '=', id)
          .execute();
        if (row.plugin_id !== config.plugin_id) {
          // The breaker belongs to the (hook, plugin) pair; the old pair no longer exists.
          await trx.deleteFrom('hook_breakers').where('hook_id', '=', id).where('plugin_id', '=', row.plugin_id).execute();
        }
        const before = this.rowToHook(row);
        await writeAudit(trx, {
          tenantId: config.tenant_id,
          eventType: 'hook.updated',
          actor,
          target: { type: 'hook', id },
          metadata: { type: config.type, plugin_id: config.plugin_id, changed: before ? changedFields(before, config) : ['*'] },
        });
      });
    } finally {
      this.invalidate();
    }
    return { ...config, source: 'api', createdAt: created, updatedAt: t };
  }

  async delete(id: string, actor: AuditActor): Promise<boolean> {
    if (this.isConfigHook(id) && !(await this.apiRow(id))) throw new HookReadOnlyError(id);
    try {
      return await this.kysely.transaction().execute(async (trx) => {
        const row = await trx.selectFrom('hooks').selectAll().where('id', '=', id).executeTakeFirst();
        if (!row) return false;
        await trx.deleteFrom('hooks').where('id', '=', id).execute();
        await trx.deleteFrom('hook_breakers').where('hook_id', '=', id).execute();
        await writeAudit(trx, {
          tenantId: row.tenant_id,
          eventType: 'hook.deleted',
          actor,
          target: { type: 'hook', id },
          metadata: { type: row.type, plugin_id: row.plugin_id },
        });
        return true;
      });
    } finally {
      this.invalidate();
    }
  }

  private async apiRow(id: string): Promise<boolean> {
    return (await this.kysely.selectFrom('hooks').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }
}

/** update() of an id that is neither an API nor a config hook (→ 404). */
export class HookNotFoundError extends Error {
  constructor(readonly hookId: string) {
    super(`hook ${hookId} does not exist`);
    this.name = 'HookNotFoundError';
  }
}

/** Names of the top-level fields that differ (for the audit row; values may be long regexes). */
function changedFields(before: HookConfig, after: HookConfig): string[] {
  const a = asInput(before);
  const b = asInput(after);
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}
