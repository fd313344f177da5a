/**
 * What changed between two validated configs, and which changes a reload (SIGHUP /
 * `mairust reload`) can apply. SPEC §12: hooks, plugins, rate limits and log level are reloaded;
 * ports, database and TLS paths need a restart, and the reload names the keys it ignored.
 *
 * A key is reloadable when it or one of its ancestors carries `x-reloadable: true` in the schema
 * (so `plans` covers `plans.gold.max_users`).
 */
import type { TSchema } from '@sinclair/typebox';
import { schemaChain, type Config } from './schema.js';
import { formatPath } from './validate.js';

export interface ConfigDiff {
  /** Every changed key path, dotted, sorted. */
  changed: string[];
  /** The subset a reload applies. */
  reloadable: string[];
  /** The subset that only takes effect after a restart. */
  restartRequired: string[];
}

export function diffConfig(oldConfig: Config, newConfig: Config): ConfigDiff {
  const changed: string[][] = [];
  collectChanges(oldConfig, newConfig, [], changed);
  const paths = changed.map((p) => ({ segments: p, dotted: formatPath(p) })).sort((a, b) => a.dotted.localeCompare(b.dotted));
  const reloadable: string[] = [];
  const restartRequired: string[] = [];
  for (const p of paths) (isReloadable(p.segments) ? reloadable : restartRequired).push(p.dotted);
  return { changed: paths.map((p) => p.dotted), reloadable, restartRequired };
}

/** True when the key or an ancestor is marked `x-reloadable` (unknown keys are not). */
export function isReloadable(path: readonly string[]): boolean {
  const chain = schemaChain(path);
  return chain !== null && chain.some((s: TSchema) => s['x-reloadable'] === true);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Mappings are compared key by key down to the leaves; a list is one value (a changed retry
 * schedule is reported as `queue.default_backoff_seconds`, not per item).
 */
function collectChanges(a: unknown, b: unknown, path: string[], out: string[][]): void {
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) collectChanges(a[k], b[k], [...path, k], out);
    return;
  }
  if (!sameValue(a, b)) out.push(path);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && sameValue(a[k], b[k]));
  }
  return Object.is(a, b);
}
