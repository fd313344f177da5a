/**
 * Validates a plain configuration object (parsed YAML merged with env overrides, secrets already
 * resolved) against `ConfigSchema`, fills in defaults and turns Ajv's errors into one readable
 * issue per wrong key: `listeners.smtp.port: must be <= 65535`. All issues are reported at once so
 * an operator fixes a file in one round.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema, type Config } from './schema.js';

export interface ConfigIssue {
  /** Dotted key path (`listeners.smtp.port`, `queue.default_backoff_seconds[1]`); '' for file-level problems. */
  path: string;
  message: string;
  /** Line in the YAML file the value came from, when known (1-based). */
  line?: number;
}

/** Dotted form of a key path; array indexes as `[n]`. */
export function formatPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number' || /^\d+$/.test(s)) out += `[${s}]`;
    else out += out === '' ? s : `.${s}`;
  }
  return out;
}

/** The JSON Schema printed by `mairust config schema`: plain JSON (TypeBox's symbol keys dropped). */
export function configJsonSchema(): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(ConfigSchema)) as Record<string, unknown>;
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...plain };
}

// ajv-formats is CommonJS; under ESM its default export may arrive wrapped once more.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (compiled) return compiled;
  // strict: unknown keywords in our own schema are bugs, so only the two documented annotations
  // are registered. useDefaults fills missing keys of every object schema before its `required`
  // check, including whole sections (`default: {}`) and each plan reached through
  // patternProperties, whose own children are then filled in turn.
  // verbose: errors carry their schema, needed to list enum values and suggest known keys.
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictTypes: false, verbose: true });
  addFormats(ajv);
  ajv.addKeyword({ keyword: 'x-reloadable', schemaType: 'boolean' });
  ajv.addKeyword({ keyword: 'x-secret', schemaType: 'boolean' });
  compiled = ajv.compile(configJsonSchema());
  return compiled;
}

/**
 * Validates and fills defaults. Returns `config` only when there are no issues. The input is not
 * modified.
 */
export function validateConfigObject(obj: unknown): { config?: Config; issues: ConfigIssue[] } {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    return { issues: [{ path: '', message: 'the configuration must be a mapping of sections (got ' + describe(obj) + ')' }] };
  }
  const data = structuredClone(obj) as Record<string, unknown>;
  const validate = validator();
  const issues: ConfigIssue[] = [];
  if (!validate(data)) issues.push(...translateErrors(validate.errors ?? []));
  if (issues.length === 0) issues.push(...crossFieldIssues(data as unknown as Config));
  return issues.length === 0 ? { config: inSchemaOrder(data) as unknown as Config, issues } : { issues };
}

/** Top-level sections in schema order, so `config show` reads like the reference. */
function inSchemaOrder(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(ConfigSchema.properties)) if (key in data) out[key] = data[key];
  return out;
}

/** Rules a JSON Schema cannot express (they relate two keys). */
function crossFieldIssues(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!Object.prototype.hasOwnProperty.call(config.plans, config.default_plan)) {
    issues.push({
      path: 'default_plan',
      message: `names plan '${config.default_plan}', which is not defined under plans (defined: ${Object.keys(config.plans).join(', ') || 'none'})`,
    });
  }
  const url = config.database.url;
  const isPostgres = /^postgres(ql)?:\/\//i.test(url);
  if (!url.startsWith('sqlite:') && !isPostgres) {
    issues.push({ path: 'database.url', message: "must start with 'sqlite:' or 'postgres://'" });
  }
  if (config.events.backend === 'postgres' && !isPostgres) {
    issues.push({ path: 'events.backend', message: "'postgres' needs a PostgreSQL database.url (LISTEN/NOTIFY)" });
  }
  return issues;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return `a ${typeof v}`;
}

function pointerToSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * One issue per wrong value. Ajv reports an enum written as `anyOf` of constants as one error per
 * branch plus the `anyOf` itself; those collapse into a single "must be one of: …".
 */
function translateErrors(errors: ErrorObject[]): ConfigIssue[] {
  const enumPaths = new Set<string>();
  const issues: ConfigIssue[] = [];
  for (const e of errors) {
    if (e.keyword !== 'anyOf') continue;
    const branches = (e.schema as TSchema[] | undefined) ?? [];
    if (branches.length > 0 && branches.every((b) => b && 'const' in b)) enumPaths.add(e.schemaPath);
  }
  const seen = new Set<string>();
  for (const e of errors) {
    const segments = pointerToSegments(e.instancePath);
    const insideEnum = [...enumPaths].some((p) => e.schemaPath.startsWith(p + '/'));
    if (insideEnum) continue;
    let issue: ConfigIssue;
    if (e.keyword === 'anyOf' && enumPaths.has(e.schemaPath)) {
      const values = (e.schema as { const: unknown }[]).map((b) => String(b.const));
      issue = { path: formatPath(segments), message: `must be one of: ${values.join(', ')}` };
    } else if (e.keyword === 'additionalProperties') {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      issue = { path: formatPath([...segments, key]), message: unknownKeyMessage(key, e.parentSchema as TSchema) };
    } else if (e.keyword === 'required') {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      issue = { path: formatPath([...segments, key]), message: 'is required' };
    } else if (e.keyword === 'type') {
      issue = { path: formatPath(segments), message: `must be ${article(String((e.params as { type: string }).type))}` };
    } else {
      issue = { path: formatPath(segments), message: e.message ?? `fails ${e.keyword}` };
    }
    const k = `${issue.path}\0${issue.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      issues.push(issue);
    }
  }
  return issues;
}

function article(type: string): string {
  switch (type) {
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'integer':
      return 'integer';
    default:
      return type;
  }
}

function unknownKeyMessage(key: string, parent: TSchema | undefined): string {
  const patterns = Object.keys((parent?.patternProperties as Record<string, unknown> | undefined) ?? {});
  if (patterns.length > 0) return `name '${key}' is not allowed (must match ${patterns.join(' or ')})`;
  const known = Object.keys((parent?.properties as Record<string, unknown> | undefined) ?? {});
  const hint = closest(key, known);
  return hint ? `unknown key '${key}' (did you mean '${hint}'?)` : `unknown key '${key}' (allowed: ${known.join(', ')})`;
}

/** The known key nearest to a typo, if it is close enough to be a plausible misspelling. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  // Allow roughly one edit per three characters; beyond that the suggestion is noise.
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

/** Levenshtein distance with adjacent transpositions counted as one edit ('prot' → 'port'). */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
