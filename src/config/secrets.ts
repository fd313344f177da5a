/**
 * Secret references and redaction.
 *
 * Any string value may be written as `env:NAME` (taken from the environment) or `file:/path`
 * (taken from a file, e.g. a Docker/Kubernetes secret mount), so secrets never need to sit in the
 * config file itself (SPEC §2 "Config schema"). References are resolved before validation, so
 * the resolved value is what gets type-checked.
 *
 * `redactConfig` is the only way config is printed or logged: every `x-secret` value becomes
 * `***`, and a password inside any URL (`postgres://user:pass@host/db`) is masked.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema, type Config } from './schema.js';
import { formatPath, type ConfigIssue } from './validate.js';

export const REDACTED = '***';

/** Largest secret file read; a secret is a key or password, not a data file. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

export interface ResolveSecretsOptions {
  env?: NodeJS.ProcessEnv;
  /** Base for relative `file:` paths (default: process.cwd()). */
  cwd?: string;
  /**
   * Called with each resolved value so it can be converted to the type the schema expects at that
   * path (e.g. `port: env:SMTP_PORT` must end up an integer). Returns the value or an issue message.
   */
  coerce?: (path: string[], raw: string) => { value: unknown } | { error: string };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Returns a copy of `value` with every `env:`/`file:` string replaced, plus one issue per failure. */
export function resolveSecrets(value: unknown, opts: ResolveSecretsOptions = {}): { value: unknown; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();

  const walk = (v: unknown, path: string[]): unknown => {
    if (typeof v === 'string') {
      const resolved = resolveOne(v, env, cwd);
      if (resolved === undefined) return v;
      if ('error' in resolved) {
        issues.push({ path: formatPath(path), message: resolved.error });
        return v;
      }
      if (!opts.coerce) return resolved.value;
      const coerced = opts.coerce(path, resolved.value);
      if ('error' in coerced) {
        issues.push({ path: formatPath(path), message: `${coerced.error} (from ${v.startsWith('env:') ? v : 'file ' + v.slice(5)})` });
        return v;
      }
      return coerced.value;
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, String(i)]));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, child] of Object.entries(v)) out[k] = walk(child, [...path, k]);
      return out;
    }
    return v;
  };

  return { value: walk(value, []), issues };
}

/** undefined = not a reference; otherwise the resolved text or why it could not be resolved. */
function resolveOne(text: string, env: NodeJS.ProcessEnv, cwd: string): { value: string } | { error: string } | undefined {
  if (text.startsWith('env:')) {
    const name = text.slice(4);
    if (!ENV_NAME.test(name)) return { error: `'${text}' is not a valid environment variable reference (env:NAME, NAME = letters, digits, _)` };
    const v = env[name];
    if (v === undefined) return { error: `environment variable ${name} is not set` };
    return { value: v };
  }
  if (text.startsWith('file:')) {
    const raw = text.slice(5);
    if (raw === '') return { error: "'file:' needs a path (file:/path/to/secret)" };
    const path = isAbsolute(raw) ? raw : resolve(cwd, raw);
    let content: Buffer;
    try {
      content = readFileSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? String(err)})`;
      return { error: `secret file ${path} ${why}` };
    }
    if (content.length > MAX_SECRET_FILE_BYTES) {
      return { error: `secret file ${path} is ${content.length} bytes; the limit is ${MAX_SECRET_FILE_BYTES}` };
    }
    // Editors and `echo` add one final newline; it is never part of the secret.
    return { value: content.toString('utf8').replace(/\r?\n$/, '') };
  }
  return undefined;
}

/** A deep copy of `config` that is safe to print or log. */
export function redactConfig(config: Config | Record<string, unknown>): Record<string, unknown> {
  return redactWith(config, ConfigSchema) as Record<string, unknown>;
}

function redactWith(value: unknown, schema: TSchema | undefined): unknown {
  if (typeof value === 'string') {
    if (schema?.['x-secret'] === true) return redactSecret(value);
    return maskUrlPassword(value);
  }
  if (Array.isArray(value)) return value.map((v) => redactWith(v, schema?.items as TSchema | undefined));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactWith(v, schema && childOf(schema, k));
    return out;
  }
  return value;
}

function childOf(schema: TSchema, key: string): TSchema | undefined {
  const props = schema.properties as Record<string, TSchema> | undefined;
  if (props && Object.prototype.hasOwnProperty.call(props, key)) return props[key];
  const patterns = schema.patternProperties as Record<string, TSchema> | undefined;
  return patterns ? Object.values(patterns)[0] : undefined;
}

/**
 * A secret that is a URL keeps its shape (scheme, host, database are useful when debugging) and
 * loses only its password; `sqlite:` paths carry no credentials; an empty value stays empty so
 * `config show` still tells "not set" from "set".
 */
function redactSecret(value: string): string {
  if (value === '' || value.startsWith('sqlite:')) return value;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return maskUrlPassword(value);
  return REDACTED;
}

/**
 * `scheme://user:pass@host` → `scheme://user:***@host` (RFC 3986 §3.2.1 userinfo). The password is
 * taken up to the LAST '@' so an unencoded '@', '/' or '#' in it cannot leak a tail of it; when an
 * '@' appears later (in a query) more than the password is masked, which errs on the safe side.
 */
export function maskUrlPassword(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):.*@/is, `$1:${REDACTED}@`);
}
