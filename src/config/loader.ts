/**
 * Finds, reads and validates the configuration (SPEC §12).
 *
 * File search order: `--config` (configPath), else `MAIRUST_CONFIG`, else the first existing of
 * `/etc/mairust/config.yaml`, `~/.config/mairust/config.yaml`, `./config.yaml`. A path that was
 * named explicitly must exist; when no file is found the built-in defaults are used, so the
 * embedded shape starts with zero configuration.
 *
 * Precedence: schema defaults < file < environment overrides. `env:`/`file:` secret references
 * are resolved after the merge (so an override may be a reference too) and before validation.
 * Every problem found is collected and thrown together in one ConfigError.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { Config } from './schema.js';
import { validateConfigObject, type ConfigIssue } from './validate.js';
import { applyEnvOverrides, coerceForPath } from './env-overrides.js';
import { resolveSecrets } from './secrets.js';

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file read, or null when only defaults (and the environment) were used. */
  source: string | null;
}

export class ConfigError extends Error {
  constructor(
    readonly issues: ConfigIssue[],
    readonly source: string | null = null,
  ) {
    super(`invalid configuration${source ? ` in ${source}` : ''} (${issues.length} issue${issues.length === 1 ? '' : 's'}):\n` + issues.map((i) => '  ' + formatIssue(i)).join('\n'));
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** `--config` value; relative to cwd. A missing file is an error. */
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  home?: string;
  /** The system-wide file (default `/etc/mairust/config.yaml`); tests point it elsewhere. */
  systemPath?: string;
  /** false = ignore environment overrides and leave `env:`/`file:` references unresolved (`config validate --no-env`). */
  useEnvironment?: boolean;
}

/** A config file larger than this is refused: it is certainly not a hand-written config. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

export const SYSTEM_CONFIG_PATH = '/etc/mairust/config.yaml';

/** `path: message (line N)`, or just the message for file-level issues. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line !== undefined ? ` (line ${issue.line})` : '';
  return issue.path ? `${issue.path}: ${issue.message}${where}` : `${issue.message}${where}`;
}

/** The candidate files in search order, for messages and `config validate` without FILE. */
export function configSearchPaths(opts: LoadConfigOptions = {}): string[] {
  const cwd = opts.cwd ?? process.cwd();
  const home = opts.home ?? homedir();
  return [opts.systemPath ?? SYSTEM_CONFIG_PATH, join(home, '.config', 'mairust', 'config.yaml'), join(cwd, 'config.yaml')];
}

/**
 * Which file the loader would read: `{ path: null }` when none exists. Throws ConfigError when a
 * file named explicitly (configPath or MAIRUST_CONFIG) does not exist.
 */
export function findConfigFile(opts: LoadConfigOptions = {}): { path: string | null; reason: string } {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const explicit: [string | undefined, string][] = [
    [opts.configPath, '--config'],
    [env.MAIRUST_CONFIG || undefined, 'MAIRUST_CONFIG'],
  ];
  for (const [given, reason] of explicit) {
    if (given === undefined) continue;
    const path = resolve(cwd, given);
    if (!existsSync(path)) throw new ConfigError([{ path: '', message: `config file ${path} (from ${reason}) does not exist` }], path);
    return { path, reason };
  }
  for (const path of configSearchPaths(opts)) if (existsSync(path)) return { path, reason: 'search path' };
  return { path: null, reason: `no file at ${configSearchPaths(opts).join(', ')}` };
}

export async function loadConfig(opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const useEnvironment = opts.useEnvironment ?? true;
  const { path: source } = findConfigFile(opts);

  let fileValue: Record<string, unknown> = {};
  let located: { doc: Document; lines: LineCounter } | undefined;
  if (source) {
    const parsed = await readConfigFile(source);
    if (parsed.issues.length > 0) throw new ConfigError(parsed.issues, source);
    fileValue = parsed.value;
    located = { doc: parsed.doc, lines: parsed.lines };
  }

  const issues: ConfigIssue[] = [];
  let merged = fileValue;
  let fromEnv: string[] = [];
  if (useEnvironment) {
    const overridden = applyEnvOverrides(fileValue, env);
    issues.push(...overridden.issues);
    merged = overridden.value;
    fromEnv = overridden.applied;
    const secrets = resolveSecrets(merged, { env, cwd, coerce: coerceForPath });
    issues.push(...secrets.issues);
    merged = secrets.value as Record<string, unknown>;
  }

  const result = validateConfigObject(merged);
  // A reference that failed to resolve is still in place as text and the validator would add a
  // second, less helpful issue ("must be integer") at the same path; keep only the first.
  const reported = new Set(issues.map((i) => i.path));
  issues.push(...result.issues.filter((i) => !reported.has(i.path)));
  if (issues.length > 0 || !result.config) {
    if (located) for (const issue of issues) addLine(issue, located.doc, located.lines, fromEnv);
    throw new ConfigError(issues, source);
  }
  const config = result.config;
  // Relative to where the process was started, not to the config file: that is what an operator
  // typing `mairust serve` in a directory expects, and it matches the documented default `./data`.
  config.server.data_dir = resolve(cwd, config.server.data_dir);
  return { config, source };
}

interface ParsedFile {
  value: Record<string, unknown>;
  issues: ConfigIssue[];
  doc: Document;
  lines: LineCounter;
}

async function readConfigFile(path: string): Promise<ParsedFile> {
  const lines = new LineCounter();
  const fail = (message: string): ParsedFile => ({ value: {}, issues: [{ path: '', message }], doc: parseDocument(''), lines });
  let text: string;
  try {
    const info = await stat(path);
    if (info.isDirectory()) return fail(`config file ${path} is a directory`);
    if (info.size > MAX_CONFIG_FILE_BYTES) return fail(`config file ${path} is ${info.size} bytes; the limit is ${MAX_CONFIG_FILE_BYTES}`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    return fail(`config file ${path} cannot be read: ${(err as Error).message}`);
  }
  return parseConfigText(text, path, lines);
}

/** Parses YAML text; syntax errors become issues carrying line and column. */
export function parseConfigText(text: string, name: string, lines = new LineCounter()): ParsedFile {
  // prettyErrors off: positions are computed here so the message stays one readable line.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const pos = lines.linePos(e.pos[0]);
      const first = e.message.split('\n')[0];
      return { path: '', message: `YAML syntax error in ${name} at line ${pos.line}, column ${pos.col}: ${first}`, line: pos.line };
    });
    return { value: {}, issues, doc, lines };
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (value === null || value === undefined) return { value: {}, issues: [], doc, lines };
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { value: {}, issues: [{ path: '', message: `${name}: the top level must be a mapping of sections (server:, listeners:, …), not ${Array.isArray(value) ? 'a list' : 'a ' + typeof value}`, line: 1 }], doc, lines };
  }
  return { value: value as Record<string, unknown>, issues: [], doc, lines };
}

/** Points an issue at the line of the deepest key of its path present in the file. */
function addLine(issue: ConfigIssue, doc: Document, lines: LineCounter, fromEnv: string[]): void {
  if (!issue.path || issue.line !== undefined) return;
  if (fromEnv.some((p) => issue.path === p || issue.path.startsWith(p + '.') || issue.path.startsWith(p + '['))) return;
  const segments = issue.path.split(/\.|\[(\d+)\]/).filter((s) => s !== undefined && s !== '');
  let node: unknown = doc.contents;
  let line: number | undefined;
  for (const seg of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
      if (!pair || !isScalar(pair.key) || !pair.key.range) break;
      line = lines.linePos(pair.key.range[0]).line;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)];
      if (!item || !(isScalar(item) || isMap(item) || isSeq(item)) || !item.range) break;
      line = lines.linePos(item.range[0]).line;
      node = item;
    } else break;
  }
  if (line !== undefined) issue.line = line;
}
