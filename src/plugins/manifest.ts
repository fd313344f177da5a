/**
 * `plugin.toml` (SPEC §7): parsing and validation into a typed manifest. Every problem is
 * reported with the dotted path of the key it concerns, all at once, so a plugin author can fix
 * a manifest in one pass; a TOML syntax error carries its line and column.
 */

import { Buffer } from 'node:buffer';
import { parse as parseToml, TomlError } from 'smol-toml';
import semver from 'semver';
import {
  NO_PERMISSIONS, parsePermissions, type FieldError, type NetworkAccess, type Permissions,
} from './permissions.js';

import { HOOK_TYPES, type HookType } from '../hooks/types.js';
import { compileSafeRegex, FilterPatternError } from '../hooks/filter.js';

export { HOOK_TYPES, type HookType };
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const NETWORK_LEVELS: readonly NetworkAccess[] = ['none', 'allowlist', 'unlimited'];

/** The filter keys of SPEC §6; patterns are compiled (and ReDoS-checked) by src/hooks/filter.ts. */
export interface ManifestHookFilter {
  recipient_matches?: string;
  recipient_not_matches?: string;
  sender_matches?: string;
  sender_not_matches?: string;
  subject_matches?: string;
  has_attachments?: boolean;
  size_gt?: number;
  size_lt?: number;
}
const FILTER_PATTERN_KEYS = [
  'recipient_matches', 'recipient_not_matches', 'sender_matches', 'sender_not_matches', 'subject_matches',
] as const;
/** Same bound as the hook filter's patterns. */
const MAX_PATTERN_LENGTH = 256;

export type ManifestEntry =
  | {
      type: 'hook' | 'service';
      protocol: 'http';
      endpoint: string;
      health_endpoint: string | null;
      callback_api: boolean;
    }
  | {
      type: 'hook' | 'service';
      protocol: 'script';
      command: string[];
      health_cmd: string[] | null;
      callback_api: boolean;
    };

export interface ManifestLimits {
  cpu_ms: number;
  memory_mb: number;
  wall_time_ms: number;
  network: NetworkAccess;
}

export interface PluginManifest {
  id: string;
  name: string;
  version: string;
  author: string | null;
  description: string | null;
  license: string | null;
  homepage: string | null;
  compat: { mairust_min: string | null; mairust_max: string | null };
  entry: ManifestEntry;
  hooks: { on: HookType[]; filter: ManifestHookFilter };
  permissions: Permissions;
  limits: ManifestLimits;
  logging: { level: LogLevel };
}

/** Defaults and bounds of `[limits]`: [default, min, max]. wall_time_ms tops out at post_receive's 300 s. */
export const LIMIT_BOUNDS = {
  cpu_ms: [1000, 10, 300_000],
  // Address space, not RSS: Node.js reserves about 1 GiB before running a line, so the default fits it.
  memory_mb: [2048, 16, 8192],
  wall_time_ms: [5000, 100, 300_000],
} as const;

export interface ManifestIssue extends FieldError {
  /** Set for TOML syntax errors (1-based). */
  line?: number;
  column?: number;
}

export type ManifestResult =
  | { ok: true; manifest: PluginManifest }
  | { ok: false; errors: ManifestIssue[] };

/** Thrown by callers that want an exception (install paths); carries every issue. */
export class ManifestError extends Error {
  constructor(readonly errors: ManifestIssue[]) {
    super(`invalid plugin.toml: ${errors.map(formatIssue).join('; ')}`);
    this.name = 'ManifestError';
  }
}

export function formatIssue(issue: ManifestIssue): string {
  const where = issue.line !== undefined ? `line ${issue.line}, column ${issue.column}: ` : issue.path ? `${issue.path}: ` : '';
  return `${where}${issue.message}`;
}

/** 64 KiB is far more than any real manifest; it keeps a hostile upload from costing much. */
export const MAX_MANIFEST_BYTES = 64 * 1024;

const ID_PATTERN = /^[a-z][a-z0-9-]{0,62}(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
const TOP_KEYS = new Set([
  'id', 'name', 'version', 'author', 'description', 'license', 'homepage',
  'compat', 'entry', 'hooks', 'permissions', 'limits', 'logging',
]);

export function parseManifest(text: string, opts: { mairustVersion: string }): ManifestResult {
  if (Buffer.byteLength(text, 'utf8') > MAX_MANIFEST_BYTES) {
    return { ok: false, errors: [{ path: '', message: `plugin.toml is larger than ${MAX_MANIFEST_BYTES} bytes` }] };
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      // smol-toml's message embeds a code block; the first line is the actual complaint.
      const first = err.message.split('\n')[0].trim();
      return { ok: false, errors: [{ path: '', message: `TOML syntax error: ${first}`, line: err.line, column: err.column }] };
    }
    return { ok: false, errors: [{ path: '', message: `TOML syntax error: ${(err as Error).message}` }] };
  }
  const v = new Validator();
  v.unknownKeys(doc, TOP_KEYS, '');

  const id = v.string(doc, 'id', '', { required: true, max: 100 });
  if (id !== null && !(id.length >= 3 && ID_PATTERN.test(id))) {
    v.error('id', 'must be a lower-case reverse-DNS name such as "com.example.spam-tagger" (3-100 characters)');
  }
  const name = v.string(doc, 'name', '', { required: true, max: 100 });
  const version = v.string(doc, 'version', '', { required: true, max: 64 });
  if (version !== null && semver.valid(version) !== version) {
    v.error('version', `"${version}" is not a semantic version (e.g. "1.2.3")`);
  }
  const author = v.string(doc, 'author', '', { max: 200 });
  const description = v.string(doc, 'description', '', { max: 2000, multiline: true });
  const license = v.string(doc, 'license', '', { max: 100 });
  const homepage = v.string(doc, 'homepage', '', { max: 2048 });
  if (homepage !== null && !isUrl(homepage, ['https:'])) v.error('homepage', 'must be an https:// URL');

  const compat = v.parseCompat(doc.compat, opts.mairustVersion);
  const entry = v.parseEntry(doc.entry);
  // The declared type matters for [hooks] even when another [entry] field is wrong.
  const declared = (doc.entry as Record<string, unknown> | undefined)?.type;
  const hooks = v.parseHooks(doc.hooks, declared === 'hook' || declared === 'service' ? declared : null);

  const perms = parsePermissions(doc.permissions);
  v.errors.push(...perms.errors);

  const limits = v.parseLimits(doc.limits);
  const logging = v.table(doc.logging, 'logging', new Set(['level']));
  const level = logging ? v.oneOf(logging, 'level', 'logging', LOG_LEVELS) : null;

  if (v.errors.length > 0 || id === null || name === null || version === null || entry === null) {
    return { ok: false, errors: v.errors };
  }
  return {
    ok: true,
    manifest: {
      id, name, version, author, description, license, homepage,
      compat,
      entry,
      hooks,
      permissions: perms.errors.length ? { ...NO_PERMISSIONS } : perms.permissions,
      limits,
      logging: { level: level ?? 'info' },
    },
  };
}

/** Reports every problem into one list instead of stopping at the first. */
class Validator {
  readonly errors: ManifestIssue[] = [];

  error(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  unknownKeys(table: Record<string, unknown>, known: Set<string>, prefix: string): void {
    for (const key of Object.keys(table)) {
      if (!known.has(key)) this.error(join(prefix, key), `unknown key '${join(prefix, key)}'`);
    }
  }

  /** A sub-table (absent → null, no error), with its unknown keys reported. */
  table(value: unknown, path: string, known: Set<string>, required = false): Record<string, unknown> | null {
    if (value === undefined) {
      if (required) this.error(path, `missing [${path}] table`);
      return null;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Date) {
      this.error(path, 'must be a table');
      return null;
    }
    const t = value as Record<string, unknown>;
    this.unknownKeys(t, known, path);
    return t;
  }

  string(
    t: Record<string, unknown>, key: string, prefix: string,
    o: { required?: boolean; max: number; multiline?: boolean },
  ): string | null {
    const path = join(prefix, key);
    const value = t[key];
    if (value === undefined) {
      if (o.required) this.error(path, 'is required');
      return null;
    }
    if (typeof value !== 'string') return this.fail(path, 'must be a string');
    if (value.trim() === '') return this.fail(path, 'must not be empty');
    if (value.length > o.max) return this.fail(path, `must be at most ${o.max} characters`);
    const control = o.multiline ? /[\u0000-\u0008\u000b-\u001f\u007f]/ : /[\u0000-\u001f\u007f]/;
    if (control.test(value)) return this.fail(path, 'must not contain control characters');
    return value;
  }

  bool(t: Record<string, unknown>, key: string, prefix: string, fallback: boolean): boolean {
    const value = t[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.error(join(prefix, key), 'must be true or false');
      return fallback;
    }
    return value;
  }

  integer(t: Record<string, unknown>, key: string, prefix: string, min: number, max: number): number | null {
    const value = t[key];
    if (value === undefined) return null;
    if (typeof value !== 'number' || !Number.isInteger(value)) return this.fail(join(prefix, key), 'must be an integer');
    if (value < min || value > max) return this.fail(join(prefix, key), `must be between ${min} and ${max}`);
    return value;
  }

  oneOf<T extends string>(t: Record<string, unknown>, key: string, prefix: string, allowed: readonly T[]): T | null {
    const value = t[key];
    if (value === undefined) return null;
    if (!allowed.includes(value as T)) {
      return this.fail(join(prefix, key), `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
    }
    return value as T;
  }

  command(t: Record<string, unknown>, key: string, prefix: string): string[] | null {
    const value = t[key];
    const path = join(prefix, key);
    if (value === undefined) return null;
    if (!Array.isArray(value) || value.length === 0 || value.length > 64) {
      return this.fail(path, 'must be a non-empty array of at most 64 strings (program and arguments)');
    }
    for (const [i, arg] of value.entries()) {
      if (typeof arg !== 'string') return this.fail(`${path}[${i}]`, 'must be a string');
      if (arg.length > 4096 || arg.includes('\u0000')) return this.fail(`${path}[${i}]`, 'must be at most 4096 characters, without NUL');
    }
    if ((value[0] as string).trim() === '') return this.fail(`${path}[0]`, 'the program must not be empty');
    return value as string[];
  }

  parseCompat(value: unknown, mairustVersion: string): PluginManifest['compat'] {
    const t = this.table(value, 'compat', new Set(['mairust_min', 'mairust_max']));
    const out = { mairust_min: null as string | null, mairust_max: null as string | null };
    if (!t) return out;
    for (const key of ['mairust_min', 'mairust_max'] as const) {
      const v = this.string(t, key, 'compat', { max: 64 });
      if (v === null) continue;
      if (semver.valid(v) !== v) this.error(`compat.${key}`, `"${v}" is not a semantic version (e.g. "0.3.0")`);
      else out[key] = v;
    }
    const { mairust_min: min, mairust_max: max } = out;
    if (min && max && semver.gt(min, max)) {
      this.error('compat', `mairust_min ${min} is greater than mairust_max ${max}`);
      return out;
    }
    // Both bounds are inclusive; prereleases of this MaiRust compare by plain semver order.
    if (min && semver.lt(mairustVersion, min)) {
      this.error('compat.mairust_min', `needs MaiRust >= ${min} (this is ${mairustVersion})`);
    }
    if (max && semver.gt(mairustVersion, max)) {
      this.error('compat.mairust_max', `needs MaiRust <= ${max} (this is ${mairustVersion})`);
    }
    return out;
  }

  parseEntry(value: unknown): ManifestEntry | null {
    const t = this.table(value, 'entry', new Set([
      'type', 'protocol', 'endpoint', 'command', 'health_endpoint', 'health_cmd', 'callback_api',
    ]), true);
    if (!t) return null;
    const before = this.errors.length;
    const type = this.oneOf(t, 'type', 'entry', ['hook', 'service'] as const);
    const protocol = this.oneOf(t, 'protocol', 'entry', ['http', 'script'] as const);
    if (t.type === undefined) this.error('entry.type', 'is required ("hook" or "service")');
    if (t.protocol === undefined) this.error('entry.protocol', 'is required ("http" or "script")');
    const callbackApi = this.bool(t, 'callback_api', 'entry', false);
    if (protocol === 'http') {
      for (const key of ['command', 'health_cmd']) {
        if (t[key] !== undefined) this.error(`entry.${key}`, `is only for protocol = "script"`);
      }
      const endpoint = this.url(t, 'endpoint', true);
      const health = this.url(t, 'health_endpoint', false);
      if (this.errors.length > before || !type || !endpoint) return null;
      return { type, protocol, endpoint, health_endpoint: health, callback_api: callbackApi };
    }
    if (protocol === 'script') {
      for (const key of ['endpoint', 'health_endpoint']) {
        if (t[key] !== undefined) this.error(`entry.${key}`, `is only for protocol = "http"`);
      }
      const command = this.command(t, 'command', 'entry');
      if (t.command === undefined) this.error('entry.command', 'is required for protocol = "script"');
      const health = this.command(t, 'health_cmd', 'entry');
      if (this.errors.length > before || !type || !command) return null;
      return { type, protocol, command, health_cmd: health, callback_api: callbackApi };
    }
    return null;
  }

  private url(t: Record<string, unknown>, key: string, required: boolean): string | null {
    const path = `entry.${key}`;
    if (t[key] === undefined) {
      if (required) this.error(path, 'is required for protocol = "http"');
      return null;
    }
    const v = this.string(t, key, 'entry', { max: 2048 });
    if (v === null) return null;
    // Whether the host is allowed (egress allowlist, private addresses) is decided at call time.
    if (!isUrl(v, ['http:', 'https:'])) return this.fail(path, 'must be an http:// or https:// URL');
    return v;
  }

  parseHooks(value: unknown, entryType: 'hook' | 'service' | null): PluginManifest['hooks'] {
    const out: PluginManifest['hooks'] = { on: [], filter: {} };
    const t = this.table(value, 'hooks', new Set([
      'on', ...FILTER_PATTERN_KEYS, 'has_attachments', 'size_gt', 'size_lt',
    ]));
    if (!t) {
      if (entryType === 'hook') this.error('hooks.on', 'a plugin with entry.type = "hook" must list its hooks');
      return out;
    }
    const on = t.on;
    if (on === undefined) {
      if (entryType === 'hook') this.error('hooks.on', 'a plugin with entry.type = "hook" must list its hooks');
    } else if (!Array.isArray(on)) {
      this.error('hooks.on', `must be an array of ${HOOK_TYPES.join(', ')}`);
    } else {
      for (const [i, hook] of on.entries()) {
        if (!HOOK_TYPES.includes(hook as HookType)) {
          this.error(`hooks.on[${i}]`, `unknown hook ${JSON.stringify(hook)} (expected ${HOOK_TYPES.join(', ')})`);
        } else if (out.on.includes(hook as HookType)) {
          this.error(`hooks.on[${i}]`, `hook "${hook}" is listed twice`);
        } else out.on.push(hook as HookType);
      }
      if (on.length === 0 && entryType === 'hook') this.error('hooks.on', 'must list at least one hook');
    }
    for (const key of FILTER_PATTERN_KEYS) {
      const pattern = this.string(t, key, 'hooks', { max: MAX_PATTERN_LENGTH });
      if (pattern === null) continue;
      try {
        // The same bounded, ReDoS-checked compilation as hook filters from the API (SPEC §6).
        compileSafeRegex(pattern, `hooks.${key}`);
        out.filter[key] = pattern;
      } catch (err) {
        this.error(`hooks.${key}`, err instanceof FilterPatternError ? err.reason : `invalid regular expression: ${(err as Error).message}`);
      }
    }
    if (t.has_attachments !== undefined) out.filter.has_attachments = this.bool(t, 'has_attachments', 'hooks', false);
    const max = Number.MAX_SAFE_INTEGER;
    const gt = this.integer(t, 'size_gt', 'hooks', 0, max);
    const lt = this.integer(t, 'size_lt', 'hooks', 0, max);
    if (gt !== null) out.filter.size_gt = gt;
    if (lt !== null) out.filter.size_lt = lt;
    if (gt !== null && lt !== null && gt >= lt) this.error('hooks', `size_gt (${gt}) must be less than size_lt (${lt})`);
    return out;
  }

  parseLimits(value: unknown): ManifestLimits {
    const limits: ManifestLimits = {
      cpu_ms: LIMIT_BOUNDS.cpu_ms[0],
      memory_mb: LIMIT_BOUNDS.memory_mb[0],
      wall_time_ms: LIMIT_BOUNDS.wall_time_ms[0],
      network: 'none',
    };
    const t = this.table(value, 'limits', new Set(['cpu_ms', 'memory_mb', 'wall_time_ms', 'network']));
    if (!t) return limits;
    for (const key of ['cpu_ms', 'memory_mb', 'wall_time_ms'] as const) {
      const [, min, max] = LIMIT_BOUNDS[key];
      const v = this.integer(t, key, 'limits', min, max);
      if (v !== null) limits[key] = v;
    }
    limits.network = this.oneOf(t, 'network', 'limits', NETWORK_LEVELS) ?? 'none';
    return limits;
  }

  private fail(path: string, message: string): null {
    this.error(path, message);
    return null;
  }
}

function join(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key;
}

function isUrl(value: string, protocols: string[]): boolean {
  try {
    const u = new URL(value);
    return protocols.includes(u.protocol) && u.hostname !== '' && u.username === '' && u.password === '';
  } catch {
    return false;
  }
}
