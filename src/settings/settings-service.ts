/**
 * Reloadable settings changed through the API (SPEC §11 `admin/settings`, §12 hot reload).
 *
 * The configuration file (plus environment overrides) is the *base*; a super-admin may override
 * the keys the config schema marks `x-reloadable` — and only those — through
 * `PATCH /api/v1/admin/settings`. Overrides are stored in the `settings` table (one row per dotted
 * key, value as JSON), so they survive restarts (`applyStoredOverrides` at start-up) and are shared
 * by every node of a cluster: each node polls the table (`startSync`, every 2 s — the table holds a
 * few dozen rows at most) and applies what changed, the same way a SIGHUP reload would.
 *
 * A value is validated the only way config is ever validated: the base with every override applied
 * goes through the config schema (`validateConfigObject`, Ajv over the TypeBox schema), so the
 * cross-key rules (e.g. `default_plan` must name a plan) hold for API changes too. Keys the schema
 * marks `x-secret` are never listed with their value and cannot be set here: the settings table is
 * not encrypted, and secrets belong in the file or in `env:`/`file:` references.
 *
 * Setting a key to `null` removes its override (the file's value applies again).
 */
import type { TSchema } from '@sinclair/typebox';
import type { AppContext } from '../app/context.js';
import { ConfigSchema, type Config } from '../config/schema.js';
import { diffConfig } from '../config/reload.js';
import { validateConfigObject } from '../config/validate.js';
import { setLogLevel } from '../observability/logger.js';
import { ValidationError } from '../core/tenancy/errors.js';
import { writeAudit, type AuditActor } from '../security/audit.js';

export interface SettingInfo {
  key: string;
  /** Value in force on this node (null for secrets). */
  value: unknown;
  /** The schema's default (null for secrets and keys without one). */
  default: unknown;
  description: string;
  /** Whether an API override is stored for the key. */
  overridden: boolean;
  secret: boolean;
  updatedAt: number | null;
  /** Id of the user who stored the override. */
  updatedBy: string | null;
}

interface KeyInfo {
  key: string;
  path: string[];
  schema: TSchema;
  secret: boolean;
}

interface Override {
  value: unknown;
  updatedAt: number;
  updatedBy: string | null;
}

/** Applies a new effective configuration to the running process. */
export type ApplyConfig = (app: AppContext, next: Config, changedKeys: readonly string[]) => void | Promise<void>;

export const MAX_KEYS_PER_UPDATE = 50;
export const DEFAULT_SYNC_INTERVAL_MS = 2000;

function containsSecret(schema: TSchema): boolean {
  if (schema['x-secret'] === true) return true;
  const children: TSchema[] = [
    ...Object.values((schema.properties as Record<string, TSchema> | undefined) ?? {}),
    ...Object.values((schema.patternProperties as Record<string, TSchema> | undefined) ?? {}),
    ...(schema.items && !Array.isArray(schema.items) ? [schema.items as TSchema] : []),
    ...(((schema.anyOf as TSchema[] | undefined) ?? []) as TSchema[]),
  ];
  return children.some(containsSecret);
}

/**
 * Every settable key: the outermost schema nodes marked `x-reloadable`, in schema order. A marked
 * subtree (such as `plans`) is one key whose value is the whole subtree.
 */
export function reloadableKeys(schema: TSchema = ConfigSchema, path: string[] = []): KeyInfo[] {
  if (path.length > 0 && schema['x-reloadable'] === true) {
    return [{ key: path.join('.'), path, schema, secret: containsSecret(schema) }];
  }
  if (schema.type !== 'object' || !schema.properties) return [];
  const out: KeyInfo[] = [];
  for (const [k, s] of Object.entries(schema.properties as Record<string, TSchema>)) out.push(...reloadableKeys(s, [...path, k]));
  return out;
}

const KEYS: readonly KeyInfo[] = reloadableKeys();
const KEY_BY_NAME = new Map(KEYS.map((k) => [k.key, k]));

function getPath(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const p of path) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const p of path.slice(0, -1)) {
    if (cur[p] === null || typeof cur[p] !== 'object') cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = structuredClone(value);
}

/**
 * The default way to apply a configuration: the same effects as a SIGHUP reload for the keys that
 * need more than a new config object (log level, queue timings); everything else reads
 * `app.config` when it runs.
 */
export const applyToApp: ApplyConfig = (app, next, changed) => {
  if (changed.includes('log.level')) setLogLevel(app.logger, next.log.level);
  if (changed.some((k) => k.startsWith('queue.'))) {
    app.queue.setOptions({
      pollIntervalMs: next.queue.poll_interval_ms,
      defaultBackoffSeconds: next.queue.default_backoff_seconds,
      defaultMaxAttempts: next.queue.default_max_attempts,
    });
  }
  app.updateConfig(next);
};

export class SettingsService {
  /** The configuration without API overrides (file + environment). */
  private base: Config;
  private overrides = new Map<string, Override>();
  private fingerprint = '';
  private readonly apply: ApplyConfig;

  constructor(
    private readonly app: AppContext,
    opts: { apply?: ApplyConfig } = {},
  ) {
    this.base = structuredClone(app.config);
    this.apply = opts.apply ?? applyToApp;
  }

  /** Every reloadable key with its value in force, default and description. */
  async list(): Promise<SettingInfo[]> {
    await this.refresh();
    const config = this.app.config;
    return KEYS.map((k) => {
      const o = this.overrides.get(k.key);
      const def = k.schema.default;
      return {
        key: k.key,
        value: k.secret ? null : (getPath(config, k.path) ?? null),
        default: k.secret || def === undefined ? null : structuredClone(def),
        description: typeof k.schema.description === 'string' ? k.schema.description : '',
        overridden: o !== undefined,
        secret: k.secret,
        updatedAt: o?.updatedAt ?? null,
        updatedBy: o?.updatedBy ?? null,
      };
    });
  }

  /**
   * Stores and applies overrides: `patch` maps dotted keys to values (`null` = remove the override).
   * Throws ValidationError (422) for keys that are not reloadable or are secrets (`details.keys`)
   * and for values the config schema refuses (`details.errors`). Audited as `settings.updated`.
   * Returns the keys whose effective value changed.
   */
  async update(patch: Record<string, unknown>, actor: AuditActor): Promise<string[]> {
    const keys = Object.keys(patch);
    if (keys.length === 0) throw new ValidationError('no settings given', { keys: [] });
    if (keys.length > MAX_KEYS_PER_UPDATE) {
      throw new ValidationError(`at most ${MAX_KEYS_PER_UPDATE} settings per request`, { max: MAX_KEYS_PER_UPDATE, count: keys.length });
    }
    const refused = keys.filter((k) => !KEY_BY_NAME.has(k)).sort();
    if (refused.length) {
      throw new ValidationError(
        `not reloadable: ${refused.join(', ')} (GET /api/v1/admin/settings lists the keys that can be changed at run time; a subtree such as "plans" is set as a whole; every other key needs the configuration file and a restart)`,
        { keys: refused },
      );
    }
    const secrets = keys.filter((k) => KEY_BY_NAME.get(k)!.secret).sort();
    if (secrets.length) {
      throw new ValidationError(`secrets cannot be set through the API: ${secrets.join(', ')}`, { keys: secrets });
    }

    await this.refresh();
    const candidate = new Map([...this.overrides].map(([k, o]) => [k, o.value]));
    for (const k of keys) {
      if (patch[k] === null) candidate.delete(k);
      else candidate.set(k, patch[k]);
    }
    const { config: next, issues } = this.effective(candidate);
    if (!next) {
      throw new ValidationError('invalid setting value', { errors: issues.map((i) => ({ path: i.path, message: i.message })) });
    }

    const before = this.app.config;
    const changes = keys.map((k) => {
      const path = KEY_BY_NAME.get(k)!.path;
      return { key: k, from: getPath(before, path) ?? null, to: getPath(next, path) ?? null, override_removed: patch[k] === null };
    });
    const t = Date.now();
    const updatedBy = actor.id ?? null;
    await this.app.db.kysely.transaction().execute(async (trx) => {
      for (const k of keys) {
        if (patch[k] === null) {
          await trx.deleteFrom('settings').where('key', '=', k).execute();
        } else {
          const row = { key: k, value_json: JSON.stringify(patch[k]), updated_at: t, updated_by: updatedBy };
          await trx
            .insertInto('settings')
            .values(row)
            .onConflict((oc) => oc.column('key').doUpdateSet({ value_json: row.value_json, updated_at: t, updated_by: updatedBy }))
            .execute();
        }
      }
      // An array of {key, from, to}: audit metadata redacts secret-looking *object keys*, and
      // setting names such as `…per_token…` would otherwise be mistaken for secrets.
      await writeAudit(trx, { tenantId: null, eventType: 'settings.updated', actor, target: { type: 'settings', id: 'config' }, metadata: { changes } });
    });
    await this.refresh(true);
    return diffConfig(before, this.app.config).changed;
  }

  /**
   * Re-reads the stored overrides and applies them when they changed since the last call (or
   * always with `force`). Returns whether a new configuration was applied.
   */
  async refresh(force = false): Promise<boolean> {
    const rows = await this.app.db.kysely.selectFrom('settings').selectAll().orderBy('key').execute();
    const fp = JSON.stringify(rows.map((r) => [r.key, r.value_json, Number(r.updated_at), r.updated_by]));
    if (!force && fp === this.fingerprint) return false;
    const log = this.app.logger.child({ component: 'settings' });
    const stored = new Map<string, Override>();
    for (const r of rows) {
      const info = KEY_BY_NAME.get(r.key);
      // A key that stopped being reloadable (or secret) after an upgrade is ignored, not applied.
      if (!info || info.secret) {
        log.warn({ key: r.key }, 'stored setting is not a reloadable key any more; ignored');
        continue;
      }
      try {
        stored.set(r.key, { value: JSON.parse(r.value_json), updatedAt: Number(r.updated_at), updatedBy: r.updated_by });
      } catch {
        log.warn({ key: r.key }, 'stored setting is not valid JSON; ignored');
      }
    }
    let { config: next, issues } = this.effective(new Map([...stored].map(([k, o]) => [k, o.value])));
    if (!next) {
      // Keep what is valid: drop the overrides the issues point at and try once more.
      const bad = [...stored.keys()].filter((k) => issues.some((i) => i.path === k || i.path.startsWith(`${k}.`) || i.path.startsWith(`${k}[`)));
      log.warn({ keys: bad, issues }, 'stored settings fail validation; ignored');
      for (const k of bad) stored.delete(k);
      ({ config: next, issues } = this.effective(new Map([...stored].map(([k, o]) => [k, o.value]))));
      if (!next) {
        log.error({ issues }, 'stored settings fail validation; keeping the running configuration');
        this.fingerprint = fp;
        return false;
      }
    }
    this.overrides = stored;
    this.fingerprint = fp;
    const changed = diffConfig(this.app.config, next).changed;
    if (changed.length) {
      await this.apply(this.app, next, changed);
      log.info({ keys: changed }, 'settings applied');
    }
    return changed.length > 0;
  }

  /**
   * After a SIGHUP reload replaced the file configuration: `config` is the new base (the running
   * configuration with the file's reloadable values); the stored overrides are applied over it again.
   */
  async rebase(config: Config): Promise<void> {
    this.base = structuredClone(config);
    await this.refresh(true);
  }

  /** Polls the table so that changes made on another node apply here; returns the stop function. */
  startSync(intervalMs = DEFAULT_SYNC_INTERVAL_MS): () => void {
    let failing = false;
    const log = this.app.logger.child({ component: 'settings' });
    const timer = setInterval(() => {
      this.refresh().then(
        () => {
          failing = false;
        },
        (err) => {
          if (!failing) log.warn({ err: { message: (err as Error).message } }, 'could not read stored settings; retrying');
          failing = true;
        },
      );
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** The base with `overrides` applied, validated (defaults filled). */
  private effective(overrides: Map<string, unknown>) {
    const raw = structuredClone(this.base) as unknown as Record<string, unknown>;
    for (const [k, v] of overrides) setPath(raw, KEY_BY_NAME.get(k)!.path, v);
    return validateConfigObject(raw);
  }
}

const services = new WeakMap<AppContext, SettingsService>();

/**
 * The one SettingsService of an application context (created on first use; its base is the
 * configuration in force then, so create it before any override is applied — `applyStoredOverrides`
 * at start-up does).
 */
export function settingsFor(app: AppContext, opts: { apply?: ApplyConfig } = {}): SettingsService {
  let s = services.get(app);
  if (!s) {
    s = new SettingsService(app, opts);
    services.set(app, s);
  }
  return s;
}

/** Start-up: applies the overrides stored by earlier API changes (or by another node). */
export async function applyStoredOverrides(app: AppContext, opts: { apply?: ApplyConfig } = {}): Promise<SettingsService> {
  const s = settingsFor(app, opts);
  await s.refresh(true);
  return s;
}
