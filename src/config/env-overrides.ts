/**
 * Environment overrides (SPEC §12): applied on top of the config file, so containers and CI can
 * run without writing a file.
 *
 * Two forms:
 *  - the documented short names in `DOCUMENTED_ENV_VARIABLES` (MAIRUST_DATABASE_URL, …);
 *  - the generic `MAIRUST__<SECTION>__<KEY>[__<SUBKEY>…]`, double underscore between levels, case-
 *    insensitive, reaching any key (`MAIRUST__LISTENERS__SMTP__PORT=25`,
 *    `MAIRUST__PLANS__GOLD__MAX_USERS=50`).
 * The generic form is applied after the short names, so it wins when both name the same key.
 * Values are text; they are converted to the type the schema has at that path. An empty variable
 * counts as unset (shells and compose files often export empty placeholders).
 */
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema, schemaChain } from './schema.js';
import { closest, formatPath, type ConfigIssue } from './validate.js';

export interface EnvVariable {
  /** Variable name, e.g. `MAIRUST_DATABASE_URL`. */
  name: string;
  /** Config key it sets, dotted (`database.url`). */
  path: string;
  description: string;
}

export const GENERIC_ENV_PREFIX = 'MAIRUST__';

/** The short, documented override variables (listed in docs/config.md and the README). */
export const DOCUMENTED_ENV_VARIABLES: readonly EnvVariable[] = [
  { name: 'MAIRUST_DATA_DIR', path: 'server.data_dir', description: 'Data directory of the embedded shape.' },
  { name: 'MAIRUST_DATABASE_URL', path: 'database.url', description: '`sqlite:PATH` or `postgres://user:pass@host:port/db`.' },
  { name: 'MAIRUST_STORAGE_BACKEND', path: 'storage.backend', description: 'Blob store: `fs` or `s3`.' },
  { name: 'MAIRUST_S3_ENDPOINT', path: 'storage.s3.endpoint', description: 'S3-compatible endpoint URL.' },
  { name: 'MAIRUST_S3_BUCKET', path: 'storage.s3.bucket', description: 'S3 bucket.' },
  { name: 'MAIRUST_S3_REGION', path: 'storage.s3.region', description: 'S3 region.' },
  { name: 'MAIRUST_S3_ACCESS_KEY_ID', path: 'storage.s3.access_key_id', description: 'S3 access key id.' },
  { name: 'MAIRUST_S3_SECRET_ACCESS_KEY', path: 'storage.s3.secret_access_key', description: 'S3 secret access key.' },
  { name: 'MAIRUST_MASTER_KEY', path: 'security.master_key', description: 'Base64 32-byte master key for envelope encryption.' },
  { name: 'MAIRUST_LOG_LEVEL', path: 'log.level', description: 'Log level (`info`, `debug`, …).' },
  { name: 'MAIRUST_ADMIN_EMAIL', path: 'security.admin_email', description: 'Bootstrap super-admin address.' },
  { name: 'MAIRUST_ADMIN_PASSWORD', path: 'security.admin_password', description: 'Bootstrap super-admin password.' },
];

/** Variables the loader reads that are not key overrides. */
export const LOADER_ENV_VARIABLES: readonly { name: string; description: string }[] = [
  { name: 'MAIRUST_CONFIG', description: 'Path of the config file (used when `--config` is not given; a missing file is an error).' },
];

export interface EnvOverrideResult {
  /** The config object with overrides applied (a copy; the input is not modified). */
  value: Record<string, unknown>;
  issues: ConfigIssue[];
  /** Dotted paths set from the environment (used to avoid pointing at file lines for them). */
  applied: string[];
}

/** Applies every override found in `env` to a copy of `base`. */
export function applyEnvOverrides(base: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): EnvOverrideResult {
  const value = structuredClone(base);
  const issues: ConfigIssue[] = [];
  const applied: string[] = [];

  const set = (variable: string, path: string[], raw: string) => {
    const coerced = coerceForPath(path, raw);
    if ('error' in coerced) {
      issues.push({ path: formatPath(path), message: `${coerced.error} (environment variable ${variable})` });
      return;
    }
    setIn(value, path, coerced.value);
    applied.push(formatPath(path));
  };

  for (const v of DOCUMENTED_ENV_VARIABLES) {
    const raw = env[v.name];
    if (raw !== undefined && raw !== '') set(v.name, v.path.split('.'), raw);
  }

  // Sorted so the result does not depend on the environment's order (a parent set as JSON, then
  // one of its keys, always applies in the same order).
  const generic = Object.keys(env)
    .filter((name) => name.toUpperCase().startsWith(GENERIC_ENV_PREFIX) && env[name] !== undefined && env[name] !== '')
    .sort();
  for (const name of generic) {
    const segments = name.slice(GENERIC_ENV_PREFIX.length).split('__').map((s) => s.toLowerCase());
    if (segments.some((s) => s === '')) {
      issues.push({ path: '', message: `environment variable ${name}: empty key name (levels are separated by exactly two underscores)` });
      continue;
    }
    const unknown = unknownSegment(segments);
    if (unknown) {
      issues.push({ path: formatPath(segments.slice(0, unknown.index + 1)), message: `${unknown.message} (environment variable ${name})` });
      continue;
    }
    set(name, segments, env[name] as string);
  }
  return { value, issues, applied };
}

/** The first path segment the schema does not know, with a message naming the nearest known key. */
function unknownSegment(segments: string[]): { index: number; message: string } | undefined {
  let schema: TSchema = ConfigSchema;
  for (let i = 0; i < segments.length; i++) {
    if (schema.type === 'array') {
      return { index: i - 1, message: 'is a list; set it as a whole (JSON `[1,2]` or `1,2`), not item by item' };
    }
    const chain = schemaChain([segments[i]], schema);
    if (!chain) {
      const known = Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {});
      const patterns = Object.keys((schema.patternProperties as Record<string, unknown> | undefined) ?? {});
      let message: string;
      if (patterns.length > 0) message = `name '${segments[i]}' is not allowed (must match ${patterns.join(' or ')})`;
      else if (known.length === 0) message = `'${formatPath(segments.slice(0, i))}' has no sub-keys`;
      else {
        const hint = closest(segments[i], known);
        message = hint ? `unknown key '${segments[i]}' (did you mean '${hint}'?)` : `unknown key '${segments[i]}'`;
      }
      return { index: i, message };
    }
    schema = chain[1];
  }
  return undefined;
}

/**
 * Converts text to the type the schema expects at `path`: integers and numbers strictly, booleans
 * from true/false/1/0, lists from JSON (`[25, 587]`) or a comma list (`25,587`), mappings from JSON.
 * Enum and string values stay text (the validator checks them).
 */
export function coerceForPath(path: readonly string[], raw: string): { value: unknown } | { error: string } {
  const chain = schemaChain(path);
  if (!chain) return { error: 'unknown key' };
  return coerce(chain[chain.length - 1], raw);
}

function coerce(schema: TSchema, raw: string): { value: unknown } | { error: string } {
  const text = raw.trim();
  switch (schema.type) {
    case 'integer': {
      if (!/^[+-]?\d+$/.test(text)) return { error: `'${raw}' is not an integer` };
      const n = Number(text);
      if (!Number.isSafeInteger(n)) return { error: `'${raw}' is too large` };
      return { value: n };
    }
    case 'number': {
      const n = Number(text);
      if (text === '' || !Number.isFinite(n)) return { error: `'${raw}' is not a number` };
      return { value: n };
    }
    case 'boolean': {
      const t = text.toLowerCase();
      if (t === 'true' || t === '1') return { value: true };
      if (t === 'false' || t === '0') return { value: false };
      return { error: `'${raw}' is not a boolean (use true, false, 1 or 0)` };
    }
    case 'array': {
      if (text.startsWith('[')) return parseJson(raw, 'array');
      const items = text === '' ? [] : text.split(',').map((s) => s.trim());
      const out: unknown[] = [];
      for (const item of items) {
        const c = schema.items ? coerce(schema.items as TSchema, item) : { value: item };
        if ('error' in c) return { error: `list item ${c.error}` };
        out.push(c.value);
      }
      return { value: out };
    }
    case 'object':
      return parseJson(raw, 'object');
    default:
      return { value: raw };
  }
}

function parseJson(raw: string, want: 'array' | 'object'): { value: unknown } | { error: string } {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (err) {
    return { error: `not valid JSON: ${(err as Error).message}` };
  }
  const ok = want === 'array' ? Array.isArray(v) : v !== null && typeof v === 'object' && !Array.isArray(v);
  return ok ? { value: v } : { error: `JSON value must be ${want === 'array' ? 'a list' : 'a mapping'}` };
}

function setIn(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    // The environment wins over the file even when the file had a wrong non-mapping value here.
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}
