/**
 * `/api/v1/admin/hooks` (SPEC §6 "Management"): list, create, read, replace and delete hooks, run
 * one on a sample message and show the raw exchange, reset its circuit breaker, and list its
 * post_receive jobs.
 *
 * Who sees what: a super-admin every hook; a tenant admin the hooks of their tenant and the global
 * ones (they run on the tenant's mail too), and changes only their tenant's. Another tenant's hook
 * is 404 — the answer for an id that does not exist — and changing a global hook is 403. A tenant
 * admin's new hook always belongs to their tenant and may only use a plugin enabled for it
 * (`tenant_plugins`). Hooks from the config file are shown (`source: "config"`) but read-only (409).
 *
 * Also exports the mapping of hook and plugin service errors to API errors shared by the plugin
 * routes (plugins.ts, internal-plugins.ts).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import type { Principal } from '../principal.js';
import { auditActor } from '../principal.js';
import { notFound } from '../policy.js';
import { CursorQuery, Data, DEFAULT_LIMIT, NullableTimestamp, Page, decodeCursor, errors, iso, pageOf } from '../schemas.js';
import { callService } from '../service-errors.js';
import { ApiError } from '../../errors.js';
import type { HookSystem } from '../../../app/hooks.js';
import { systemScope } from '../../../core/scope.js';
import { writeAudit } from '../../../security/audit.js';
import {
  CircuitBreakerConfigSchema,
  HOOK_ID_PATTERN,
  HOOK_TYPES,
  HookConfigSchema,
  HookFilterSchema,
  HookResponseSchema,
  HookRetrySchema,
  PLUGIN_ID_PATTERN,
  type HookType,
} from '../../../hooks/types.js';
import { HookConflictError, HookReadOnlyError, HookValidationError, type StoredHook } from '../../../hooks/runtime-types.js';
import { HookNotFoundError } from '../../../hooks/store.js';
import type { BreakerSnapshot } from '../../../hooks/circuit-breaker.js';
import { buildPayloadSource } from '../../../hooks/payload.js';
import { listHookJobs } from '../../../hooks/post-receive.js';
import { ApplyError } from '../../../hooks/apply.js';
import { PluginInstallError, PluginNotFoundError, PluginStateError } from '../../../plugins/types.js';

const TAGS = ['hooks'];

// ── Errors ─────────────────────────────────────────────────────────────────────────────────────

/** A dotted service path (`filter.subject_matches`) as a JSON Pointer (RFC 6901), like body-schema errors. */
export function pointerOf(path: string): string {
  if (path === '' || path === '/') return '/';
  if (path.startsWith('/')) return path;
  return `/${path.split('.').map((t) => t.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
}

/**
 * Hook and plugin service errors in API terms (SPEC §11):
 *   HookValidationError, PluginInstallError, ApplyError('invalid') → 422 VALIDATION_ERROR (details.errors[] with paths)
 *   HookConflictError, HookReadOnlyError, PluginStateError         → 409 CONFLICT
 *   PluginNotFoundError, HookNotFoundError, ApplyError('not_found') → 404 NOT_FOUND
 * Tenancy errors are mapped by callService; anything else is rethrown (500 without its text).
 */
export function mapHookError(err: unknown): unknown {
  if (err instanceof HookValidationError) {
    return new ApiError('VALIDATION_ERROR', err.message, { errors: err.issues.map((i) => ({ path: pointerOf(i.path), message: i.message })) });
  }
  if (err instanceof HookConflictError) return new ApiError('CONFLICT', err.message);
  if (err instanceof HookReadOnlyError) return new ApiError('CONFLICT', err.message, { source: 'config' });
  if (err instanceof HookNotFoundError) return notFound('hook');
  if (err instanceof PluginNotFoundError) return notFound('plugin');
  if (err instanceof PluginStateError) return new ApiError('CONFLICT', err.message);
  if (err instanceof PluginInstallError) {
    const details: Record<string, unknown> = { ...err.details };
    if (Array.isArray(details.errors)) {
      details.errors = (details.errors as { path?: unknown; message?: unknown }[]).map((e) => ({
        ...e,
        path: typeof e.path === 'string' ? pointerOf(e.path) : '/',
        message: typeof e.message === 'string' ? e.message : String(e.message ?? 'is invalid'),
      }));
    }
    return new ApiError('VALIDATION_ERROR', err.message, details);
  }
  if (err instanceof ApplyError) return err.code === 'not_found' ? new ApiError('NOT_FOUND', err.message) : new ApiError('VALIDATION_ERROR', err.message);
  return err;
}

/** Runs a hook/plugin service call, translating its errors (see mapHookError and callService). */
export async function callHooks<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await callService(fn);
  } catch (err) {
    throw mapHookError(err);
  }
}

/** The hook system, or 503 when the API was built without one (a hand-built ApiDeps). */
export function hookSystemOf(deps: ApiDeps): HookSystem {
  if (!deps.hookSystem) throw new ApiError('SERVICE_UNAVAILABLE', 'the hook system is not available on this node');
  return deps.hookSystem;
}

// ── Schemas ────────────────────────────────────────────────────────────────────────────────────

export const HookIdParam = Type.Object({ id: Type.String({ pattern: HOOK_ID_PATTERN, maxLength: 64 }) }, { additionalProperties: false });
type HookIdParams = Static<typeof HookIdParam>;

export const BreakerStateSchema = Type.Object(
  {
    state: Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half_open')], {
      description: 'Effective state: an open breaker whose 60 s have passed shows `half_open` (the next call is the probe).',
    }),
    consecutive_failures: Type.Integer({ minimum: 0 }),
    window_calls: Type.Integer({ minimum: 0, description: 'Calls in the failure-ratio window (5 min; 1 min for pre_receive).' }),
    window_failures: Type.Integer({ minimum: 0 }),
    opened_at: NullableTimestamp,
    probe_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the next probe may pass (open breakers only).' }),
    updated_at: NullableTimestamp,
  },
  { description: 'The circuit breaker of this (hook, plugin) pair (SPEC §6).' },
);

export function breakerView(s: BreakerSnapshot): Static<typeof BreakerStateSchema> {
  return {
    state: s.state,
    consecutive_failures: s.consecutiveFailures,
    window_calls: s.windowCalls,
    window_failures: s.windowFailures,
    opened_at: iso(s.openedAt),
    probe_at: iso(s.probeAt),
    updated_at: iso(s.updatedAt),
  };
}

const HookTypeSchema = Type.Unsafe<HookType>({ type: 'string', enum: [...HOOK_TYPES] });
const FailureActionSchema = Type.Unsafe<'allow' | 'reject' | 'tempfail'>({ type: 'string', enum: ['allow', 'reject', 'tempfail'] });

export const HookSchema = Type.Object({
  id: Type.String(),
  type: HookTypeSchema,
  plugin_id: Type.String(),
  tenant_id: Type.Union([Type.String(), Type.Null()], { description: 'null: a global hook, run for every tenant.' }),
  enabled: Type.Boolean(),
  priority: Type.Integer({ description: 'Ascending; ties by id.' }),
  timeout_ms: Type.Integer(),
  on_timeout: FailureActionSchema,
  on_error: FailureActionSchema,
  required: Type.Boolean(),
  requires_before_policy: Type.Boolean(),
  filter: Type.Optional(HookFilterSchema),
  retry: Type.Optional(HookRetrySchema),
  circuit_breaker: CircuitBreakerConfigSchema,
  source: Type.Union([Type.Literal('api'), Type.Literal('config')], { description: '`config`: defined in the config file, read-only here.' }),
  created_at: NullableTimestamp,
  updated_at: NullableTimestamp,
  circuit_breaker_state: BreakerStateSchema,
});
type HookView = Static<typeof HookSchema>;

function view(h: StoredHook, breaker: BreakerSnapshot): HookView {
  const out: HookView = {
    id: h.id,
    type: h.type,
    plugin_id: h.plugin_id,
    tenant_id: h.tenant_id,
    enabled: h.enabled,
    priority: h.priority,
    timeout_ms: h.timeout_ms,
    on_timeout: h.on_timeout,
    on_error: h.on_error,
    required: h.required,
    requires_before_policy: h.requires_before_policy,
    circuit_breaker: h.circuit_breaker,
    source: h.source,
    created_at: iso(h.createdAt),
    updated_at: iso(h.updatedAt),
    circuit_breaker_state: breakerView(breaker),
  };
  if (h.filter) out.filter = h.filter;
  if (h.retry) out.retry = h.retry;
  return out;
}

const ListQuery = Type.Object(
  {
    ...CursorQuery,
    tenant_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only this tenant\'s hooks (a tenant admin sees only their own and the global ones anyway).' })),
    global: Type.Optional(Type.Boolean({ description: 'Only global hooks (true) or only tenant hooks (false).' })),
    type: Type.Optional(HookTypeSchema),
    plugin_id: Type.Optional(Type.String({ pattern: PLUGIN_ID_PATTERN, maxLength: 100 })),
  },
  { additionalProperties: false },
);

const CreateBody = HookConfigSchema;
// PUT replaces the config; the id comes from the path, and a tenant_id left out keeps the hook's
// tenant (a default of null would silently turn a tenant hook into a global one).
const { id: _hookId, tenant_id: _tenantId, ...replaceFields } = HookConfigSchema.properties;
const ReplaceBody = Type.Object(
  {
    ...replaceFields,
    tenant_id: Type.Optional(
      Type.Unsafe<string | null>({ type: ['string', 'null'], minLength: 1, maxLength: 64, description: 'Super-admins: move the hook to this tenant, or null for global. Left out: unchanged.' }),
    ),
  },
  { additionalProperties: false },
);

const JobSchema = Type.Object({
  job_id: Type.String(),
  hook_id: Type.String(),
  message_id: Type.String(),
  tenant_id: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union(['pending', 'retrying', 'running', 'succeeded', 'permanent-failed'].map((s) => Type.Literal(s))),
  attempts: Type.Integer(),
  max_attempts: Type.Integer(),
  last_error: Type.Union([Type.String(), Type.Null()]),
  run_at: NullableTimestamp,
  finished_at: NullableTimestamp,
});

const JobsQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_LIMIT })) }, { additionalProperties: false });

const TestResultSchema = Type.Object({
  outcome: Type.Union(['ok', 'timeout', 'error', 'open', 'unavailable', 'filtered'].map((s) => Type.Literal(s)), {
    description: '`unavailable`: the plugin is not installed, enabled and approved (or not enabled for the hook\'s tenant), so no call was made.',
  }),
  action: Type.Union([Type.String(), Type.Null()], { description: 'What the call would contribute to the chain (after on_timeout/on_error).' }),
  duration_ms: Type.Number({ minimum: 0 }),
  error: Type.Union([Type.String(), Type.Null()]),
  refused_writes: Type.Array(Type.String(), { description: 'Writes the response asked for that the plugin\'s permissions do not grant.' }),
  request: Type.Union([Type.Object({ payload: Type.Unknown({ description: 'The JSON sent, after permission filtering.' }), bytes: Type.Integer() }), Type.Null()]),
  transport: Type.Union([
    Type.Object({
      ok: Type.Boolean(),
      kind: Type.Union([Type.Literal('timeout'), Type.Literal('error'), Type.Null()]),
      message: Type.Union([Type.String(), Type.Null()]),
      duration_ms: Type.Number(),
      bytes_out: Type.Integer(),
      bytes_in: Type.Integer(),
      stderr: Type.Union([Type.String(), Type.Null()], { description: 'Script plugins: the end of what the script wrote to stderr.' }),
    }),
    Type.Null(),
  ]),
  raw_response: Type.Unknown({ description: 'The reply as parsed JSON, before validation (null when none came).' }),
  response: Type.Union([HookResponseSchema, Type.Null()], { description: 'The validated response.' }),
  validation_errors: Type.Array(Type.String()),
});

// ── Sample message for the test endpoint ───────────────────────────────────────────────────────

/** The message `POST …/:id/test` sends: fixed, so two runs are comparable; its id is stored nowhere. */
export const SAMPLE_MESSAGE_ID = '00000000-0000-4000-8000-000000000001';
const SAMPLE_FROM = 'sender@example.com';
const SAMPLE_TO = 'recipient@example.net';
const SAMPLE_RAW = Buffer.from(
  [
    `From: Sample Sender <${SAMPLE_FROM}>`,
    `To: <${SAMPLE_TO}>`,
    'Subject: MaiRust hook test',
    'Date: Sun, 01 Nov 2026 10:00:00 +0000',
    'Message-ID: <hook-test@mairust.invalid>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'This is a sample message sent by POST /api/v1/admin/hooks/:id/test.',
    'It was not received by anyone and is not stored.',
    '',
  ].join('\r\n'),
);

export type HookTestResult = Static<typeof TestResultSchema>;

/**
 * One call of `hook` on the sample message, bypassing its breaker and filter, nothing applied:
 * the raw exchange (`POST /admin/hooks/:id/test`, `mairust hook test`).
 */
export async function testHook(sys: HookSystem, hook: StoredHook): Promise<HookTestResult> {
  const source = buildPayloadSource({
    hookType: hook.type,
    messageId: SAMPLE_MESSAGE_ID,
    tenantId: hook.tenant_id,
    mailbox: hook.type === 'pre_delivery' || hook.type === 'post_receive' ? SAMPLE_TO : null,
    envelope: { from: SAMPLE_FROM, to: [SAMPLE_TO] },
    raw: SAMPLE_RAW,
    receivedAt: new Date(),
    clientIp: '192.0.2.1',
    callbackUrl: sys.callbackUrl(SAMPLE_MESSAGE_ID),
  });
  const run = await sys.runner.runOne(hook, hook.tenant_id, async () => source, { messageId: SAMPLE_MESSAGE_ID, bypassBreaker: true });
  const ex = run.exchange;
  const r = ex?.result;
  return {
    outcome: run.record.outcome,
    action: run.record.action ?? null,
    duration_ms: run.record.durationMs,
    error: run.record.error ?? null,
    refused_writes: run.record.refusedWrites ?? [],
    request: ex ? { payload: ex.request.payload, bytes: ex.request.bytes } : null,
    transport: r
      ? { ok: r.ok, kind: r.ok ? null : r.kind, message: r.ok ? null : r.message, duration_ms: r.durationMs, bytes_out: r.bytesOut, bytes_in: r.bytesIn, stderr: r.stderr ?? null }
      : null,
    raw_response: r && r.ok ? r.response : null,
    response: ex?.response ?? null,
    validation_errors: ex?.validationErrors ?? [],
  };
}

// ── Access ─────────────────────────────────────────────────────────────────────────────────────

function isSuper(p: Principal): boolean {
  return p.user.role === 'super_admin';
}

/** A hook the principal may read; another tenant's is 404 like a missing id. */
async function readable(sys: HookSystem, p: Principal, id: string): Promise<StoredHook> {
  const hook = await sys.hooks.get(id);
  if (!hook) throw notFound('hook');
  if (!isSuper(p) && hook.tenant_id !== null && hook.tenant_id !== p.user.tenantId) throw notFound('hook');
  return hook;
}

/** A hook the principal may change: readable, and not global unless super-admin (403). */
async function writable(sys: HookSystem, p: Principal, id: string): Promise<StoredHook> {
  const hook = await readable(sys, p, id);
  if (!isSuper(p) && hook.tenant_id === null) throw new ApiError('FORBIDDEN', 'global hooks are changed by super-admins only');
  return hook;
}

/**
 * The tenant a new or replaced hook belongs to. Tenant admins: always their own (another tenant's
 * id is 404, like a tenant that does not exist). Super-admins: as given (null = global); the
 * tenant must exist.
 */
async function tenantFor(deps: ApiDeps, p: Principal, requested: string | null | undefined): Promise<string | null> {
  if (!isSuper(p)) {
    if (requested !== undefined && requested !== null && requested !== p.user.tenantId) throw notFound('tenant');
    return p.user.tenantId;
  }
  if (requested === undefined || requested === null) return null;
  await callService(() => deps.app.tenancy.tenants.get(systemScope, requested));
  return requested;
}

/** SPEC §7 "Per-tenant enablement": a tenant admin's hook may only use a plugin the tenant enabled. */
async function requireEnabledForTenant(sys: HookSystem, p: Principal, pluginId: string, tenantId: string | null): Promise<void> {
  if (isSuper(p) || tenantId === null) return;
  if (!(await sys.plugins.enabledForTenant(pluginId, tenantId))) {
    throw new ApiError('VALIDATION_ERROR', `plugin ${pluginId} is not enabled for this tenant (PUT /api/v1/admin/tenant-plugins/${pluginId})`, {
      errors: [{ path: '/plugin_id', message: 'is not enabled for this tenant' }],
    });
  }
}

async function withState(sys: HookSystem, hooks: StoredHook[]): Promise<HookView[]> {
  return Promise.all(hooks.map(async (h) => view(h, await sys.runner.breakerState(h))));
}

// ── Routes ─────────────────────────────────────────────────────────────────────────────────────

export async function hooksRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/admin/hooks',
    {
      config: { action: 'hooks.read' },
      schema: {
        tags: TAGS,
        summary: 'List hooks',
        description: 'API and config-file hooks, ordered by id. Tenant admins see their tenant\'s hooks and the global ones.',
        querystring: ListQuery,
        response: { 200: Page(HookSchema), ...errors() },
      },
    },
    async (request) => {
      const sys = hookSystemOf(deps);
      const p = principalOf(request);
      const q = request.query;
      const limit = q.limit ?? DEFAULT_LIMIT;
      const after = decodeCursor(q.cursor, (v): v is string => typeof v === 'string' && v.length <= 64);
      const all = await callHooks(() => sys.hooks.list({ type: q.type, pluginId: q.plugin_id }));
      const rows = all
        .filter((h) => isSuper(p) || h.tenant_id === null || h.tenant_id === p.user.tenantId)
        .filter((h) => q.tenant_id === undefined || h.tenant_id === q.tenant_id)
        .filter((h) => q.global === undefined || (h.tenant_id === null) === q.global)
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .filter((h) => after === undefined || h.id > after)
        .slice(0, limit + 1);
      const page = pageOf(rows, limit, (h) => h.id, (h) => h);
      return { data: await withState(sys, page.data), pagination: page.pagination };
    },
  );

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/admin/hooks',
    {
      config: { action: 'hooks.write' },
      schema: {
        tags: TAGS,
        summary: 'Create a hook',
        description:
          'Defaults (SPEC §6): enabled, priority 100, timeout by type (pre_receive 2 s/max 3 s, post_receive 30 s/max 300 s, pre_send and pre_delivery 2 s/max 5 s), ' +
          'on_timeout tempfail, on_error allow, circuit_breaker.on_open skip; post_receive retries 3 times after 30, 120, 600 s. ' +
          'A tenant admin\'s hook belongs to their tenant and needs a plugin enabled for it; a super-admin may create global hooks (tenant_id null).',
        body: CreateBody,
        response: { 201: Data(HookSchema), ...errors(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const sys = hookSystemOf(deps);
      const p = principalOf(request);
      const body = request.body;
      const tenantId = await tenantFor(deps, p, body.tenant_id);
      await requireEnabledForTenant(sys, p, body.plugin_id, tenantId);
      const hook = await callHooks(() => sys.hooks.create({ ...body, tenant_id: tenantId }, auditActor(p)));
      reply.code(201);
      return { data: view(hook, await sys.runner.breakerState(hook)) };
    },
  );

  app.get<{ Params: HookIdParams }>(
    '/admin/hooks/:id',
    {
      config: { action: 'hooks.read' },
      schema: { tags: TAGS, summary: 'Get a hook', description: 'With its circuit breaker state.', params: HookIdParam, response: { 200: Data(HookSchema), ...errors(404) } },
    },
    async (request) => {
      const sys = hookSystemOf(deps);
      const hook = await readable(sys, principalOf(request), request.params.id);
      return { data: view(hook, await sys.runner.breakerState(hook)) };
    },
  );

  app.put<{ Params: HookIdParams; Body: Static<typeof ReplaceBody> }>(
    '/admin/hooks/:id',
    {
      config: { action: 'hooks.write' },
      schema: {
        tags: TAGS,
        summary: 'Replace a hook',
        description: 'The whole config (fields left out take their defaults); the id comes from the path. Changing the plugin resets the breaker. Config-file hooks answer 409.',
        params: HookIdParam,
        body: ReplaceBody,
        response: { 200: Data(HookSchema), ...errors(404, 409, 422) },
      },
    },
    async (request) => {
      const sys = hookSystemOf(deps);
      const p = principalOf(request);
      const current = await writable(sys, p, request.params.id);
      const body = request.body;
      // A tenant admin cannot move a hook to another tenant or make it global: tenantFor pins it.
      const tenantId = await tenantFor(deps, p, body.tenant_id === undefined ? current.tenant_id : body.tenant_id);
      await requireEnabledForTenant(sys, p, body.plugin_id, tenantId);
      const hook = await callHooks(() => sys.hooks.update(current.id, { ...body, id: current.id, tenant_id: tenantId }, auditActor(p)));
      return { data: view(hook, await sys.runner.breakerState(hook)) };
    },
  );

  app.delete<{ Params: HookIdParams }>(
    '/admin/hooks/:id',
    {
      config: { action: 'hooks.write' },
      schema: {
        tags: TAGS,
        summary: 'Delete a hook',
        description: 'Its breaker state goes with it; post_receive jobs already queued find the hook gone and finish without a call.',
        params: HookIdParam,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...errors(404, 409) },
      },
    },
    async (request, reply) => {
      const sys = hookSystemOf(deps);
      const p = principalOf(request);
      const hook = await writable(sys, p, request.params.id);
      const deleted = await callHooks(() => sys.hooks.delete(hook.id, auditActor(p)));
      if (!deleted) throw notFound('hook');
      return reply.code(204).send();
    },
  );

  app.post<{ Params: HookIdParams }>(
    '/admin/hooks/:id/test',
    {
      config: { action: 'hooks.write' },
      schema: {
        tags: TAGS,
        summary: 'Run a hook on a sample message',
        description:
          'Calls the hook\'s plugin once with a fixed sample message (not stored; its callback URL leads nowhere), bypassing the circuit breaker and the filter, ' +
          'and shows the raw exchange: the payload sent (after permission filtering), the transport outcome, the reply and its validation errors. ' +
          'Nothing the plugin answers is applied. The call counts in the plugin\'s metrics and log like any other.',
        params: HookIdParam,
        response: { 200: Data(TestResultSchema), ...errors(404) },
      },
    },
    async (request) => {
      const sys = hookSystemOf(deps);
      const hook = await writable(sys, principalOf(request), request.params.id);
      return { data: await callHooks(() => testHook(sys, hook)) };
    },
  );

  app.post<{ Params: HookIdParams }>(
    '/admin/hooks/:id/circuit-breaker/reset',
    {
      config: { action: 'hooks.write' },
      schema: {
        tags: TAGS,
        summary: "Reset a hook's circuit breaker",
        description: 'Closes the breaker with empty counters (SPEC §6 "Manual reset"); the next message calls the plugin again. Audited.',
        params: HookIdParam,
        response: { 200: Data(HookSchema), ...errors(404) },
      },
    },
    async (request) => {
      const sys = hookSystemOf(deps);
      const p = principalOf(request);
      const hook = await writable(sys, p, request.params.id);
      const before = await sys.runner.breakerState(hook);
      await sys.runner.resetBreaker(hook);
      await writeAudit(deps.app.db, {
        tenantId: hook.tenant_id,
        eventType: 'hook.breaker_reset',
        actor: auditActor(p),
        target: { type: 'hook', id: hook.id },
        metadata: { plugin_id: hook.plugin_id, previous_state: before.state, consecutive_failures: before.consecutiveFailures },
      });
      return { data: view(hook, await sys.runner.breakerState(hook)) };
    },
  );

  app.get<{ Params: HookIdParams; Querystring: Static<typeof JobsQuery> }>(
    '/admin/hooks/:id/jobs',
    {
      config: { action: 'hooks.read' },
      schema: {
        tags: TAGS,
        summary: "List a post_receive hook's jobs",
        description: 'The most recent jobs of this hook in the post_receive queue, with attempts and the last error; `permanent-failed` jobs exhausted their retries.',
        params: HookIdParam,
        querystring: JobsQuery,
        response: { 200: Data(Type.Array(JobSchema)), ...errors(404) },
      },
    },
    async (request) => {
      const sys = hookSystemOf(deps);
      const hook = await readable(sys, principalOf(request), request.params.id);
      const jobs = await listHookJobs(deps.app.queue, { hookId: hook.id, limit: request.query.limit ?? DEFAULT_LIMIT });
      return {
        data: jobs.map((j) => ({
          job_id: j.job_id,
          hook_id: j.hook_id,
          message_id: j.message_id,
          tenant_id: j.tenant_id ?? null,
          status: j.status,
          attempts: j.attempts,
          max_attempts: j.max_attempts,
          last_error: j.last_error ?? null,
          run_at: toIso(j.run_at),
          finished_at: toIso(j.finished_at),
        })),
      };
    },
  );
}

function toIso(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' && !/^\d+$/.test(v)) return new Date(v).toISOString();
  return new Date(Number(v)).toISOString();
}

export default hooksRoutes;
