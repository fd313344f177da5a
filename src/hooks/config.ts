/**
 * Validation of one hook config (SPEC §6), from the config file or the API: JSON Schema first
 * (types.ts, with defaults filled), then the rules a schema cannot express: the per-type timeout
 * default and hard maximum, fields that only one hook type may carry, and the filter regexes (which
 * must compile and be safe, filter.ts). Errors are precise: a field path and a message each.
 */
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import { compileFilter, FilterPatternError, type FilterPredicate } from './filter.js';
import { HookConfigSchema, HookResponseSchema, type HookConfig, type HookConfigInput, type HookResponse, type HookType } from './types.js';

/** Default and hard maximum timeout per hook type (SPEC §6 table). */
export const HOOK_TIMEOUTS: Readonly<Record<HookType, { defaultMs: number; maxMs: number }>> = {
  pre_receive: { defaultMs: 2_000, maxMs: 3_000 },
  post_receive: { defaultMs: 30_000, maxMs: 300_000 },
  pre_send: { defaultMs: 2_000, maxMs: 5_000 },
  pre_delivery: { defaultMs: 2_000, maxMs: 5_000 },
};

export interface HookConfigIssue {
  /** Dotted path of the field, e.g. `filter.subject_matches`; '' for the whole object. */
  path: string;
  message: string;
}

export type HookConfigResult =
  | { ok: true; config: HookConfig; filter: FilterPredicate }
  | { ok: false; errors: HookConfigIssue[] };

// ajv is CommonJS; under ESM its class may arrive as the module or as its `default`.
const Ajv = ((AjvModule as unknown as { default?: unknown }).default ?? AjvModule) as unknown as typeof AjvModule.default;

let validators: { config: ValidateFunction; response: ValidateFunction } | undefined;

function compiled() {
  if (!validators) {
    const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, coerceTypes: false });
    validators = { config: ajv.compile(HookConfigSchema), response: ajv.compile(HookResponseSchema) };
  }
  return validators;
}

export function validateHookConfig(input: unknown): HookConfigResult {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, errors: [{ path: '', message: 'a hook config must be an object' }] };
  }
  const data = structuredClone(input) as HookConfigInput;
  const validate = compiled().config;
  if (!validate(data)) return { ok: false, errors: translate(validate.errors ?? []) };

  const errors: HookConfigIssue[] = [];
  const limits = HOOK_TIMEOUTS[data.type];
  if (data.timeout_ms !== undefined && data.timeout_ms > limits.maxMs) {
    errors.push({ path: 'timeout_ms', message: `${data.timeout_ms} ms exceeds the hard maximum of ${limits.maxMs} ms for ${data.type} hooks` });
  }
  if (data.requires_before_policy !== undefined && data.type !== 'pre_send') {
    errors.push({ path: 'requires_before_policy', message: `only pre_send hooks can run before the policy engine (this is a ${data.type} hook)` });
  }
  if (data.retry !== undefined && data.type !== 'post_receive') {
    errors.push({ path: 'retry', message: `only post_receive hooks are retried (this is a ${data.type} hook, which runs synchronously)` });
  }
  if (data.retry && data.retry.backoff_seconds.length < data.retry.max_attempts - 1) {
    errors.push({
      path: 'retry.backoff_seconds',
      message: `${data.retry.max_attempts} attempts need at least ${data.retry.max_attempts - 1} backoff delays (got ${data.retry.backoff_seconds.length})`,
    });
  }
  if (data.filter?.size_gt !== undefined && data.filter.size_lt !== undefined && data.filter.size_lt <= data.filter.size_gt + 1) {
    errors.push({ path: 'filter.size_lt', message: `no size is both greater than ${data.filter.size_gt} and less than ${data.filter.size_lt}` });
  }
  let filter: FilterPredicate = () => true;
  try {
    filter = compileFilter(data.filter);
  } catch (err) {
    if (!(err instanceof FilterPatternError)) throw err;
    errors.push({ path: err.path, message: err.reason });
    // Report every refused pattern, not only the first.
    for (const key of Object.keys(data.filter ?? {})) {
      if (`filter.${key}` === err.path) continue;
      try {
        compileFilter({ [key]: (data.filter as Record<string, unknown>)[key] } as HookConfigInput['filter']);
      } catch (e) {
        if (e instanceof FilterPatternError) errors.push({ path: e.path, message: e.reason });
      }
    }
  }
  if (errors.length > 0) return { ok: false, errors };

  const config: HookConfig = {
    id: data.id,
    type: data.type,
    plugin_id: data.plugin_id,
    enabled: data.enabled,
    priority: data.priority,
    timeout_ms: data.timeout_ms ?? limits.defaultMs,
    on_timeout: data.on_timeout,
    on_error: data.on_error,
    required: data.required,
    requires_before_policy: data.requires_before_policy ?? false,
    circuit_breaker: { on_open: data.circuit_breaker?.on_open ?? 'skip' },
    tenant_id: data.tenant_id,
  };
  if (data.filter && Object.keys(data.filter).length > 0) config.filter = data.filter;
  if (data.type === 'post_receive') config.retry = data.retry ?? { max_attempts: 3, backoff_seconds: [30, 120, 600] };
  return { ok: true, config, filter };
}

/**
 * Validates a plugin's response (sync reply or callback body): defaults filled (`tags` [], `metadata`
 * {}), unknown keys and out-of-bound values refused. The SMTP fields are checked later by smtp-reply.ts.
 */
export function validateHookResponse(input: unknown): { ok: true; response: HookResponse } | { ok: false; errors: HookConfigIssue[] } {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, errors: [{ path: '', message: 'a hook response must be a JSON object' }] };
  }
  const data = structuredClone(input) as HookResponse;
  const validate = compiled().response;
  if (!validate(data)) return { ok: false, errors: translate(validate.errors ?? []) };
  return { ok: true, response: data };
}

/**
 * The hooks of one chain in the order they run: enabled only, ascending priority, ties by id
 * (SPEC §6) — a stable order, so two nodes run the same chain the same way.
 */
export function orderHooks<T extends Pick<HookConfig, 'enabled' | 'priority' | 'id'>>(hooks: readonly T[]): T[] {
  return hooks
    .filter((h) => h.enabled)
    .sort((a, b) => a.priority - b.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function translate(errors: ErrorObject[]): HookConfigIssue[] {
  const out: HookConfigIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const segments = e.instancePath === '' ? [] : e.instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    let issue: HookConfigIssue;
    if (e.keyword === 'additionalProperties') {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      issue = { path: [...segments, key].join('.'), message: 'is not a known field' };
    } else if (e.keyword === 'required') {
      issue = { path: [...segments, String((e.params as { missingProperty: string }).missingProperty)].join('.'), message: 'is required' };
    } else if (e.keyword === 'enum') {
      issue = { path: segments.join('.'), message: `must be one of: ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).join(', ')}` };
    } else if (e.keyword === 'type') {
      const t = (e.params as { type: string | string[] }).type;
      issue = { path: segments.join('.'), message: `must be ${(Array.isArray(t) ? t : String(t).split(',')).join(' or ')}` };
    } else if (e.keyword === 'pattern') {
      issue = { path: segments.join('.'), message: `has an invalid format (must match ${(e.params as { pattern: string }).pattern})` };
    } else {
      issue = { path: segments.join('.'), message: e.message ?? `fails ${e.keyword}` };
    }
    const key = `${issue.path}\0${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(issue);
    }
  }
  return out;
}
