/**
 * `/api/v1/admin/plugins` and `/api/v1/admin/tenant-plugins` (SPEC §7 "API", "Lifecycle",
 * "Plugin tokens", "Per-tenant enablement"):
 *
 *  - super-admins install (a directory or `.mairust-plugin` file on the server, or an uploaded
 *    package), review and approve permissions, enable, disable and uninstall plugins, rotate their
 *    signing secrets and `plt_` tokens, and read their metrics;
 *  - tenant admins list the installed plugins, read the plugin log lines of their tenant, and
 *    enable and configure plugins for their tenant.
 *
 * Secrets and tokens appear in exactly one response each — the one that created them (install,
 * secret rotation, token rotation); no other response schema declares them, and token hashes are
 * never returned at all (SPEC §10).
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../auth-hook.js';
import type { ApiDeps } from '../deps.js';
import { auditActor, type Principal } from '../principal.js';
import { notFound } from '../policy.js';
import { Data, NullableTimestamp, Page, Timestamp, errors, iso } from '../schemas.js';
import { ApiError } from '../../errors.js';
import { callService } from '../service-errors.js';
import { systemScope } from '../../../core/scope.js';
import { PLUGIN_ID_PATTERN } from '../../../hooks/types.js';
import { DEFAULT_PACKAGE_LIMITS } from '../../../plugins/package.js';
import { PLUGIN_TOKEN_SCOPES, type InstalledPlugin, type InstallResult, type PluginLogRecord, type PluginTokenInfo, type TenantPlugin } from '../../../plugins/types.js';
import { BreakerStateSchema, breakerView, callHooks, hookSystemOf } from './hooks.js';

const TAGS = ['plugins'];

// ── Schemas ────────────────────────────────────────────────────────────────────────────────────

export const PluginIdParam = Type.Object({ id: Type.String({ pattern: PLUGIN_ID_PATTERN, minLength: 3, maxLength: 100 }) }, { additionalProperties: false });
type PluginIdParams = Static<typeof PluginIdParam>;
const TokenParams = Type.Object(
  { id: Type.String({ pattern: PLUGIN_ID_PATTERN, minLength: 3, maxLength: 100 }), tokenId: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);

const ReadBody = Type.Union(['none', 'preview', 'full'].map((s) => Type.Literal(s)));
const PermissionsSchema = Type.Object(
  {
    read_headers: Type.Boolean(),
    read_body: ReadBody,
    read_attachments: Type.Union(['none', 'metadata', 'preview', 'full'].map((s) => Type.Literal(s))),
    write_tags: Type.Boolean(),
    write_flags: Type.Boolean(),
    move_message: Type.Boolean(),
    write_metadata: Type.Boolean(),
    delete_message: Type.Boolean(),
  },
  { description: 'SPEC §7 permissions.' },
);

const EntrySchema = Type.Object({
  type: Type.Union([Type.Literal('hook'), Type.Literal('service')]),
  protocol: Type.Union([Type.Literal('http'), Type.Literal('script')]),
  endpoint: Type.Optional(Type.String()),
  health_endpoint: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  command: Type.Optional(Type.Array(Type.String())),
  health_cmd: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])),
  callback_api: Type.Boolean(),
});

export const PluginSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  version: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  author: Type.Union([Type.String(), Type.Null()]),
  license: Type.Union([Type.String(), Type.Null()]),
  homepage: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union([Type.Literal('installed'), Type.Literal('enabled'), Type.Literal('disabled')], {
    description: '`installed`: not enabled yet (permissions to review); `enabled`; `disabled`.',
  }),
  runnable: Type.Boolean({ description: 'Enabled and every permission of the manifest approved: hooks call it.' }),
  entry: EntrySchema,
  hooks_on: Type.Array(Type.String(), { description: 'Hook types the manifest declares.' }),
  permissions: PermissionsSchema,
  approved_permissions: Type.Union([PermissionsSchema, Type.Null()], { description: 'What an admin approved; null: never reviewed.' }),
  pending_permissions: Type.Array(
    Type.Object({ permission: Type.String(), from: Type.Union([Type.Boolean(), Type.String()]), to: Type.Union([Type.Boolean(), Type.String()]) }),
    { description: 'Manifest permissions beyond the approved ones; the plugin does not run until they are approved.' },
  ),
  high_risk: Type.Boolean({ description: 'SPEC §7: full body/attachment access, unlimited network or deleting mail.' }),
  high_risk_reasons: Type.Array(Type.String()),
  limits: Type.Object({ cpu_ms: Type.Integer(), memory_mb: Type.Integer(), wall_time_ms: Type.Integer(), network: Type.String() }),
  allow_private: Type.Boolean({ description: 'May call loopback/private addresses (approved explicitly).' }),
  source: Type.Union([Type.Literal('directory'), Type.Literal('package')]),
  signature: Type.String({ description: '`unsigned` or `ed25519:<key fingerprint>`.' }),
  health: Type.Object({ ok: Type.Union([Type.Boolean(), Type.Null()]), checked_at: NullableTimestamp, error: Type.Union([Type.String(), Type.Null()]) }),
  installed_at: Timestamp,
  updated_at: Timestamp,
});
type PluginView = Static<typeof PluginSchema>;

export function pluginView(p: InstalledPlugin): PluginView {
  const m = p.manifest;
  const e = m.entry;
  const entry: Static<typeof EntrySchema> =
    e.protocol === 'http'
      ? { type: e.type, protocol: 'http', endpoint: e.endpoint, health_endpoint: e.health_endpoint, callback_api: e.callback_api }
      : { type: e.type, protocol: 'script', command: e.command, health_cmd: e.health_cmd, callback_api: e.callback_api };
  return {
    id: p.id,
    name: p.name,
    version: p.version,
    description: m.description,
    author: m.author,
    license: m.license,
    homepage: m.homepage,
    status: p.status,
    runnable: p.runnable,
    entry,
    hooks_on: [...m.hooks.on],
    permissions: m.permissions,
    approved_permissions: p.approvedPermissions,
    pending_permissions: p.pendingPermissions.map((c) => ({ permission: c.permission, from: c.from, to: c.to })),
    high_risk: p.highRisk,
    high_risk_reasons: p.highRiskReasons,
    limits: { cpu_ms: m.limits.cpu_ms, memory_mb: m.limits.memory_mb, wall_time_ms: m.limits.wall_time_ms, network: m.limits.network },
    allow_private: p.allowPrivate,
    source: p.source,
    signature: p.signature,
    health: { ok: p.health.ok, checked_at: iso(p.health.checkedAt), error: p.health.error },
    installed_at: iso(p.installedAt),
    updated_at: iso(p.updatedAt),
  };
}

const InstallResultSchema = Type.Composite([
  PluginSchema,
  Type.Object({
    upgraded: Type.Boolean({ description: 'A plugin with this id was installed before (upgrade or reinstall: status, approval, secret and tokens kept).' }),
    secret: Type.Optional(Type.String({ description: 'The signing secret (`psec_…`), on the first install only. Shown only in this response: give it to the plugin now.' })),
  }),
]);

const InstallJsonBody = Type.Object(
  { path: Type.String({ minLength: 1, maxLength: 4096, description: 'A plugin directory or a `.mairust-plugin` file on the server.' }) },
  { additionalProperties: false },
);
const PackageUpload = { description: 'A `.mairust-plugin` package (tar.gz) as the raw request body.', contentMediaType: 'application/gzip' };

const ApproveBody = Type.Object(
  { allow_private: Type.Optional(Type.Boolean({ description: 'Let the plugin call loopback/private addresses (SSRF protection off for it). Default false.' })) },
  { additionalProperties: false },
);

const LogSchema = Type.Object({
  id: Type.String(),
  at: Timestamp,
  level: Type.Union(['debug', 'info', 'warn', 'error'].map((s) => Type.Literal(s))),
  tenant_id: Type.Union([Type.String(), Type.Null()]),
  hook_id: Type.Union([Type.String(), Type.Null()]),
  message_id: Type.Union([Type.String(), Type.Null()]),
  message: Type.String(),
});
const LogsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
    before: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'Only lines older than this (the `pagination.cursor` of the previous page).' })),
    tenant_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Super-admins: only this tenant\'s lines (tenant admins always see only theirs).' })),
  },
  { additionalProperties: false },
);

const StatsSchema = Type.Object({
  calls: Type.Integer(),
  errors: Type.Integer(),
  timeouts: Type.Integer(),
  bytes_sent: Type.Integer(),
  bytes_received: Type.Integer(),
  avg_latency_ms: Type.Number(),
  last_error: Type.Union([Type.String(), Type.Null()]),
  last_call_at: NullableTimestamp,
});
const MetricsSchema = Type.Object({
  plugin_id: Type.String(),
  stats: StatsSchema,
  stats_scope: Type.Literal('node', { description: 'Call statistics are this node\'s since it started (Prometheus has the cluster view).' }),
  breakers: Type.Array(Type.Object({ hook_id: Type.String(), hook_type: Type.String(), tenant_id: Type.Union([Type.String(), Type.Null()]), state: BreakerStateSchema })),
  health: Type.Object({ ok: Type.Union([Type.Boolean(), Type.Null()]), checked_at: NullableTimestamp, error: Type.Union([Type.String(), Type.Null()]) }),
});

const TokenScope = Type.Union(PLUGIN_TOKEN_SCOPES.map((s) => Type.Literal(s)));
const TokenSchema = Type.Object({
  id: Type.String(),
  plugin_id: Type.String(),
  scopes: Type.Array(TokenScope),
  created_at: Timestamp,
  expires_at: NullableTimestamp,
  revoked_at: NullableTimestamp,
  last_used_at: NullableTimestamp,
});
const TokenWithSecretSchema = Type.Composite([
  TokenSchema,
  Type.Object({ token: Type.String({ description: 'The `plt_…` token. Shown only in this response.' }) }),
]);
const RotateTokenBody = Type.Object(
  { scopes: Type.Array(TokenScope, { minItems: 1, maxItems: PLUGIN_TOKEN_SCOPES.length, uniqueItems: true, default: [...PLUGIN_TOKEN_SCOPES] }) },
  { additionalProperties: false },
);

const TenantPluginSchema = Type.Object({
  tenant_id: Type.String(),
  plugin_id: Type.String(),
  enabled: Type.Boolean(),
  config: Type.Record(Type.String(), Type.Unknown(), { description: 'Sent to the plugin as `metadata.config` on this tenant\'s hooks.' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});
const TenantPluginsQuery = Type.Object(
  { tenant_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Super-admins: this tenant (default: their own).' })) },
  { additionalProperties: false },
);
const TenantPluginBody = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    config: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), { maxProperties: 256, description: 'At most 16 KiB as JSON.' })),
    tenant_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Super-admins: the tenant (default: their own). Tenant admins: only their own.' })),
  },
  { additionalProperties: false, minProperties: 1 },
);

function tokenView(t: PluginTokenInfo): Static<typeof TokenSchema> {
  return {
    id: t.id,
    plugin_id: t.pluginId,
    scopes: t.scopes,
    created_at: iso(t.createdAt),
    expires_at: iso(t.expiresAt),
    revoked_at: iso(t.revokedAt),
    last_used_at: iso(t.lastUsedAt),
  };
}

function logView(l: PluginLogRecord): Static<typeof LogSchema> {
  return { id: l.id, at: iso(l.at), level: l.level, tenant_id: l.tenantId, hook_id: l.hookId, message_id: l.messageId, message: l.message };
}

function tenantPluginView(t: TenantPlugin): Static<typeof TenantPluginSchema> {
  return { tenant_id: t.tenantId, plugin_id: t.pluginId, enabled: t.enabled, config: t.config, created_at: iso(t.createdAt), updated_at: iso(t.updatedAt) };
}

function installView(r: InstallResult): Static<typeof InstallResultSchema> {
  const out: Static<typeof InstallResultSchema> = { ...pluginView(r.plugin), upgraded: r.upgraded };
  if (r.secret !== undefined) out.secret = r.secret;
  return out;
}

function isSuper(p: Principal): boolean {
  return p.user.role === 'super_admin';
}

/**
 * The tenant a tenant-plugin request is about: a tenant admin's own (another tenant's id is 404,
 * as for a tenant that does not exist); a super-admin's choice (default their own), which must exist.
 */
async function tenantOf(deps: ApiDeps, p: Principal, requested: string | undefined): Promise<string> {
  if (requested === undefined || requested === p.user.tenantId) return p.user.tenantId;
  if (!isSuper(p)) throw notFound('tenant');
  return (await callService(() => deps.app.tenancy.tenants.get(systemScope, requested))).id;
}

// ── Routes ─────────────────────────────────────────────────────────────────────────────────────

export async function pluginsRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  // Package uploads arrive as raw bytes; the JSON body of the same route is parsed as usual.
  // Scoped to this module's routes (route modules are registered as encapsulated plugins).
  app.addContentTypeParser(['application/gzip', 'application/octet-stream'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const registry = () => hookSystemOf(deps).plugins;

  app.get(
    '/admin/plugins',
    {
      config: { action: 'plugins.read' },
      schema: {
        tags: TAGS,
        summary: 'List installed plugins',
        description: 'Every installed plugin with its status, permissions (approved and pending), risk flags and health. Ordered by id.',
        response: { 200: Data(Type.Array(PluginSchema)), ...errors() },
      },
    },
    async () => {
      const list = await callHooks(() => registry().list());
      return { data: [...list].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(pluginView) };
    },
  );

  app.post<{ Body: Static<typeof InstallJsonBody> | Buffer }>(
    '/admin/plugins',
    {
      config: { action: 'plugins.manage' },
      // A package may be larger than a JSON body; the registry checks the archive limits again.
      bodyLimit: DEFAULT_PACKAGE_LIMITS.maxArchiveBytes,
      schema: {
        tags: TAGS,
        summary: 'Install or upgrade a plugin',
        description:
          'JSON `{"path": …}` names a plugin directory or a `.mairust-plugin` file on the server; a body of type `application/gzip` or `application/octet-stream` is a package upload ' +
          `(at most ${DEFAULT_PACKAGE_LIMITS.maxArchiveBytes} bytes). A new plugin starts \`installed\` (disabled) until its permissions are approved; an upgrade keeps its state, ` +
          'but one that adds permissions stops the plugin until they are approved again. The signing secret of a new plugin is in this response only. ' +
          'A bad manifest, checksum, signature, compat range or an endpoint outside `plugins.egress_allowlist` is 422 with details.',
        body: {
          content: {
            'application/json': { schema: InstallJsonBody },
            'application/gzip': { schema: PackageUpload },
            'application/octet-stream': { schema: PackageUpload },
          },
        },
        response: { 201: Data(InstallResultSchema), ...errors(413, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const reg = registry();
      const body = request.body;
      let result: InstallResult;
      if (Buffer.isBuffer(body)) {
        if (body.length === 0) throw new ApiError('INVALID_REQUEST', 'the package upload is empty');
        const dir = await mkdtemp(join(tmpdir(), 'mairust-upload-'));
        try {
          const file = join(dir, 'upload.mairust-plugin');
          await writeFile(file, body, { mode: 0o600 });
          result = await callHooks(() => reg.installFromPackage(file, auditActor(p)));
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      } else {
        const path = body.path;
        // A directory is an unpacked plugin; anything else is read as a package (the registry reports a missing file).
        const isDir = await stat(path).then((s) => s.isDirectory(), () => false);
        result = await callHooks(() => (isDir ? reg.installFromDirectory(path, auditActor(p)) : reg.installFromPackage(path, auditActor(p))));
      }
      reply.code(201);
      return { data: installView(result) };
    },
  );

  app.get<{ Params: PluginIdParams }>(
    '/admin/plugins/:id',
    {
      config: { action: 'plugins.read' },
      schema: { tags: TAGS, summary: 'Get a plugin', params: PluginIdParam, response: { 200: Data(PluginSchema), ...errors(404) } },
    },
    async (request) => {
      const plugin = await callHooks(() => registry().get(request.params.id));
      if (!plugin) throw notFound('plugin');
      return { data: pluginView(plugin) };
    },
  );

  app.delete<{ Params: PluginIdParams }>(
    '/admin/plugins/:id',
    {
      config: { action: 'plugins.manage' },
      schema: {
        tags: TAGS,
        summary: 'Uninstall a plugin',
        description: 'Removes the plugin, its files, secrets, tokens, tenant settings, hooks and breaker states. Metadata it wrote on messages stays. Audited.',
        params: PluginIdParam,
        response: { 204: Type.Null({ description: 'Uninstalled.' }), ...errors(404) },
      },
    },
    async (request, reply) => {
      const sys = hookSystemOf(deps);
      await callHooks(() => sys.plugins.uninstall(request.params.id, auditActor(principalOf(request))));
      // The registry deleted the plugin's hook rows; this node's hook cache must not show them for 2 s more.
      sys.hooks.invalidate();
      return reply.code(204).send();
    },
  );

  app.post<{ Params: PluginIdParams; Body: Static<typeof ApproveBody> }>(
    '/admin/plugins/:id/approve',
    {
      config: { action: 'plugins.manage' },
      schema: {
        tags: TAGS,
        summary: "Approve a plugin's permissions",
        description:
          'Accepts exactly the permissions of the installed manifest (the response lists them, with the high-risk flags) and whether the plugin may call private addresses. ' +
          'Does not enable the plugin.',
        params: PluginIdParam,
        body: ApproveBody,
        response: { 200: Data(PluginSchema), ...errors(404, 409) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const plugin = await callHooks(() => registry().approve(request.params.id, auditActor(p), { allowPrivate: request.body?.allow_private ?? false }));
      return { data: pluginView(plugin) };
    },
  );

  for (const [verb, summary, description] of [
    ['enable', 'Enable a plugin', 'Hooks start calling it. 409 while permissions are waiting for approval.'],
    ['disable', 'Disable a plugin', 'Hooks stop calling it (required hooks then tempfail); its settings, secrets and tokens stay.'],
  ] as const) {
    app.post<{ Params: PluginIdParams }>(
      `/admin/plugins/:id/${verb}`,
      {
        config: { action: 'plugins.manage' },
        schema: { tags: TAGS, summary, description, params: PluginIdParam, response: { 200: Data(PluginSchema), ...errors(404, 409) } },
      },
      async (request) => {
        const actor = auditActor(principalOf(request));
        const plugin = await callHooks(() => (verb === 'enable' ? registry().enable(request.params.id, actor) : registry().disable(request.params.id, actor)));
        return { data: pluginView(plugin) };
      },
    );
  }

  app.get<{ Params: PluginIdParams; Querystring: Static<typeof LogsQuery> }>(
    '/admin/plugins/:id/logs',
    {
      config: { action: 'plugins.read' },
      schema: {
        tags: TAGS,
        summary: "Read a plugin's log",
        description:
          'Newest first: failed calls, refused writes, health changes, script stderr. Paged by time: pass `pagination.cursor` as `before`. ' +
          'Tenant admins see only the lines about their tenant.',
        params: PluginIdParam,
        querystring: LogsQuery,
        response: { 200: Page(LogSchema), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const reg = registry();
      const q = request.query;
      const limit = q.limit ?? 50;
      if (!(await callHooks(() => reg.get(request.params.id)))) throw notFound('plugin');
      const tenantId = isSuper(p) ? q.tenant_id : p.user.tenantId;
      if (!isSuper(p) && q.tenant_id !== undefined && q.tenant_id !== p.user.tenantId) throw notFound('tenant');
      const rows = await callHooks(() => reg.logs(request.params.id, { limit: limit + 1, before: q.before === undefined ? undefined : Number(q.before), tenantId }));
      const has_more = rows.length > limit;
      const page = rows.slice(0, limit);
      return { data: page.map(logView), pagination: { cursor: has_more && page.length ? String(page[page.length - 1].at) : null, has_more } };
    },
  );

  app.get<{ Params: PluginIdParams }>(
    '/admin/plugins/:id/metrics',
    {
      config: { action: 'plugins.manage' },
      schema: {
        tags: TAGS,
        summary: "A plugin's calls, errors and breakers",
        description: 'Calls, errors, timeouts, bytes and mean latency on this node; the circuit breaker of each of its hooks; the last health check.',
        params: PluginIdParam,
        response: { 200: Data(MetricsSchema), ...errors(404) },
      },
    },
    async (request) => {
      const sys = hookSystemOf(deps);
      const plugin = await callHooks(() => sys.plugins.get(request.params.id));
      if (!plugin) throw notFound('plugin');
      const s = sys.metrics.pluginStats(plugin.id);
      const hooks = await callHooks(() => sys.hooks.list({ pluginId: plugin.id }));
      const breakers = await Promise.all(
        hooks.map(async (h) => ({ hook_id: h.id, hook_type: h.type, tenant_id: h.tenant_id, state: breakerView(await sys.runner.breakerState(h)) })),
      );
      return {
        data: {
          plugin_id: plugin.id,
          stats: { ...s, last_call_at: iso(s.last_call_at) },
          stats_scope: 'node' as const,
          breakers,
          health: { ok: plugin.health.ok, checked_at: iso(plugin.health.checkedAt), error: plugin.health.error },
        },
      };
    },
  );

  app.post<{ Params: PluginIdParams }>(
    '/admin/plugins/:id/secret/rotate',
    {
      config: { action: 'plugins.manage' },
      schema: {
        tags: TAGS,
        summary: "Rotate a plugin's signing secret",
        description: 'Calls are signed with the new secret at once and, for `plugins.secret_overlap_hours`, with the previous one as well (a second signature), so the plugin can switch without downtime. The new secret is in this response only.',
        params: PluginIdParam,
        response: { 200: Data(Type.Object({ plugin_id: Type.String(), secret: Type.String({ description: '`psec_…`, shown only here.' }) })), ...errors(404) },
      },
    },
    async (request) => {
      const secret = await callHooks(() => registry().rotateSecret(request.params.id, auditActor(principalOf(request))));
      return { data: { plugin_id: request.params.id, secret } };
    },
  );

  app.get<{ Params: PluginIdParams }>(
    '/admin/plugins/:id/tokens',
    {
      config: { action: 'plugins.manage' },
      schema: {
        tags: TAGS,
        summary: "List a plugin's tokens",
        description: 'Metadata only; a token itself is shown once, when it is issued.',
        params: PluginIdParam,
        response: { 200: Data(Type.Array(TokenSchema)), ...errors(404) },
      },
    },
    async (request) => {
      const tokens = await callHooks(() => registry().listTokens(request.params.id));
      return { data: tokens.map(tokenView) };
    },
  );

  app.post<{ Params: PluginIdParams; Body: Static<typeof RotateTokenBody> }>(
    '/admin/plugins/:id/tokens',
    {
      config: { action: 'plugins.manage' },
      schema: {
        tags: TAGS,
        summary: 'Issue (rotate) a plugin token',
        description:
          'Revokes the plugin\'s live tokens that share a scope with the new one and issues a `plt_…` token (scopes `callback`: POST /internal/plugins/callback/:message_id, ' +
          '`read`: GET /internal/plugins/messages/:id). The token is in this response only.',
        params: PluginIdParam,
        body: RotateTokenBody,
        response: { 201: Data(TokenWithSecretSchema), ...errors(404, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const scopes = request.body?.scopes ?? [...PLUGIN_TOKEN_SCOPES];
      const { token, info } = await callHooks(() => registry().rotateToken(request.params.id, scopes, auditActor(p)));
      reply.code(201);
      return { data: { ...tokenView(info), token } };
    },
  );

  app.delete<{ Params: Static<typeof TokenParams> }>(
    '/admin/plugins/:id/tokens/:tokenId',
    {
      config: { action: 'plugins.manage' },
      schema: { tags: TAGS, summary: 'Revoke a plugin token', params: TokenParams, response: { 204: Type.Null({ description: 'Revoked.' }), ...errors(404) } },
    },
    async (request, reply) => {
      const revoked = await callHooks(() => registry().revokeToken(request.params.id, request.params.tokenId, auditActor(principalOf(request))));
      if (!revoked) throw notFound('token');
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: Static<typeof TenantPluginsQuery> }>(
    '/admin/tenant-plugins',
    {
      config: { action: 'plugins.tenant' },
      schema: {
        tags: TAGS,
        summary: "A tenant's plugin settings",
        description: 'Which plugins the tenant enabled for its own hooks, with their config. Plugins without a row are not enabled.',
        querystring: TenantPluginsQuery,
        response: { 200: Data(Type.Array(TenantPluginSchema)), ...errors(404) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const tenantId = await tenantOf(deps, p, request.query.tenant_id);
      const rows = await callHooks(() => registry().listTenantPlugins(tenantId));
      return { data: rows.map(tenantPluginView) };
    },
  );

  app.put<{ Params: PluginIdParams; Body: Static<typeof TenantPluginBody> }>(
    '/admin/tenant-plugins/:id',
    {
      config: { action: 'plugins.tenant' },
      schema: {
        tags: TAGS,
        summary: 'Enable or configure a plugin for a tenant',
        description: 'The tenant\'s own hooks may use the plugin while it is enabled here (and runnable). Fields left out keep their value.',
        params: PluginIdParam,
        body: TenantPluginBody,
        response: { 200: Data(TenantPluginSchema), ...errors(404, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const b = request.body;
      const tenantId = await tenantOf(deps, p, b.tenant_id);
      const reg = registry();
      if (!(await callHooks(() => reg.get(request.params.id)))) throw notFound('plugin');
      const row = await callHooks(() => reg.setTenantPlugin(tenantId, request.params.id, { enabled: b.enabled, config: b.config }, auditActor(p)));
      return { data: tenantPluginView(row) };
    },
  );
}

export default pluginsRoutes;
